"""IEEE 11073-20601 medical floats: 16-bit SFLOAT and 32-bit FLOAT (base-10 exponents).

Layouts
-------
SFLOAT (``medfloat16``), one little-endian uint16 on the wire::

    bits 15..12  exponent  4-bit two's complement, -8..7
    bits 11..0   mantissa 12-bit two's complement
    value = mantissa * 10 ** exponent

FLOAT (``medfloat32``), one little-endian uint32::

    bits 31..24  exponent  8-bit two's complement, -128..127
    bits 23..0   mantissa 24-bit two's complement
    value = mantissa * 10 ** exponent

Special values (IEEE Std 11073-20601, the "SFLOAT-Type" and "FLOAT-Type" definitions, repeated
for the "medfloat16"/"medfloat32" data types of the Bluetooth GATT Specification Supplement v5)
are whole bit patterns with exponent 0:

=============  ==========  ============  ==========================================
meaning        SFLOAT      FLOAT         decoded as
=============  ==========  ============  ==========================================
NaN            ``0x07FF``  ``0x007FFFFF``  ``math.nan``
NRes           ``0x0800``  ``0x00800000``  ``math.nan`` (not at this resolution)
+INFINITY      ``0x07FE``  ``0x007FFFFE``  ``math.inf``
-INFINITY      ``0x0802``  ``0x00800002``  ``-math.inf``
reserved       ``0x0801``  ``0x00800001``  ``math.nan``
=============  ==========  ============  ==========================================

A reserved mantissa with a *non-zero* exponent is an ordinary number under the standard (the
specials are defined with exponent 0 only) and is decoded as such. The encoders never emit those
mantissas at all (they keep ``|mantissa| <= 2045`` / ``<= 8388605``), so a receiver that checks
the mantissa alone (a common shortcut) still reads our values correctly.

Decoding is exact: ``mantissa * 10**exponent`` is computed with Python integers and converted
once, so the result is the float nearest to the decimal value (``0xF16E`` = 366e-1 gives
exactly ``36.6``). Encoding picks the exponent a device would: 0 for integers that fit (SpO2 97 %
is ``0x0061``), otherwise the fewest decimal places that represent the value exactly, rounding
half-to-even only when the mantissa cannot hold every digit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal


@dataclass(frozen=True, slots=True)
class _MedFloatFormat:
    """Bit widths, ranges and special codes of one IEEE 11073 float format."""

    name: str
    exponent_bits: int
    mantissa_bits: int
    nan: int
    nres: int
    pos_inf: int
    neg_inf: int
    reserved: int

    @property
    def raw_max(self) -> int:
        return (1 << (self.exponent_bits + self.mantissa_bits)) - 1

    @property
    def exponent_min(self) -> int:
        return -(1 << (self.exponent_bits - 1))

    @property
    def exponent_max(self) -> int:
        return (1 << (self.exponent_bits - 1)) - 1

    @property
    def mantissa_max(self) -> int:
        # Largest magnitude the encoders emit: the top three positive codes (2^(n-1)-3 .. -1) and
        # the bottom three negative codes are the special values when the exponent is 0.
        return (1 << (self.mantissa_bits - 1)) - 3


SFLOAT = _MedFloatFormat(
    name="SFLOAT",
    exponent_bits=4,
    mantissa_bits=12,
    nan=0x07FF,
    nres=0x0800,
    pos_inf=0x07FE,
    neg_inf=0x0802,
    reserved=0x0801,
)
FLOAT32 = _MedFloatFormat(
    name="FLOAT",
    exponent_bits=8,
    mantissa_bits=24,
    nan=0x007FFFFF,
    nres=0x00800000,
    pos_inf=0x007FFFFE,
    neg_inf=0x00800002,
    reserved=0x00800001,
)

SFLOAT_NAN = SFLOAT.nan
SFLOAT_NRES = SFLOAT.nres
SFLOAT_POSITIVE_INFINITY = SFLOAT.pos_inf
SFLOAT_NEGATIVE_INFINITY = SFLOAT.neg_inf
SFLOAT_RESERVED = SFLOAT.reserved
FLOAT_NAN = FLOAT32.nan
FLOAT_NRES = FLOAT32.nres
FLOAT_POSITIVE_INFINITY = FLOAT32.pos_inf
FLOAT_NEGATIVE_INFINITY = FLOAT32.neg_inf
FLOAT_RESERVED = FLOAT32.reserved


def _decode(raw: int, fmt: _MedFloatFormat) -> float:
    if not 0 <= raw <= fmt.raw_max:
        msg = f"{fmt.name} raw value must be in 0..{fmt.raw_max:#x}, got {raw!r}"
        raise ValueError(msg)
    if raw in (fmt.nan, fmt.nres, fmt.reserved):
        return math.nan
    if raw == fmt.pos_inf:
        return math.inf
    if raw == fmt.neg_inf:
        return -math.inf
    exponent = raw >> fmt.mantissa_bits
    if exponent > fmt.exponent_max:
        exponent -= 1 << fmt.exponent_bits
    mantissa = raw & ((1 << fmt.mantissa_bits) - 1)
    if mantissa >= 1 << (fmt.mantissa_bits - 1):
        mantissa -= 1 << fmt.mantissa_bits
    if exponent >= 0:
        return float(mantissa * 10**exponent)
    # int / int is correctly rounded in Python: the nearest double to the decimal value.
    divisor: int = 10**-exponent
    return mantissa / divisor


def _encode(value: float, exponent: int | None, fmt: _MedFloatFormat) -> int:
    if math.isnan(value):
        return fmt.nan
    if math.isinf(value):
        return fmt.pos_inf if value > 0 else fmt.neg_inf
    # repr() of a float is its shortest round-tripping decimal, i.e. what a person wrote.
    dec = Decimal(repr(float(value))) if isinstance(value, float) else Decimal(value)
    if exponent is not None:
        if not fmt.exponent_min <= exponent <= fmt.exponent_max:
            msg = (
                f"{fmt.name} exponent must be in {fmt.exponent_min}..{fmt.exponent_max}, "
                f"got {exponent}"
            )
            raise ValueError(msg)
        exp = exponent
    else:
        natural = dec.normalize().as_tuple().exponent
        if not isinstance(natural, int):  # pragma: no cover - finite values only, checked above
            msg = f"cannot encode {value!r}"
            raise ValueError(msg)
        exp = max(min(0, natural), fmt.exponent_min)
    mantissa = int(dec.scaleb(-exp).to_integral_value(rounding=ROUND_HALF_EVEN))
    while exponent is None and abs(mantissa) > fmt.mantissa_max and exp < fmt.exponent_max:
        exp += 1
        mantissa = int(dec.scaleb(-exp).to_integral_value(rounding=ROUND_HALF_EVEN))
    if abs(mantissa) > fmt.mantissa_max:
        msg = (
            f"{value!r} does not fit an {fmt.name} (|mantissa| <= {fmt.mantissa_max}, "
            f"exponent {fmt.exponent_min}..{fmt.exponent_max}); exponent tried: {exp}"
        )
        raise ValueError(msg)
    if exponent is None and mantissa == 0 and dec != 0:
        msg = f"{value!r} is too small for an {fmt.name} at exponent {exp} (it would encode as 0)"
        raise ValueError(msg)
    exp_field = exp & ((1 << fmt.exponent_bits) - 1)
    mantissa_field = mantissa & ((1 << fmt.mantissa_bits) - 1)
    return (exp_field << fmt.mantissa_bits) | mantissa_field


def decode_sfloat(raw16: int) -> float:
    """Decode an IEEE 11073-20601 SFLOAT (already read as a little-endian uint16).

    Parameters
    ----------
    raw16 : int
        The 16-bit pattern, ``0..0xFFFF``.

    Returns
    -------
    float
        ``mantissa * 10**exponent``, exactly rounded. NaN, NRes and the reserved code decode to
        ``math.nan``; +INFINITY/-INFINITY to ``math.inf``/``-math.inf`` (module table).

    Raises
    ------
    ValueError
        If ``raw16`` is outside ``0..0xFFFF`` (a programming error, not bad bytes: callers read
        exactly two octets).

    References
    ----------
    .. [1] IEEE Std 11073-20601, Optimized Exchange Protocol: SFLOAT-Type.
    .. [2] Bluetooth GATT Specification Supplement v5 (2021-09-14), "medfloat16".
    """
    return _decode(raw16, SFLOAT)


def encode_sfloat(value: float, exponent: int | None = None) -> int:
    """Encode a number as an IEEE 11073-20601 SFLOAT bit pattern.

    Parameters
    ----------
    value : float
        The value. ``nan`` encodes as NaN (``0x07FF``), ``±inf`` as ±INFINITY.
    exponent : int | None
        Base-10 exponent to use (``-8..7``); the mantissa is rounded half-to-even. ``None``
        picks the exponent a device would (module docstring): 0 for integers, else the fewest
        decimals that represent ``value`` exactly, coarser only if the mantissa overflows.

    Returns
    -------
    int
        The 16-bit pattern (write it as a little-endian uint16). Never one of the special codes
        for a finite ``value``.

    Raises
    ------
    ValueError
        If ``exponent`` is out of range, if ``value`` does not fit (``|mantissa| > 2045`` at the
        largest usable exponent), or if a non-zero ``value`` would round to 0 at the smallest
        exponent (only when ``exponent`` is ``None``; an explicit exponent rounds as asked).
    """
    return _encode(value, exponent, SFLOAT)


def decode_float32(raw32: int) -> float:
    """Decode an IEEE 11073-20601 FLOAT (already read as a little-endian uint32).

    Parameters
    ----------
    raw32 : int
        The 32-bit pattern, ``0..0xFFFFFFFF``.

    Returns
    -------
    float
        ``mantissa * 10**exponent``, exactly rounded; specials as in :func:`decode_sfloat`.

    Raises
    ------
    ValueError
        If ``raw32`` is outside ``0..0xFFFFFFFF``.

    References
    ----------
    .. [1] IEEE Std 11073-20601, Optimized Exchange Protocol: FLOAT-Type.
    .. [2] Bluetooth GATT Specification Supplement v5 (2021-09-14), "medfloat32".
    """
    return _decode(raw32, FLOAT32)


def encode_float32(value: float, exponent: int | None = None) -> int:
    """Encode a number as an IEEE 11073-20601 FLOAT bit pattern.

    Parameters
    ----------
    value : float
        The value; ``nan``/``±inf`` map to NaN/±INFINITY.
    exponent : int | None
        Base-10 exponent (``-128..127``), or ``None`` to choose as :func:`encode_sfloat` does.

    Returns
    -------
    int
        The 32-bit pattern (write it as a little-endian uint32).

    Raises
    ------
    ValueError
        If ``exponent`` is out of range, ``value`` does not fit (``|mantissa| > 8388605``), or a
        non-zero ``value`` would round to 0 with ``exponent=None``.
    """
    return _encode(value, exponent, FLOAT32)
