from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.codecs.ieee11073 import (
    FLOAT_NAN,
    FLOAT_NEGATIVE_INFINITY,
    FLOAT_NRES,
    FLOAT_POSITIVE_INFINITY,
    FLOAT_RESERVED,
    SFLOAT_NAN,
    SFLOAT_NEGATIVE_INFINITY,
    SFLOAT_NRES,
    SFLOAT_POSITIVE_INFINITY,
    SFLOAT_RESERVED,
    decode_float32,
    decode_sfloat,
    encode_float32,
    encode_sfloat,
)
from tests.firmware_bridge.codecs.strategies import ROUND_TRIP, float32_values, sfloat_values

SFLOAT_SPECIALS = {
    SFLOAT_NAN,
    SFLOAT_NRES,
    SFLOAT_POSITIVE_INFINITY,
    SFLOAT_NEGATIVE_INFINITY,
    SFLOAT_RESERVED,
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0x0061, 97.0),  # SpO2 97 %, exponent 0
        (0x0048, 72.0),
        (0xF16E, 36.6),  # 366e-1
        (0xF019, 2.5),  # 25e-1
        (0xFFF1, -1.5),  # -15e-1
        (0x0FFF, -1.0),  # mantissa -1, exponent 0
        (0x8001, 1e-8),  # smallest exponent
        (0x7001, 1e7),  # largest exponent
        (0x07FD, 2045.0),  # largest ordinary mantissa
        (0x0803, -2045.0),
        (0x17FF, 20470.0),  # reserved mantissa with exponent 1: an ordinary number
        (0x0000, 0.0),
    ],
)
def test_sfloat_known_values(raw: int, expected: float) -> None:
    assert decode_sfloat(raw) == expected


@pytest.mark.parametrize(
    ("raw", "is_nan", "inf_sign"),
    [
        (0x07FF, True, 0),  # NaN
        (0x0800, True, 0),  # NRes
        (0x0801, True, 0),  # reserved
        (0x07FE, False, 1),  # +INFINITY
        (0x0802, False, -1),  # -INFINITY
    ],
)
def test_sfloat_specials(raw: int, is_nan: bool, inf_sign: int) -> None:
    value = decode_sfloat(raw)
    assert math.isnan(value) is is_nan
    if inf_sign:
        assert value == inf_sign * math.inf


@pytest.mark.parametrize(
    ("raw", "is_nan", "inf_sign"),
    [
        (0x007FFFFF, True, 0),
        (0x00800000, True, 0),
        (0x00800001, True, 0),
        (0x007FFFFE, False, 1),
        (0x00800002, False, -1),
    ],
)
def test_float_specials(raw: int, is_nan: bool, inf_sign: int) -> None:
    value = decode_float32(raw)
    assert math.isnan(value) is is_nan
    if inf_sign:
        assert value == inf_sign * math.inf


def test_float_known_values() -> None:
    assert decode_float32(0xFF00016E) == 36.6
    assert decode_float32(0x00000025) == 37.0
    assert decode_float32(0xFF0003DA) == 98.6
    assert decode_float32(0x00FFFFD8) == -40.0
    assert decode_float32(0x80000001) == 1e-128


def test_special_constants_match_the_standard() -> None:
    assert (SFLOAT_NAN, SFLOAT_NRES, SFLOAT_POSITIVE_INFINITY) == (0x07FF, 0x0800, 0x07FE)
    assert (SFLOAT_NEGATIVE_INFINITY, SFLOAT_RESERVED) == (0x0802, 0x0801)
    assert (FLOAT_NAN, FLOAT_NRES, FLOAT_POSITIVE_INFINITY) == (0x007FFFFF, 0x00800000, 0x007FFFFE)
    assert (FLOAT_NEGATIVE_INFINITY, FLOAT_RESERVED) == (0x00800002, 0x00800001)


def test_encode_picks_device_style_exponents() -> None:
    assert encode_sfloat(97) == 0x0061
    assert encode_sfloat(100.0) == 0x0064  # not 1e2
    assert encode_sfloat(36.6) == 0xF16E
    assert encode_sfloat(2.5) == 0xF019
    assert encode_sfloat(0.0) == 0x0000
    assert encode_sfloat(-0.0) == 0x0000
    assert encode_sfloat(50000) == 0x21F4  # 500e2
    assert encode_float32(36.6) == 0xFF00016E
    assert encode_float32(37.0) == 0x00000025


def test_encode_specials() -> None:
    assert encode_sfloat(math.nan) == SFLOAT_NAN
    assert encode_sfloat(math.inf) == SFLOAT_POSITIVE_INFINITY
    assert encode_sfloat(-math.inf) == SFLOAT_NEGATIVE_INFINITY
    assert encode_float32(math.nan) == FLOAT_NAN
    assert encode_float32(-math.inf) == FLOAT_NEGATIVE_INFINITY


def test_encode_band_edges() -> None:
    assert encode_sfloat(2045) == 0x07FD
    assert encode_sfloat(-2045) == 0x0803
    # 2046 needs a coarser exponent: 205e1, the nearest representable value.
    assert decode_sfloat(encode_sfloat(2046)) == 2050.0
    assert decode_sfloat(encode_sfloat(3.14159)) == 3.14
    assert decode_sfloat(encode_sfloat(2045e7)) == 2045e7
    with pytest.raises(ValueError, match="does not fit"):
        encode_sfloat(2046e7)
    with pytest.raises(ValueError, match="too small"):
        encode_sfloat(1e-9)
    assert encode_float32(8388605) == 0x007FFFFD
    with pytest.raises(ValueError, match="does not fit"):
        encode_float32(8388606e127)


def test_encode_with_explicit_exponent() -> None:
    raw = encode_sfloat(12.3, exponent=-2)
    assert raw == 0xE4CE  # 1230e-2, exponent nibble 0xE = -2
    assert decode_sfloat(raw) == 12.3
    with pytest.raises(ValueError, match="does not fit"):
        encode_sfloat(36.6, exponent=-2)  # 3660 > 2045
    assert decode_sfloat(encode_sfloat(36.65, exponent=-1)) == 36.6  # half-to-even
    with pytest.raises(ValueError, match="exponent"):
        encode_sfloat(1.0, exponent=8)
    with pytest.raises(ValueError, match="exponent"):
        encode_float32(1.0, exponent=-129)


@pytest.mark.parametrize("raw", [-1, 0x10000])
def test_decode_sfloat_rejects_non_16_bit(raw: int) -> None:
    with pytest.raises(ValueError, match="SFLOAT"):
        decode_sfloat(raw)


def test_decode_float_rejects_non_32_bit() -> None:
    with pytest.raises(ValueError, match="FLOAT"):
        decode_float32(1 << 32)


@ROUND_TRIP
@given(sfloat_values())
def test_sfloat_round_trip(value: float) -> None:
    raw = encode_sfloat(value)
    assert raw not in SFLOAT_SPECIALS
    assert decode_sfloat(raw) == value


@ROUND_TRIP
@given(float32_values())
def test_float32_round_trip(value: float) -> None:
    assert decode_float32(encode_float32(value)) == value


@ROUND_TRIP
@given(st.integers(0, 0xFFFF))
def test_sfloat_decode_never_raises_and_reencodes(raw: int) -> None:
    value = decode_sfloat(raw)
    if not math.isfinite(value) or raw in SFLOAT_SPECIALS:
        return
    mantissa = raw & 0xFFF
    mantissa = mantissa - 0x1000 if mantissa & 0x800 else mantissa
    if abs(mantissa) <= 2045:
        assert decode_sfloat(encode_sfloat(value)) == value


@ROUND_TRIP
@given(st.floats(-2000.0, 2000.0, allow_nan=False), st.integers(-3, 0))
def test_sfloat_quantization_error_is_at_most_half_a_step(value: float, exponent: int) -> None:
    step = 10.0**exponent
    if abs(value) / step > 2045:
        return
    decoded = decode_sfloat(encode_sfloat(value, exponent=exponent))
    assert abs(decoded - value) <= step / 2 + 1e-9


@ROUND_TRIP
@given(st.floats(allow_nan=True, allow_infinity=True), st.none() | st.integers(-10, 10))
def test_encoders_return_a_pattern_or_raise_value_error(value: float, exponent: int | None) -> None:
    for encode, raw_max in ((encode_sfloat, 0xFFFF), (encode_float32, 0xFFFFFFFF)):
        try:
            raw = encode(value, exponent)
        except ValueError:
            continue
        assert 0 <= raw <= raw_max
