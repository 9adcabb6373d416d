"""BLE transport without a bus: config validation, kind detection, ECG gap arithmetic."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from pydantic import ValidationError

from firmware_bridge.codecs.heart_rate import HEART_RATE_SERVICE_UUID
from firmware_bridge.codecs.plx import PLX_SERVICE_UUID
from firmware_bridge.codecs.pmd import PmdEcgFrame
from firmware_bridge.codecs.thermometer import (
    HEALTH_THERMOMETER_SERVICE_UUID,
    TemperatureMeasurement,
    encode_temperature_measurement,
)
from firmware_bridge.devices import BleDeviceConfig
from firmware_bridge.frames import EcgChunk, TemperatureReading
from firmware_bridge.limits import TEMPERATURE_MAX_PLAUSIBLE_C, TEMPERATURE_MIN_PLAUSIBLE_C
from firmware_bridge.transports import Source
from firmware_bridge.transports.ble import (
    BleDeviceStats,
    BleFrame,
    BleSource,
    _DeviceLink,
    kinds_from_advertisement,
)


def test_config_needs_exactly_one_of_address_and_name() -> None:
    assert BleDeviceConfig(kind="hrs", address="AA:BB:CC:DD:EE:FF").device_id == (
        "AA:BB:CC:DD:EE:FF"
    )
    assert BleDeviceConfig(kind="hrs", name="Strap", label="bed3").device_id == "bed3"
    with pytest.raises(ValidationError, match="exactly one"):
        BleDeviceConfig(kind="hrs")
    with pytest.raises(ValidationError, match="exactly one"):
        BleDeviceConfig(kind="hrs", address="AA:BB:CC:DD:EE:FF", name="Strap")
    with pytest.raises(ValidationError):
        BleDeviceConfig(kind="hrs", address="AA:BB:CC:DD:EE")  # 5 octets
    with pytest.raises(ValidationError):
        BleDeviceConfig(kind="ecg_patch", name="x")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        BleDeviceConfig(kind="hrs", name="x", silence_s=0.0)
    with pytest.raises(ValidationError, match="reconnect_initial_s"):
        BleDeviceConfig(kind="hrs", name="x", reconnect_initial_s=20.0, reconnect_max_s=10.0)
    with pytest.raises(ValidationError):
        BleDeviceConfig(kind="hrs", name="x", unknown=1)  # type: ignore[call-arg]


def test_rr_emitted_by_default_for_hrs_only() -> None:
    assert BleDeviceConfig(kind="hrs", name="x").rr_enabled
    assert not BleDeviceConfig(kind="polar_h10", name="x").rr_enabled
    assert BleDeviceConfig(kind="polar_h10", name="x", emit_rr=True).rr_enabled


def test_kinds_from_advertisement() -> None:
    assert kinds_from_advertisement("Polar H10 ABCD1234", [HEART_RATE_SERVICE_UUID]) == (
        "polar_h10",
        "hrs",
    )
    assert kinds_from_advertisement("Garmin HRM", [HEART_RATE_SERVICE_UUID.upper()]) == ("hrs",)
    assert kinds_from_advertisement(None, [PLX_SERVICE_UUID]) == ("plx",)
    assert kinds_from_advertisement("T", [HEALTH_THERMOMETER_SERVICE_UUID]) == ("thermometer",)
    assert kinds_from_advertisement("Speaker", []) == ()


def test_source_checks_devices_and_describes_itself() -> None:
    with pytest.raises(ValueError, match="at least one"):
        BleSource([])
    with pytest.raises(ValueError, match="unique"):
        BleSource([BleDeviceConfig(kind="hrs", name="x"), BleDeviceConfig(kind="plx", name="x")])
    source = BleSource(
        [
            BleDeviceConfig(kind="polar_h10", name="Polar H10 ABCD1234"),
            BleDeviceConfig(kind="plx", address="00:1C:05:12:34:56", label="spo2"),
        ]
    )
    assert source.describe() == "ble:polar_h10(Polar H10 ABCD1234)+plx(spo2)"
    # Runtime protocol check only: statically, frames() yields BleFrame, wider than Frame
    # until frames.py's Frame union includes Spo2Reading and TemperatureReading.
    as_object: object = source
    assert isinstance(as_object, Source)


def _link() -> _DeviceLink:
    out: asyncio.Queue[tuple[str, BleFrame]] = asyncio.Queue()
    return _DeviceLink(
        BleDeviceConfig(kind="polar_h10", name="h10"), out, BleDeviceStats(), time.monotonic_ns()
    )


PERIOD_NS = 1e9 / 130


def _frame(first_sample: int, n: int = 73, base_ns: int = 10**15) -> PmdEcgFrame:
    last_ts = base_ns + round((first_sample + n - 1) * PERIOD_NS)
    return PmdEcgFrame(sensor_timestamp_ns=last_ts, samples_uv=tuple(range(n)))


def _idx(chunks: list[EcgChunk]) -> list[tuple[int, int, bool]]:
    return [
        (c.first_sample_idx, len(c.samples_uv), bool(np.isnan(c.samples_uv).all())) for c in chunks
    ]


def test_ecg_gap_from_sensor_clock_across_sessions() -> None:
    """After a reconnect, the NaN fill equals the samples the sensor clock says were missed."""
    link = _link()
    t = 1_000_000_000
    assert _idx(link._ecg_chunks(_frame(0), t, session=1)) == [(0, 73, False)]
    assert _idx(link._ecg_chunks(_frame(73), t, session=1)) == [(73, 73, False)]
    # reconnect: 1000 samples missed by the sensor clock, whatever the arrival time says
    chunks = link._ecg_chunks(_frame(146 + 1000), t + 10**6, session=2)
    assert _idx(chunks) == [(146, 650, True), (796, 350, True), (1146, 73, False)]
    assert link.stats.ecg_gap_samples == 1000


def test_ecg_jitter_within_a_session_is_not_a_gap_but_a_lost_frame_is() -> None:
    link = _link()
    link._ecg_chunks(_frame(0), 0, session=1)
    # the sensor clock runs 20 samples fast: jitter, stream stays contiguous
    assert _idx(link._ecg_chunks(_frame(73 + 20), 0, session=1)) == [(73, 73, False)]
    # one 73-sample notification lost within the session: filled
    chunks = link._ecg_chunks(_frame(93 + 73 + 73), 0, session=1)
    assert _idx(chunks) == [(146, 73, True), (219, 73, False)]


def test_ecg_clock_reset_falls_back_to_arrival_time() -> None:
    """A strap that rebooted restarts its clock: the gap is estimated from arrival times."""
    link = _link()
    t0 = 5_000_000_000
    link._ecg_chunks(_frame(0), t0, session=1)
    # 2 s later (by arrival), the clock restarted near zero
    chunks = link._ecg_chunks(_frame(0, base_ns=0), t0 + 2_000_000_000, session=2)
    assert _idx(chunks) == [(73, 260 - 73, True), (260, 73, False)]
    assert link.stats.ecg_clock_resets == 1


async def test_thermometer_gate_is_the_limits_table() -> None:
    """A survivable extreme (24 °C, 45.5 °C) passes; outside 10-46 °C is counted and dropped."""
    out: asyncio.Queue[tuple[str, BleFrame]] = asyncio.Queue()
    stats = BleDeviceStats()
    link = _DeviceLink(
        BleDeviceConfig(kind="thermometer", name="t"), out, stats, time.monotonic_ns()
    )
    for value in (24.0, 45.5, TEMPERATURE_MIN_PLAUSIBLE_C, TEMPERATURE_MAX_PLAUSIBLE_C, 9.9, 46.1):
        await link._temperature(
            encode_temperature_measurement(TemperatureMeasurement(value)), time.monotonic_ns()
        )
    frames = [out.get_nowait()[1] for _ in range(out.qsize())]
    kept = [f.temperature_c for f in frames if isinstance(f, TemperatureReading)]
    assert kept == pytest.approx([24.0, 45.5, 10.0, 46.0])
    assert stats.implausible_values == 2
