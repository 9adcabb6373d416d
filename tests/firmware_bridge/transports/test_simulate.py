"""SimulatedSource: scripted rates, asystole, determinism, joins, looping, pacing and cost."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import neurokit2 as nk
import numpy as np
import pytest
from numpy.typing import NDArray

from firmware_bridge.frames import DeviceEvent, DeviceEventKind, EcgChunk, Frame
from firmware_bridge.transports import Source
from firmware_bridge.transports.clock import NS_PER_S
from firmware_bridge.transports.simulate import (
    BASELINE_WANDER_HZ_UV,
    DEFAULT_SCRIPT,
    Segment,
    SimulatedSource,
    ecgsyn_block_uv,
)
from tests.firmware_bridge.transports import FakeClock

FS_HZ = 250.0


async def collect(source: SimulatedSource, duration_s: float) -> list[Frame]:
    """Collect frames until ``duration_s`` of signal (or the end of the stream)."""
    frames: list[Frame] = []
    n_samples = 0
    async for frame in source.frames():
        frames.append(frame)
        if isinstance(frame, EcgChunk):
            n_samples += len(frame.samples_uv)
            if n_samples >= duration_s * source.fs_hz:
                break
    return frames


def chunks_of(frames: list[Frame]) -> list[EcgChunk]:
    return [f for f in frames if isinstance(f, EcgChunk)]


def signal_of(frames: list[Frame]) -> NDArray[np.float32]:
    return np.concatenate([c.samples_uv for c in chunks_of(frames)])


def r_peaks_idx(ecg_uv: NDArray[np.float32], fs_hz: float) -> NDArray[np.int64]:
    _, info = nk.ecg_peaks(ecg_uv.astype(np.float64) / 1000.0, sampling_rate=round(fs_hz))
    return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)


def assert_contiguous(chunks: list[EcgChunk]) -> None:
    assert chunks[0].first_sample_idx == 0
    for prev, nxt in itertools.pairwise(chunks):
        assert nxt.first_sample_idx == prev.first_sample_idx + len(prev.samples_uv)


async def test_default_script_beats_at_scripted_rates_and_none_in_asystole() -> None:
    source = SimulatedSource(speed=None)
    assert isinstance(source, Source)
    ecg_uv = signal_of(await collect(source, source.loop_duration_s))
    assert ecg_uv.dtype == np.float32
    peaks = r_peaks_idx(ecg_uv, FS_HZ)

    t_s = 0.0
    for segment in DEFAULT_SCRIPT:
        # 1.5 s margins: a boundary lies within half an RR of its scripted time.
        inner = peaks[
            (peaks > (t_s + 1.5) * FS_HZ) & (peaks < (t_s + segment.duration_s - 1.5) * FS_HZ)
        ]
        if segment.hr_bpm is None:
            assert len(inner) == 0, f"beats during asystole at {inner / FS_HZ} s"
            quiet_uv = ecg_uv[
                int((t_s + 1.5) * FS_HZ) : int((t_s + segment.duration_s - 1) * FS_HZ)
            ]
            # not a flat line: baseline wander plus ~20 µV noise, as a real lead
            assert 15.0 < float(np.std(quiet_uv)) < 100.0
        else:
            hr_bpm = 60.0 * FS_HZ / float(np.median(np.diff(inner)))
            assert hr_bpm == pytest.approx(segment.hr_bpm, rel=0.05)
            # realistic R waves: about 1 mV above the median (baseline)
            r_amplitude_uv = float(np.median(ecg_uv[inner]) - np.median(ecg_uv))
            assert 700.0 < r_amplitude_uv < 1500.0
        t_s += segment.duration_s

    # No pause anywhere else: the longest RR outside asystole is below 2 s.
    asystole = (peaks > 52 * FS_HZ) & (peaks < 58 * FS_HZ)
    rr_s = np.diff(peaks) / FS_HZ
    assert rr_s[~asystole[1:]].max() < 2.0
    assert 5.0 <= rr_s.max() < 7.0  # the asystole pause


def test_events_and_describe() -> None:
    source = SimulatedSource()
    assert source.events() == [(20.0, 40.0, "extreme_tachy"), (52.0, 57.0, "asystole")]
    assert source.loop_duration_s == 82.0
    assert source.describe() == "simulate:ecgsyn 250Hz x1 5 segments/82s loop seed=42"
    custom = SimulatedSource(script=(Segment(3, 40, "extreme_brady"), Segment(2, None)))
    assert custom.events() == [(0.0, 3.0, "extreme_brady"), (3.0, 5.0, "asystole")]


async def test_same_seed_same_stream_other_seed_other_stream() -> None:
    script = (Segment(4, 80), Segment(1, None))
    first = signal_of(await collect(SimulatedSource(speed=None, script=script, seed=7), 5))
    again = signal_of(await collect(SimulatedSource(speed=None, script=script, seed=7), 5))
    other = signal_of(await collect(SimulatedSource(speed=None, script=script, seed=8), 5))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


async def test_loop_continues_indices_and_end_of_stream_without_loop() -> None:
    script = (Segment(2, 90), Segment(1, None))
    start_utc = datetime(2024, 1, 1, tzinfo=UTC)
    looping = SimulatedSource(speed=None, script=script, start_utc=start_utc)
    frames = await collect(looping, 9.5)  # three passes and a bit
    chunks = chunks_of(frames)
    assert_contiguous(chunks)
    assert all(isinstance(f, EcgChunk) for f in frames)
    assert chunks[-1].first_sample_idx > 9 * FS_HZ
    assert all(c.source_sample_idx == c.first_sample_idx for c in chunks)
    last = chunks[-1]
    assert last.t0_utc == start_utc + timedelta(seconds=last.first_sample_idx / FS_HZ)
    peaks = r_peaks_idx(signal_of(frames), FS_HZ)
    for pass_idx in range(3):  # beats in each pass's first 2 s, none in its asystole second
        t0_s = 3.0 * pass_idx
        n_beats = np.count_nonzero((peaks >= t0_s * FS_HZ) & (peaks < (t0_s + 2) * FS_HZ))
        assert n_beats >= 2
        n_asys = np.count_nonzero((peaks > (t0_s + 2.4) * FS_HZ) & (peaks < (t0_s + 2.9) * FS_HZ))
        assert n_asys == 0

    once = SimulatedSource(speed=None, script=script, loop=False)
    frames = await collect(once, 100)
    assert_contiguous(chunks_of(frames))
    end = frames[-1]
    assert isinstance(end, DeviceEvent)
    assert end.kind is DeviceEventKind.END_OF_STREAM
    assert end.t_s == 3.0  # the script ends on asystole, which ends exactly on time
    assert sum(len(c.samples_uv) for c in chunks_of(frames)) == 750


def test_blocks_start_and_end_on_the_baseline() -> None:
    for hr_bpm in (40.0, 72.0, 175.0):
        block_uv = ecgsyn_block_uv(2500, FS_HZ, hr_bpm, random_state=3)
        assert block_uv[0] == 0.0
        assert abs(block_uv[-1]) < 30.0  # one sample before the next block's 0 µV
        assert abs(len(block_uv) - 2500) <= 0.5 * 60.0 / hr_bpm * FS_HZ + 1
        exact_uv = ecgsyn_block_uv(2500, FS_HZ, hr_bpm, random_state=3, exact_length=True)
        assert len(exact_uv) == 2500
        assert exact_uv[0] == 0.0
        assert abs(exact_uv[-1]) < 30.0


def test_block_cut_does_not_move_with_sub_microvolt_differences(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cut is the same when the T-P interval differs by a fraction of a µV.

    ECGSYN's ODE gives last-digit different ECG on x86-64 and aarch64; on a flat T-P interval
    the raw slope minimum is a near-tie, so the cut (and with it every later sample of the
    stream) moved between the two (`./run.sh pi-check`, session 26: strips 410 µV apart).
    """
    rr_n = round(FS_HZ)  # 60 bpm

    def fake_ecg(seed: int) -> NDArray[np.float64]:
        def simulate(duration: float, sampling_rate: int, **_: object) -> NDArray[np.float64]:
            n = round(duration * sampling_rate)
            t = np.arange(n)
            ecg_mv = np.zeros(n)
            ecg_mv[rr_n // 2 :: rr_n] = 1.0  # R peaks
            phase = (t - rr_n // 2) % rr_n
            ecg_mv += 0.2 * np.exp(-0.5 * ((phase - 0.3 * rr_n) / (0.04 * rr_n)) ** 2)  # T
            # the T-P interval flat to 0.1 µV: what differs between two machines
            ecg_mv += np.random.default_rng(seed).uniform(-1e-4, 1e-4, n)
            return ecg_mv

        return simulate  # type: ignore[return-value]

    blocks = []
    for seed in range(6):
        monkeypatch.setattr(nk, "ecg_simulate", fake_ecg(seed))
        blocks.append(ecgsyn_block_uv(10 * rr_n, FS_HZ, 60.0, random_state=0))
    assert {len(b) for b in blocks} == {len(blocks[0])}
    for b in blocks[1:]:
        np.testing.assert_allclose(b, blocks[0], atol=0.5)  # µV: the same samples, cut alike


async def test_long_segment_is_joined_without_extra_beats_or_gaps() -> None:
    """A 60-s segment is generated in three blocks; its RR series shows no seam."""
    source = SimulatedSource(speed=None, script=(Segment(60, 80),), loop=False, noise_uv=0.0)
    ecg_uv = signal_of(await collect(source, 100))
    assert len(ecg_uv) == 60 * FS_HZ
    # With noise_uv=0, each block starts at exactly 0 µV before the (known) wander is added:
    t_s = np.arange(len(ecg_uv)) / FS_HZ
    wander_uv = sum(a * np.sin(2 * np.pi * f * t_s) for f, a in BASELINE_WANDER_HZ_UV)
    clean_uv = ecg_uv - wander_uv
    for seam_s in (20.0, 40.0):
        near = np.arange(int((seam_s - 0.6) * FS_HZ), int((seam_s + 0.6) * FS_HZ))
        starts = near[np.abs(clean_uv[near]) < 1e-2]
        assert len(starts) >= 1, f"no block start near {seam_s} s"
        assert np.abs(clean_uv[starts - 1]).min() < 30.0  # the previous block ended at ~0 µV
    rr_s = np.diff(r_peaks_idx(ecg_uv, FS_HZ)) / FS_HZ
    assert rr_s.min() > 0.6
    assert rr_s.max() < 0.9  # 80 bpm = 0.75 s


async def test_pacing_follows_the_stream_clock() -> None:
    clock = FakeClock()
    t_start_ns = clock.now_ns
    source = SimulatedSource(speed=1.0, script=(Segment(10, 70),), loop=False, clock=clock)
    frames = await collect(source, 100)
    for c in chunks_of(frames):
        assert c.t0_monotonic_ns == t_start_ns + round(c.first_sample_idx / FS_HZ * NS_PER_S)
    assert frames[-1].t0_monotonic_ns - t_start_ns == pytest.approx(10 * NS_PER_S, abs=1e6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fs_hz": 0.0},
        {"fs_hz": 250.5},
        {"speed": -1.0},
        {"chunk_s": 0.0},
        {"noise_uv": -1.0},
        {"script": ()},
        {"start_utc": datetime(2024, 1, 1)},  # noqa: DTZ001 - naive on purpose
    ],
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        SimulatedSource(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("duration_s", "hr_bpm"), [(0.0, 70.0), (5.0, 10.0), (5.0, 400.0)])
def test_bad_segments(duration_s: float, hr_bpm: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        Segment(duration_s, hr_bpm)
