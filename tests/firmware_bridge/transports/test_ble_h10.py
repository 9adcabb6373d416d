"""BLE transport with a simulated Polar H10, through unmodified bleak and a fake BlueZ.

The H10 streams MIT-BIH record 232 (channel 0, resampled to 130 Hz, whole µV) as PMD ECG
frames, faster than real time. The expected samples are computed here from the record with
wfdb and the project's resampler, independently of the fake.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import wfdb
from numpy.typing import NDArray

from firmware_bridge.devices import BleDeviceConfig
from firmware_bridge.frames import DeviceEvent, DeviceEventKind, EcgChunk
from firmware_bridge.transports.ble import BleFrame, BleSource
from firmware_bridge.transports.replay import resample_uv
from tests.fake_bluez.devices import H10_SAMPLES_PER_FRAME, PMD_DATA, DeviceSpec

if TYPE_CHECKING:
    from tests.fake_bluez.fixtures import FakeBluezHandle


H10_ADDRESS = "A0:9E:1A:AB:CD:12"
H10_NAME = "Polar H10 ABCD1234"
QUANTISATION_UV = 0.5 + 1e-3
"""The H10 sends whole µV: a sample differs from the float record by at most 0.5 µV."""


RECORD_S = 120.0
"""The simulated strap plays the first two minutes of the record, then loops."""


@pytest.fixture(scope="module")
def record_232_uv(mitdb: Path) -> NDArray[np.float64]:
    """mitdb 232 [0, 120 s), channel 0 (MLII), at 130 Hz, µV, unrounded (the expected stream)."""
    record = wfdb.rdrecord(str(mitdb / "232"), channels=[0], sampto=round(RECORD_S * 360))
    uv = (np.asarray(record.p_signal[:, 0], dtype=np.float64) * 1000.0).astype(np.float32)
    assert record.fs == 360
    return resample_uv(uv, 13, 36).astype(np.float64)  # 360 -> 130 Hz = 13/36


class Recorder:
    """What a test saw from the source, in order."""

    def __init__(self) -> None:
        self.chunks: list[EcgChunk] = []
        self.events: list[DeviceEvent] = []

    def add(self, frame: BleFrame) -> None:
        if isinstance(frame, EcgChunk):
            self.chunks.append(frame)
        elif isinstance(frame, DeviceEvent):
            self.events.append(frame)

    @property
    def n_samples(self) -> int:
        return sum(len(c.samples_uv) for c in self.chunks)

    def kinds(self, *wanted: DeviceEventKind) -> list[DeviceEventKind]:
        return [e.kind for e in self.events if not wanted or e.kind in wanted]

    def samples(self) -> NDArray[np.float32]:
        return np.concatenate([c.samples_uv for c in self.chunks])


async def pump_until(
    frames: AsyncGenerator[tuple[str, BleFrame]],
    rec: Recorder,
    done: Callable[[], bool],
    timeout_s: float,
) -> None:
    """Consume frames into ``rec`` until ``done()`` (fails the test after ``timeout_s``)."""
    async with asyncio.timeout(timeout_s):
        while not done():
            _device, frame = await anext(frames)
            rec.add(frame)


def h10_spec(mitdb: Path, speed: float) -> DeviceSpec:
    return DeviceSpec(
        kind="h10",
        address=H10_ADDRESS,
        name=H10_NAME,
        speed=speed,
        record=str(mitdb / "232"),
        stop_s=RECORD_S,
    )


def assert_matches_record(
    rec: Recorder, first_record_idx: int, expected_uv: NDArray[np.float64]
) -> int:
    """Check contiguity and every non-NaN sample against the record; return the NaN count."""
    for prev, nxt in zip(rec.chunks, rec.chunks[1:], strict=False):
        assert nxt.first_sample_idx == prev.first_sample_idx + len(prev.samples_uv)
        assert nxt.fs_hz == 130.0
    assert rec.chunks[0].first_sample_idx == 0
    got = rec.samples().astype(np.float64)
    idx = (first_record_idx + np.arange(len(got))) % len(expected_uv)
    valid = ~np.isnan(got)
    err = np.abs(got[valid] - expected_uv[idx[valid]])
    assert err.max() <= QUANTISATION_UV, f"max error {err.max():.3f} µV"
    return int((~valid).sum())


async def test_h10_streams_mitdb_232_samples(
    fake_bluez: Callable[..., FakeBluezHandle],
    mitdb: Path,
    record_232_uv: NDArray[np.float64],
) -> None:
    fake = fake_bluez(h10_spec(mitdb, speed=40.0))
    source = BleSource([BleDeviceConfig(kind="polar_h10", name=H10_NAME, silence_s=2.0)])
    rec = Recorder()
    target = 60 * 130  # one minute of record
    async with contextlib.aclosing(source.tagged_frames()) as frames:
        await pump_until(frames, rec, lambda: rec.n_samples >= target, timeout_s=20.0)
    info = (await fake.control.describe(H10_ADDRESS))["info"]
    nan_count = assert_matches_record(rec, info["first_sent_sample"], record_232_uv)
    assert nan_count == 0
    assert rec.kinds(DeviceEventKind.CONNECTED, DeviceEventKind.DISCONNECTED) == [
        DeviceEventKind.CONNECTED
    ]
    stats = source.stats[H10_NAME]
    assert stats.malformed_frames == 0
    assert stats.ecg_samples == rec.n_samples
    assert rec.n_samples % H10_SAMPLES_PER_FRAME == 0


async def test_h10_drop_and_silence_reconnect_with_continuous_stream_time(
    fake_bluez: Callable[..., FakeBluezHandle],
    mitdb: Path,
    record_232_uv: NDArray[np.float64],
) -> None:
    speed = 20.0
    fake = fake_bluez(h10_spec(mitdb, speed=speed))
    cfg = BleDeviceConfig(
        kind="polar_h10", address=H10_ADDRESS, silence_s=0.5, reconnect_initial_s=0.2
    )
    source = BleSource([cfg])
    rec = Recorder()

    def connected_count() -> int:
        return rec.kinds().count(DeviceEventKind.CONNECTED)

    async with contextlib.aclosing(source.tagged_frames()) as frames:
        await pump_until(frames, rec, lambda: rec.n_samples >= 5 * 130, timeout_s=20.0)
        # 1) the radio link drops
        await fake.control.drop(H10_ADDRESS)
        await pump_until(frames, rec, lambda: connected_count() == 2, timeout_s=20.0)
        n = rec.n_samples
        await pump_until(frames, rec, lambda: rec.n_samples >= n + 5 * 130, timeout_s=20.0)
        # 2) the strap stops notifying with the link up (the H10's stall on Linux)
        await fake.control.silence(H10_ADDRESS, 1.2)
        await pump_until(frames, rec, lambda: connected_count() == 3, timeout_s=20.0)
        n = rec.n_samples
        await pump_until(frames, rec, lambda: rec.n_samples >= n + 5 * 130, timeout_s=20.0)

    link = rec.kinds(DeviceEventKind.CONNECTED, DeviceEventKind.DISCONNECTED)
    assert link == [
        DeviceEventKind.CONNECTED,
        DeviceEventKind.DISCONNECTED,
        DeviceEventKind.CONNECTED,
        DeviceEventKind.DISCONNECTED,
        DeviceEventKind.CONNECTED,
    ]
    details = [e.detail for e in rec.events if e.kind is DeviceEventKind.DISCONNECTED]
    assert details[0].endswith("link lost")
    assert details[1].endswith("silent for 0.5 s")
    assert all(e.extra["device"] == H10_ADDRESS for e in rec.events)

    info = (await fake.control.describe(H10_ADDRESS))["info"]
    nan_count = assert_matches_record(rec, info["first_sent_sample"], record_232_uv)
    # Every valid sample sits at its record position, so the NaN fill was exact; the
    # silence alone lost >= 1.2 s x speed of record.
    assert nan_count >= round(1.2 * speed * 130) - H10_SAMPLES_PER_FRAME
    assert source.stats[H10_ADDRESS].ecg_gap_samples == nan_count
    # Each reconnect started ECG once and subscribed once: no duplicate callbacks.
    assert info["ecg_starts"] >= 3
    stats = (await fake.control.describe(H10_ADDRESS))["stats"]
    assert stats["start_notify_repeated"] == 0
    valid = int((~np.isnan(rec.samples())).sum())
    assert valid <= info["sent_by_uuid"][PMD_DATA] * H10_SAMPLES_PER_FRAME


async def test_h10_counts_and_drops_1000_malformed_frames(
    fake_bluez: Callable[..., FakeBluezHandle],
    mitdb: Path,
    record_232_uv: NDArray[np.float64],
) -> None:
    fake = fake_bluez(h10_spec(mitdb, speed=10.0))
    source = BleSource([BleDeviceConfig(kind="polar_h10", address=H10_ADDRESS, silence_s=2.0)])
    stats = source.stats[H10_ADDRESS]
    rec = Recorder()
    async with contextlib.aclosing(source.tagged_frames()) as frames:
        await pump_until(frames, rec, lambda: rec.n_samples >= 2 * 130, timeout_s=20.0)
        sender = asyncio.create_task(fake.control.send_malformed(H10_ADDRESS, 1000))
        await pump_until(frames, rec, sender.done, timeout_s=20.0)
        delivered = sender.result()
        await pump_until(frames, rec, lambda: stats.malformed_frames >= 1000, timeout_s=20.0)
        n = rec.n_samples
        await pump_until(frames, rec, lambda: rec.n_samples >= n + 3 * 130, timeout_s=20.0)

    assert delivered == 1000
    assert stats.malformed_frames == 1000
    assert stats.notifications_dropped == 0
    assert rec.kinds(DeviceEventKind.DISCONNECTED) == []
    info = (await fake.control.describe(H10_ADDRESS))["info"]
    assert assert_matches_record(rec, info["first_sent_sample"], record_232_uv) == 0
