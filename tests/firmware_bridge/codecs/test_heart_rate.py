from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.codecs.heart_rate import (
    HEART_RATE_MEASUREMENT_UUID,
    HEART_RATE_SERVICE_UUID,
    HeartRateMeasurement,
    decode_heart_rate_measurement,
    encode_heart_rate_measurement,
)
from firmware_bridge.errors import FrameDecodeError
from tests.firmware_bridge.codecs.strategies import FUZZ, ROUND_TRIP, returns_or_frame_error


def test_uuids() -> None:
    assert HEART_RATE_SERVICE_UUID == "0000180d-0000-1000-8000-00805f9b34fb"
    assert HEART_RATE_MEASUREMENT_UUID == "00002a37-0000-1000-8000-00805f9b34fb"


def test_polar_h7_capture() -> None:
    # gatttool log of a Polar H7 (cal-id/Polar-H7-Pi README): "16 3c 11 04".
    m = decode_heart_rate_measurement(bytes.fromhex("163c1104"))
    assert m == HeartRateMeasurement(hr_bpm=60, sensor_contact=True, rr_1024=(0x0411,))
    assert m.rr_ms == (1016.6015625,)
    assert encode_heart_rate_measurement(m) == bytes.fromhex("163c1104")


def test_polar_h7_capture_without_rr() -> None:
    m = decode_heart_rate_measurement(bytes.fromhex("063c"))
    assert m == HeartRateMeasurement(hr_bpm=60, sensor_contact=True)


@pytest.mark.parametrize(
    ("hexdata", "expected"),
    [
        # Vectors of the Polar BLE SDK's BleHrClientTest.
        ("00ff", HeartRateMeasurement(255)),
        ("017f7f", HeartRateMeasurement(32639)),
        ("018080", HeartRateMeasurement(32896)),
        ("0600", HeartRateMeasurement(0, sensor_contact=True)),
        ("0400", HeartRateMeasurement(0, sensor_contact=False)),
        ("0200", HeartRateMeasurement(0, sensor_contact=None)),  # status bit without support
        ("090000ffff", HeartRateMeasurement(0, energy_expended_kj=65535)),
        ("08007f80", HeartRateMeasurement(0, energy_expended_kj=32895)),
        ("1000ffff", HeartRateMeasurement(0, rr_1024=(65535,))),
        ("110000ffff7f80", HeartRateMeasurement(0, rr_1024=(65535, 32895))),
    ],
)
def test_sdk_vectors(hexdata: str, expected: HeartRateMeasurement) -> None:
    assert decode_heart_rate_measurement(bytes.fromhex(hexdata)) == expected


def test_rr_ms_conversion() -> None:
    m = HeartRateMeasurement(60, rr_1024=(1024, 512, 0))
    assert m.rr_ms == (1000.0, 500.0, 0.0)


def _by_hand(flags: int) -> tuple[bytes, HeartRateMeasurement]:
    """Build the value for a flag byte from the spec layout, independently of the encoder."""
    body = bytearray([flags])
    hr = 0x0148 if flags & 0x01 else 0x48
    body += hr.to_bytes(2 if flags & 0x01 else 1, "little")
    energy = None
    if flags & 0x08:
        energy = 0x1234
        body += energy.to_bytes(2, "little")
    rr: tuple[int, ...] = ()
    if flags & 0x10:
        rr = (0x0400, 0x03F0, 0x0001)
        for value in rr:
            body += value.to_bytes(2, "little")
    contact = bool(flags & 0x02) if flags & 0x04 else None
    return bytes(body), HeartRateMeasurement(hr, contact, energy, rr)


@pytest.mark.parametrize("flags", range(32))
def test_every_flag_combination(flags: int) -> None:
    raw, expected = _by_hand(flags)
    decoded = decode_heart_rate_measurement(raw)
    assert decoded == expected
    reencoded = encode_heart_rate_measurement(decoded, hr_16bit=bool(flags & 0x01))
    # Only difference allowed: "contact detected" without "contact supported" is meaningless
    # and the encoder sends it as 0.
    assert reencoded == bytes([flags & ~0x02 if not flags & 0x04 else flags]) + raw[1:]


def test_reserved_flag_bits_are_ignored() -> None:
    assert decode_heart_rate_measurement(bytes([0xE0, 70])) == HeartRateMeasurement(70)


@pytest.mark.parametrize(
    ("hexdata", "match"),
    [
        ("", "too short for Flags"),
        ("00", "too short for Heart Rate Measurement Value"),
        ("0148", "uint16"),
        ("0848", "Energy Expended"),
        ("1048", "no RR-Interval"),
        ("104800", "not a whole number"),
        ("10480004ff", "not a whole number"),
        ("004800", "trailing"),
    ],
)
def test_bad_values(hexdata: str, match: str) -> None:
    with pytest.raises(FrameDecodeError, match=match) as info:
        decode_heart_rate_measurement(bytes.fromhex(hexdata))
    assert info.value.raw == bytes.fromhex(hexdata)


def test_encoder_promotes_to_uint16_and_validates() -> None:
    assert encode_heart_rate_measurement(HeartRateMeasurement(300)) == bytes([0x01, 0x2C, 0x01])
    assert encode_heart_rate_measurement(HeartRateMeasurement(60), hr_16bit=True) == bytes(
        [0x01, 60, 0]
    )
    with pytest.raises(ValueError, match="hr_bpm"):
        encode_heart_rate_measurement(HeartRateMeasurement(70000))
    with pytest.raises(ValueError, match="rr_1024"):
        encode_heart_rate_measurement(HeartRateMeasurement(60, rr_1024=(-1,)))
    with pytest.raises(ValueError, match="energy"):
        encode_heart_rate_measurement(HeartRateMeasurement(60, energy_expended_kj=1 << 16))


def test_decoder_accepts_bytearray() -> None:
    assert decode_heart_rate_measurement(bytearray(b"\x00\x50")).hr_bpm == 80


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_returns_or_raises_frame_error(data: bytes) -> None:
    returns_or_frame_error(decode_heart_rate_measurement, data)


measurements = st.builds(
    HeartRateMeasurement,
    hr_bpm=st.integers(0, 0xFFFF),
    sensor_contact=st.none() | st.booleans(),
    energy_expended_kj=st.none() | st.integers(0, 0xFFFF),
    rr_1024=st.lists(st.integers(0, 0xFFFF), max_size=9).map(tuple),
)


@ROUND_TRIP
@given(measurements, st.booleans())
def test_round_trip(m: HeartRateMeasurement, hr_16bit: bool) -> None:
    raw = encode_heart_rate_measurement(m, hr_16bit=hr_16bit)
    assert decode_heart_rate_measurement(raw) == m
    assert raw[0] & 0xE0 == 0  # reserved bits sent as 0
