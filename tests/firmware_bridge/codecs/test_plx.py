from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.codecs.plx import (
    DEV_STATUS_LOW_PERFUSION,
    DEV_STATUS_SENSOR_DISCONNECTED,
    DEV_STATUS_SENSOR_UNCONNECTED_TO_USER,
    MEAS_STATUS_ONGOING,
    MEAS_STATUS_QUESTIONABLE,
    PLX_CONTINUOUS_UUID,
    PLX_SERVICE_UUID,
    PlxContinuous,
    decode_plx_continuous,
    encode_plx_continuous,
)
from firmware_bridge.errors import FrameDecodeError
from tests.firmware_bridge.codecs.strategies import (
    FUZZ,
    ROUND_TRIP,
    returns_or_frame_error,
    sfloat_values,
)


def test_uuids() -> None:
    assert PLX_SERVICE_UUID == "00001822-0000-1000-8000-00805f9b34fb"
    assert PLX_CONTINUOUS_UUID == "00002a5f-0000-1000-8000-00805f9b34fb"


def test_minimal_value() -> None:
    # Flags 0, SpO2 97 (0x0061), PR 72 (0x0048): SFLOAT exponent 0, as oximeters send them.
    raw = bytes.fromhex("0061004800")
    m = decode_plx_continuous(raw)
    assert m == PlxContinuous(spo2_pct=97.0, pulse_rate_bpm=72.0)
    assert m.measurement_ongoing is None
    assert m.sensor_disconnected is None
    assert encode_plx_continuous(m) == raw


def test_every_field_present() -> None:
    raw = bytes.fromhex(
        "1f"  # all five optional parts
        "6100"
        "4800"  # normal: 97 %, 72 bpm
        "6000"
        "4b00"  # fast: 96 %, 75 bpm
        "6200"
        "4600"  # slow: 98 %, 70 bpm
        "2040"  # measurement status: ongoing (bit 5) + questionable (bit 14)
        "208000"  # device status: low perfusion (bit 5) + sensor disconnected (bit 15)
        "19f0"  # PAI 25e-1 = 2.5 %
    )
    m = decode_plx_continuous(raw)
    assert m == PlxContinuous(
        spo2_pct=97.0,
        pulse_rate_bpm=72.0,
        spo2_fast_pct=96.0,
        pr_fast_bpm=75.0,
        spo2_slow_pct=98.0,
        pr_slow_bpm=70.0,
        measurement_status=MEAS_STATUS_ONGOING | MEAS_STATUS_QUESTIONABLE,
        device_sensor_status=DEV_STATUS_LOW_PERFUSION | DEV_STATUS_SENSOR_DISCONNECTED,
        pulse_amplitude_index_pct=2.5,
    )
    assert m.measurement_ongoing is True
    assert m.questionable is True
    assert m.measurement_unavailable is False
    assert m.sensor_disconnected is True
    assert m.no_contact is False
    assert m.poor_signal is True
    assert m.equipment_fault is False
    assert encode_plx_continuous(m) == raw


def test_no_contact_bit() -> None:
    m = PlxContinuous(None, None, device_sensor_status=DEV_STATUS_SENSOR_UNCONNECTED_TO_USER)
    decoded = decode_plx_continuous(encode_plx_continuous(m))
    assert decoded.no_contact is True
    assert decoded.sensor_disconnected is False


@pytest.mark.parametrize("special", ["ff07", "0008", "0108", "fe07", "0208"])
def test_sfloat_specials_become_none(special: str) -> None:
    m = decode_plx_continuous(bytes.fromhex("00" + special + special))
    assert m.spo2_pct is None
    assert m.pulse_rate_bpm is None


def test_none_encodes_as_nan() -> None:
    assert encode_plx_continuous(PlxContinuous(None, 60.0)) == bytes.fromhex("00ff073c00")


@pytest.mark.parametrize(
    ("hexdata", "match"),
    [
        ("", "too short for Flags"),
        ("006100", "too short for SpO2PR-Normal PR"),
        ("0161004800", "SpO2PR-Fast"),
        ("0461004800", "Measurement Status"),
        ("08610048000000", "Device and Sensor Status"),
        ("1061004800", "Pulse Amplitude Index"),
        ("006100480000", "trailing"),
        ("0065004800", r"SpO2PR-Normal SpO2 = 101\.0 outside"),
        ("006100ff0f", r"PR = -1\.0 outside"),
        ("10610048006500", "Pulse Amplitude Index = 101"),
    ],
)
def test_bad_values(hexdata: str, match: str) -> None:
    with pytest.raises(FrameDecodeError, match=match):
        decode_plx_continuous(bytes.fromhex(hexdata))


def test_reserved_flag_bits_are_ignored() -> None:
    assert decode_plx_continuous(bytes.fromhex("e061004800")).spo2_pct == 97.0


@pytest.mark.parametrize(
    "m",
    [
        PlxContinuous(100.5, 60.0),
        PlxContinuous(97.0, -1.0),
        PlxContinuous(math.nan, 60.0),
        PlxContinuous(97.0, 60.0, measurement_status=1 << 16),
        PlxContinuous(97.0, 60.0, device_sensor_status=1 << 24),
        PlxContinuous(97.0, 60.0, pulse_amplitude_index_pct=-0.1),
    ],
)
def test_encoder_rejects_invalid(m: PlxContinuous) -> None:
    with pytest.raises(ValueError, match="must"):
        encode_plx_continuous(m)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_returns_or_raises_frame_error(data: bytes) -> None:
    returns_or_frame_error(decode_plx_continuous, data)


pct = st.none() | sfloat_values(-3, 0).filter(lambda v: 0.0 <= v <= 100.0)
bpm = st.none() | sfloat_values(-2, 2).filter(lambda v: v >= 0.0)

plx_frames = st.builds(
    PlxContinuous,
    spo2_pct=pct,
    pulse_rate_bpm=bpm,
    spo2_fast_pct=pct,
    pr_fast_bpm=bpm,
    spo2_slow_pct=pct,
    pr_slow_bpm=bpm,
    measurement_status=st.none() | st.integers(0, 0xFFFF),
    device_sensor_status=st.none() | st.integers(0, 0xFFFFFF),
    pulse_amplitude_index_pct=pct,
)


@ROUND_TRIP
@given(plx_frames)
def test_round_trip(m: PlxContinuous) -> None:
    raw = encode_plx_continuous(m)
    assert len(raw) <= 20  # fits one notification at the default ATT MTU of 23
    assert decode_plx_continuous(raw) == m
