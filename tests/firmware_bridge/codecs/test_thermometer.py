from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.codecs.thermometer import (
    HEALTH_THERMOMETER_SERVICE_UUID,
    TEMPERATURE_MEASUREMENT_UUID,
    TemperatureMeasurement,
    TemperatureType,
    decode_temperature_measurement,
    encode_temperature_measurement,
    is_valid_temperature,
)
from firmware_bridge.errors import FrameDecodeError
from tests.firmware_bridge.codecs.strategies import (
    FUZZ,
    ROUND_TRIP,
    float32_values,
    returns_or_frame_error,
)


def test_uuids() -> None:
    assert HEALTH_THERMOMETER_SERVICE_UUID == "00001809-0000-1000-8000-00805f9b34fb"
    assert TEMPERATURE_MEASUREMENT_UUID == "00002a1c-0000-1000-8000-00805f9b34fb"


def test_celsius_only() -> None:
    raw = bytes.fromhex("006e0100ff")  # 366e-1 °C
    m = decode_temperature_measurement(raw)
    assert m == TemperatureMeasurement(36.6)
    assert m.temperature_c == 36.6
    assert encode_temperature_measurement(m) == raw


def test_fahrenheit_with_time_stamp_and_type() -> None:
    raw = bytes.fromhex(
        "07"  # Fahrenheit, time stamp, type
        "da0300ff"  # 986e-1 = 98.6 °F
        "e807"
        "02"
        "1d"
        "0c"
        "22"
        "38"  # 2024-02-29 12:34:56 (leap day)
        "06"  # mouth
    )
    m = decode_temperature_measurement(raw)
    assert m.value == 98.6
    assert m.fahrenheit
    assert m.timestamp == datetime(2024, 2, 29, 12, 34, 56)  # noqa: DTZ001 - device local time
    assert m.temperature_type is TemperatureType.MOUTH
    assert m.temperature_c == pytest.approx(37.0)
    assert encode_temperature_measurement(m) == raw


def test_unknown_date_gives_no_time_stamp() -> None:
    raw = bytes.fromhex("022500000000000000000000")
    m = decode_temperature_measurement(raw)
    assert m == TemperatureMeasurement(37.0, timestamp=None)


def test_nan_value_is_kept() -> None:
    m = decode_temperature_measurement(bytes.fromhex("00ffff7f00"))
    assert math.isnan(m.value)
    assert not is_valid_temperature(m)
    assert is_valid_temperature(TemperatureMeasurement(36.6))


@pytest.mark.parametrize(
    ("hexdata", "match"),
    [
        ("", "too short for Flags"),
        ("006e0100", "too short for Temperature Measurement Value"),
        ("026e0100ffe807021d0c22", "too short for Time Stamp seconds"),
        ("046e0100ff", "too short for Temperature Type"),
        ("006e0100ff00", "trailing"),
        ("026e0100ffe707021d0c2238", "is not a date"),  # 2023-02-29
        ("026e0100ffe8070d010c2238", "month 13 out of range"),
        ("026e0100ffe8070101182238", "hours 24 out of range"),
        ("026e0100ffe80701010c3c38", "minutes 60 out of range"),
        ("026e0100ffe80701010c223c", "seconds 60 out of range"),
        ("026e0100ffe8070120", "too short"),
        ("026e0100ffe8070120000000", "day 32 out of range"),
        ("026e0100ffe8030101000000", "year 1000 out of range"),
        ("046e0100ff00", "Temperature Type 0 is reserved"),
        ("046e0100ff0a", "Temperature Type 10 is reserved"),
    ],
)
def test_bad_values(hexdata: str, match: str) -> None:
    with pytest.raises(FrameDecodeError, match=match):
        decode_temperature_measurement(bytes.fromhex(hexdata))


def test_encoder_checks_time_stamp() -> None:
    aware = TemperatureMeasurement(36.6, timestamp=datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="naive"):
        encode_temperature_measurement(aware)
    local = datetime(2024, 1, 1, 8, 0, 0, 999_999)  # noqa: DTZ001 - device local time
    raw = encode_temperature_measurement(TemperatureMeasurement(36.6, timestamp=local))
    decoded = decode_temperature_measurement(raw)
    assert decoded.timestamp == local.replace(microsecond=0)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_returns_or_raises_frame_error(data: bytes) -> None:
    returns_or_frame_error(decode_temperature_measurement, data)


measurements = st.builds(
    TemperatureMeasurement,
    value=float32_values(-4, 2),
    fahrenheit=st.booleans(),
    timestamp=st.none()
    | st.datetimes(datetime(1582, 1, 1), datetime(9999, 12, 31, 23, 59, 59)).map(  # noqa: DTZ001
        lambda d: d.replace(microsecond=0)
    ),
    temperature_type=st.none() | st.sampled_from(TemperatureType),
)


@ROUND_TRIP
@given(measurements)
def test_round_trip(m: TemperatureMeasurement) -> None:
    assert decode_temperature_measurement(encode_temperature_measurement(m)) == m
