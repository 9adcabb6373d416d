"""Hypothesis strategies and settings shared by the codec tests."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import settings
from hypothesis import strategies as st

from firmware_bridge.codecs import RawValue
from firmware_bridge.errors import FrameDecodeError

# Modest example counts so the whole folder runs in seconds on a 2-core CI runner; no example
# database (it would write .hypothesis/ into the work tree) and no per-example deadline (the
# machine is shared, timing is not what these tests check).
FUZZ = settings(max_examples=300, deadline=None, database=None)
REGISTRY_FUZZ = settings(max_examples=100, deadline=None, database=None)
ROUND_TRIP = settings(max_examples=200, deadline=None, database=None)

SFLOAT_MANTISSA_MAX = 2045
FLOAT_MANTISSA_MAX = 8388605


def decimal_value(mantissa: int, exponent: int) -> float:
    """The float nearest to ``mantissa * 10**exponent`` (computed exactly, rounded once)."""
    if exponent >= 0:
        return float(mantissa * 10**exponent)
    divisor: int = 10**-exponent
    return mantissa / divisor


def sfloat_values(min_exponent: int = -8, max_exponent: int = 7) -> st.SearchStrategy[float]:
    """Values exactly representable as an SFLOAT (so encode/decode must be lossless)."""
    return st.builds(
        decimal_value,
        st.integers(-SFLOAT_MANTISSA_MAX, SFLOAT_MANTISSA_MAX),
        st.integers(min_exponent, max_exponent),
    )


def float32_values(min_exponent: int = -128, max_exponent: int = 127) -> st.SearchStrategy[float]:
    """Values exactly representable as an IEEE 11073 FLOAT."""
    return st.builds(
        decimal_value,
        st.integers(-FLOAT_MANTISSA_MAX, FLOAT_MANTISSA_MAX),
        st.integers(min_exponent, max_exponent),
    )


def returns_or_frame_error(decode: Callable[[RawValue], object], data: RawValue) -> None:
    """Assert that ``decode(data)`` returns, or raises FrameDecodeError carrying ``data``."""
    error: FrameDecodeError | None = None
    try:
        decode(data)
    except FrameDecodeError as err:
        error = err
    if error is not None:
        assert error.raw == bytes(data)
        assert 0 <= error.offset <= len(data)
