"""Bluetooth Battery Level (0x2A19, Battery Service 0x180F).

Layout (GATT Specification Supplement v5, "Battery Level"; Battery Service v1.0)::

    offset  size  field
    0       1     Battery Level, uint8, percent of full charge, 0..100 (101..255 reserved)

Exactly one octet: a shorter or longer value, or a reserved level above 100 %, raises
:class:`~firmware_bridge.errors.FrameDecodeError`. The Polar H10 exposes this characteristic
(handle 0x003d in a gatttool dump, phdiethelm/h10_ecg ``exploration/gatttool.md``).
"""

from __future__ import annotations

from firmware_bridge.codecs._wire import ByteReader, RawValue, uuid16

BATTERY_SERVICE_UUID = uuid16(0x180F)
BATTERY_LEVEL_UUID = uuid16(0x2A19)

# Battery Level is a percentage: 0..100; 101..255 are reserved (GSS v5, "Battery Level").
BATTERY_LEVEL_MAX_PCT = 100
_WHAT = "Battery Level (0x2A19)"


def decode_battery_level(data: RawValue) -> int:
    """Decode a Battery Level (0x2A19) value.

    Parameters
    ----------
    data : bytes | bytearray | memoryview
        The read or notified value, one octet.

    Returns
    -------
    int
        Battery charge in percent, 0..100.

    Raises
    ------
    FrameDecodeError
        If the value is not exactly one octet, or the level is above 100 (reserved).

    References
    ----------
    .. [1] Bluetooth SIG, GATT Specification Supplement v5 (2021-09-14), "Battery Level".
    """
    reader = ByteReader(data, _WHAT)
    level = reader.read_uint(1, "Battery Level")
    reader.expect_end()
    if level > BATTERY_LEVEL_MAX_PCT:
        msg = f"level {level} % is reserved (0..100 allowed)"
        raise reader.error(msg, 0)
    return level


def encode_battery_level(pct: int) -> bytes:
    """Encode a Battery Level value.

    Parameters
    ----------
    pct : int
        Battery charge in percent, 0..100.

    Returns
    -------
    bytes
        One octet.

    Raises
    ------
    ValueError
        If ``pct`` is outside 0..100.
    """
    if not 0 <= pct <= BATTERY_LEVEL_MAX_PCT:
        msg = f"battery level must be in 0..100 %, got {pct!r}"
        raise ValueError(msg)
    return bytes([pct])
