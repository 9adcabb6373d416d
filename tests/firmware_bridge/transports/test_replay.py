"""WfdbReplaySource on real PhysioNet records (skipped when ../shared/data is absent)."""

from __future__ import annotations

import itertools
import math
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import wfdb

from firmware_bridge.errors import RecordNotFoundError, RecordReadError, SourceError
from firmware_bridge.frames import DeviceEvent, DeviceEventKind, EcgChunk, Frame
from firmware_bridge.transports import Source
from firmware_bridge.transports.clock import NS_PER_S
from firmware_bridge.transports.replay import WfdbReplaySource, resample_uv
from tests.firmware_bridge.transports import FakeClock


async def collect(source: WfdbReplaySource, max_frames: int | None = None) -> list[Frame]:
    frames: list[Frame] = []
    async for frame in source.frames():
        frames.append(frame)
        if max_frames is not None and len(frames) >= max_frames:
            break
    return frames


def chunks_of(frames: list[Frame]) -> list[EcgChunk]:
    return [f for f in frames if isinstance(f, EcgChunk)]


def assert_contiguous(chunks: list[EcgChunk]) -> None:
    assert chunks[0].first_sample_idx == 0
    for prev, nxt in itertools.pairwise(chunks):
        assert nxt.first_sample_idx == prev.first_sample_idx + len(prev.samples_uv)


def copy_record(src: Path, record: str, dst: Path) -> Path:
    for path in src.glob(f"{record}.*"):
        shutil.copy(path, dst / path.name)
    return dst / record


# -- streaming --------------------------------------------------------------------------------


async def test_chunks_are_contiguous_float32_uv_matching_wfdb(mitdb: Path) -> None:
    source = WfdbReplaySource(mitdb / "100", speed=None, stop_s=10.0)
    assert isinstance(source, Source)
    frames = await collect(source)
    chunks = chunks_of(frames)
    assert_contiguous(chunks)
    assert all(c.samples_uv.dtype == np.float32 for c in chunks)
    assert all(c.fs_hz == 360.0 and c.source_fs_hz == 360.0 for c in chunks)
    assert all(c.source_sample_idx == c.first_sample_idx for c in chunks)
    assert {len(c.samples_uv) for c in chunks} == {90}  # round(0.25 s * 360 Hz)

    streamed_uv = np.concatenate([c.samples_uv for c in chunks])
    expected_mv = wfdb.rdrecord(str(mitdb / "100"), channels=[0], sampto=3600).p_signal[:, 0]
    np.testing.assert_allclose(streamed_uv, expected_mv * 1000.0, rtol=1e-6)
    # MLII of record 100: R waves of about 1 mV, so the scale is µV, not mV or V.
    assert 500.0 < float(np.max(streamed_uv) - np.median(streamed_uv)) < 3000.0

    end = frames[-1]
    assert isinstance(end, DeviceEvent)
    assert end.kind is DeviceEventKind.END_OF_STREAM
    assert end.t_s == pytest.approx(10.0)
    assert sum(isinstance(f, DeviceEvent) for f in frames) == 1


async def test_properties_and_describe(mitdb: Path) -> None:
    source = WfdbReplaySource(mitdb / "232.hea", fs_hz=130.0, speed=50.0)
    assert source.record_name == "232"
    assert source.signal_name == "MLII"
    assert source.source_fs_hz == 360.0
    assert source.fs_hz == 130.0
    assert source.n_samples == math.ceil(650_000 * 13 / 36)
    assert source.duration_s == pytest.approx(650_000 / 360.0, abs=0.01)
    assert source.describe() == "replay:232 ch0 MLII 360Hz→130Hz x50"
    assert WfdbReplaySource(mitdb / "100", speed=None, loop=True).describe() == (
        "replay:100 ch0 MLII 360Hz xmax loop"
    )


async def test_channel_pick(mitdb: Path) -> None:
    source = WfdbReplaySource(mitdb / "100", channel=1, speed=None, stop_s=2.0)
    assert source.signal_name == "V5"
    streamed_uv = np.concatenate([c.samples_uv for c in chunks_of(await collect(source))])
    expected_mv = wfdb.rdrecord(str(mitdb / "100"), channels=[1], sampto=720).p_signal[:, 0]
    np.testing.assert_allclose(streamed_uv, expected_mv * 1000.0, rtol=1e-6)


async def test_resample_to_130_hz_counts_and_maps_samples(mitdb: Path) -> None:
    source = WfdbReplaySource(mitdb / "100", fs_hz=130.0, speed=None, start_s=60.0, stop_s=70.0)
    assert source.n_samples == 1300  # 10 s * 130 Hz (3600 * 13 / 36)
    chunks = chunks_of(await collect(source))
    assert_contiguous(chunks)
    assert sum(len(c.samples_uv) for c in chunks) == 1300
    assert all(c.fs_hz == 130.0 and c.source_fs_hz == 360.0 for c in chunks)
    for c in chunks:
        # the record's sample number nearest to the chunk's first sample (start_s = 60 s)
        assert c.source_sample_idx == 21_600 + round(c.first_sample_idx * 360 / 130)

    # The resampled wave follows the original: compare at the mapped instants.
    record = wfdb.rdrecord(str(mitdb / "100"), channels=[0], sampfrom=21_600, sampto=25_200)
    original_uv = 1000.0 * record.p_signal[:, 0]
    resampled_uv = np.concatenate([c.samples_uv for c in chunks])
    at_same_times_uv = np.interp(np.arange(1300) * 36 / 13, np.arange(3600), original_uv)
    inner = slice(20, -20)  # leave out the filter's edges
    assert np.corrcoef(resampled_uv[inner], at_same_times_uv[inner])[0, 1] > 0.98


async def test_vfdb_250_hz_record_opens_and_resamples(data_dir: Path) -> None:
    source = WfdbReplaySource(data_dir / "vfdb" / "418", fs_hz=130.0, speed=None, stop_s=4.0)
    assert source.source_fs_hz == 250.0
    assert source.n_samples == 520  # 1000 samples * 13 / 25


async def test_nstdb_header_baseline_is_streamed_as_is(data_dir: Path) -> None:
    """nstdb test records sit near -5 mV (header baseline 1024); the source does not fix it."""
    source = WfdbReplaySource(data_dir / "nstdb" / "118e00", speed=None, stop_s=10.0)
    streamed_uv = np.concatenate([c.samples_uv for c in chunks_of(await collect(source))])
    assert -7000.0 < float(np.median(streamed_uv)) < -4000.0


async def test_invalid_samples_stay_nan(tmp_path: Path) -> None:
    signal_mv = np.sin(np.arange(2500) / 20.0)[:, np.newaxis]
    signal_mv[1000:1010] = np.nan
    wfdb.wrsamp(
        "nanrec",
        fs=250,
        units=["mV"],
        sig_name=["ECG"],
        p_signal=signal_mv,
        fmt=["16"],
        write_dir=str(tmp_path),
    )
    same_rate = WfdbReplaySource(tmp_path / "nanrec", speed=None)
    streamed_uv = np.concatenate([c.samples_uv for c in chunks_of(await collect(same_rate))])
    assert np.array_equal(np.flatnonzero(np.isnan(streamed_uv)), np.arange(1000, 1010))

    resampled = WfdbReplaySource(tmp_path / "nanrec", speed=None, fs_hz=125.0)
    out_uv = np.concatenate([c.samples_uv for c in chunks_of(await collect(resampled))])
    nan_idx = np.flatnonzero(np.isnan(out_uv))
    assert nan_idx.min() == 500
    assert nan_idx.max() == 504  # output j sits at input 2j; 2 * 505 = 1010 is valid again
    assert not np.isnan(out_uv[:500]).any()
    assert not np.isnan(out_uv[506:]).any()


async def test_loop_keeps_stream_indices_increasing(mitdb: Path) -> None:
    start_utc = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    source = WfdbReplaySource(
        mitdb / "100", speed=None, start_s=1.0, stop_s=2.0, loop=True, start_utc=start_utc
    )
    frames = await collect(source, max_frames=12)  # 4 chunks per pass -> 3 passes
    chunks = chunks_of(frames)
    assert len(chunks) == 12
    assert_contiguous(chunks)
    assert chunks[-1].first_sample_idx == 11 * 90
    assert [c.source_sample_idx for c in chunks[:5]] == [360, 450, 540, 630, 360]
    assert chunks[-1].t0_utc == start_utc + timedelta(seconds=11 * 0.25)
    np.testing.assert_array_equal(chunks[0].samples_uv, chunks[4].samples_uv)


async def test_default_start_utc_is_now_at_first_frame(mitdb: Path) -> None:
    source = WfdbReplaySource(mitdb / "100", speed=None, stop_s=1.0)
    before = datetime.now(UTC)
    chunks = chunks_of(await collect(source))
    assert before <= chunks[0].t0_utc <= datetime.now(UTC)
    assert chunks[2].t0_utc - chunks[0].t0_utc == timedelta(seconds=0.5)


# -- pacing -----------------------------------------------------------------------------------


async def test_pacing_schedule_has_no_drift(mitdb: Path) -> None:
    clock = FakeClock()
    t_start_ns = clock.now_ns
    source = WfdbReplaySource(mitdb / "100", speed=2.0, fs_hz=130.0, stop_s=60.0, clock=clock)
    frames = await collect(source)
    chunks = chunks_of(frames)
    for c in chunks:  # chunk k is due at t_start + (stream time of its first sample) / speed
        assert c.t0_monotonic_ns == t_start_ns + round(c.first_sample_idx / 130.0 / 2.0 * NS_PER_S)
    assert frames[-1].t0_monotonic_ns == t_start_ns + 30 * NS_PER_S


async def test_pacing_at_speed_50_takes_duration_over_50(mitdb: Path) -> None:
    source = WfdbReplaySource(mitdb / "100", speed=50.0, stop_s=20.0)
    t0 = time.monotonic()
    frames = await collect(source)
    elapsed_s = time.monotonic() - t0
    assert isinstance(frames[-1], DeviceEvent)
    assert elapsed_s >= 0.38  # 20 s / 50 = 0.4 s: paced (a busy machine only adds to it)
    chunks = chunks_of(frames)
    span_s = (chunks[-1].t0_monotonic_ns - chunks[0].t0_monotonic_ns) / NS_PER_S
    assert span_s == pytest.approx((20.0 - 0.25) / 50.0, abs=0.05)


async def test_speed_none_is_fast(mitdb: Path) -> None:
    source = WfdbReplaySource(mitdb / "100", speed=None, fs_hz=130.0)  # all 30 min
    # unpaced: all 30 min come without waiting (paced, this would outlast the test timeout)
    frames = await collect(source)
    assert sum(len(c.samples_uv) for c in chunks_of(frames)) == source.n_samples


# -- errors -----------------------------------------------------------------------------------


def test_missing_record(tmp_path: Path) -> None:
    with pytest.raises(RecordNotFoundError, match=r"no .*nothere\.hea"):
        WfdbReplaySource(tmp_path / "nothere")


def test_truncated_signal_file(mitdb: Path, tmp_path: Path) -> None:
    record = copy_record(mitdb, "100", tmp_path)
    dat = tmp_path / "100.dat"
    with dat.open("r+b") as f:
        f.truncate(dat.stat().st_size // 2)
    with pytest.raises(RecordReadError, match=r"100\.dat is truncated") as info:
        WfdbReplaySource(record)
    assert "650000 samples" in info.value.reason
    # Also when only the intact first part is asked for: the file is still broken.
    with pytest.raises(RecordReadError, match="truncated"):
        WfdbReplaySource(record, stop_s=10.0)


def test_bad_channel_names_the_channels(mitdb: Path) -> None:
    with pytest.raises(RecordReadError, match=r"channel 2 does not exist.*2 channels") as info:
        WfdbReplaySource(mitdb / "100", channel=2)
    assert "0: MLII, 1: V5" in str(info.value)


def test_missing_signal_file(mitdb: Path, tmp_path: Path) -> None:
    shutil.copy(mitdb / "100.hea", tmp_path / "100.hea")
    with pytest.raises(RecordReadError, match=r"signal file 100\.dat is missing"):
        WfdbReplaySource(tmp_path / "100")


def test_corrupt_header(tmp_path: Path) -> None:
    (tmp_path / "bad.hea").write_text("bad this is not a header\n")
    with pytest.raises(RecordReadError, match="header"):
        WfdbReplaySource(tmp_path / "bad")


def test_empty_slice(mitdb: Path) -> None:
    with pytest.raises(RecordReadError, match="empty slice"):
        WfdbReplaySource(mitdb / "100", start_s=5.0, stop_s=5.0)


def test_errors_share_the_source_root(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        WfdbReplaySource(tmp_path / "nothere")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"speed": 0.0},
        {"fs_hz": -1.0},
        {"chunk_s": 0.0},
        {"start_utc": datetime(2024, 1, 1)},  # noqa: DTZ001 - naive on purpose
    ],
)
def test_bad_arguments(mitdb: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        WfdbReplaySource(mitdb / "100", **kwargs)  # type: ignore[arg-type]


def test_resample_uv_all_nan() -> None:
    out = resample_uv(np.full(36, np.nan, dtype=np.float32), 13, 36)
    assert out.shape == (13,)
    assert np.isnan(out).all()


@pytest.mark.parametrize(
    ("record", "kwargs"),
    [
        ("mitdb/100", {"fs_hz": 130.0}),
        ("mitdb/208", {"channel": 1, "start_s": 60.0, "stop_s": 200.5}),
        ("vfdb/418", {"fs_hz": 360.0, "stop_s": 120.0}),
    ],
)
def test_read_in_subprocess_gives_the_same_stream(
    data_dir: Path, record: str, kwargs: dict[str, float]
) -> None:
    if not (data_dir / f"{record}.hea").exists():
        pytest.skip(f"{record} not in the shared data")
    here = WfdbReplaySource(data_dir / record, speed=None, **kwargs)  # type: ignore[arg-type]
    child = WfdbReplaySource(
        data_dir / record,
        speed=None,
        read_in_subprocess=True,
        **kwargs,  # type: ignore[arg-type]
    )
    assert child.samples_uv.dtype == np.float32
    np.testing.assert_array_equal(child.samples_uv, here.samples_uv)
    assert child.describe() == here.describe()
    assert (child.fs_hz, child.source_fs_hz, child.signal_name) == (
        here.fs_hz,
        here.source_fs_hz,
        here.signal_name,
    )
    assert [child.source_sample_idx(i) for i in (0, 1, 777)] == [
        here.source_sample_idx(i) for i in (0, 1, 777)
    ]


def test_read_in_subprocess_raises_what_the_reader_raised(mitdb: Path, tmp_path: Path) -> None:
    with pytest.raises(RecordNotFoundError, match="no-such-record"):
        WfdbReplaySource(tmp_path / "no-such-record", read_in_subprocess=True)
    with pytest.raises(RecordReadError, match="channel 5 does not exist"):
        WfdbReplaySource(mitdb / "100", channel=5, read_in_subprocess=True)
    with pytest.raises(ValueError, match="not a simple fraction"):
        WfdbReplaySource(mitdb / "100", fs_hz=359.999, read_in_subprocess=True)


def test_importing_the_replay_source_does_not_import_wfdb() -> None:
    import subprocess
    import sys

    code = (
        "import sys, firmware_bridge.transports.replay;"
        " print(sorted({'wfdb', 'pandas'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
