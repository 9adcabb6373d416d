"""Bluetooth Temperature Measurement (0x2A1C, Health Thermometer Service 0x1809).

Layout (GATT Specification Supplement v5, "Temperature Measurement" and "Date Time"; Health
Thermometer Service v1.0), little-endian::

    offset  size  field
    0       1     Flags
                    bit 0  unit: 0 = Celsius, 1 = Fahrenheit
                    bit 1  Time Stamp present
                    bit 2  Temperature Type present
                    bits 3..7 reserved for future use (ignored on receipt, sent as 0)
    1       4     Temperature Measurement Value, IEEE 11073 FLOAT (°C or °F per bit 0)
    ..      0|7   Time Stamp (Date Time): year uint16 (1582..9999, 0 = unknown),
                  month uint8 (1..12, 0 = unknown), day uint8 (1..31, 0 = unknown),
                  hours 0..23, minutes 0..59, seconds 0..59
    ..      0|1   Temperature Type: 1 armpit, 2 body (general), 3 ear, 4 finger,
                  5 gastrointestinal tract, 6 mouth, 7 rectum, 8 toe, 9 tympanum (ear drum);
                  0 and 10..255 reserved

Decoding rules (each failure raises :class:`~firmware_bridge.errors.FrameDecodeError`): a short
value, trailing octets, a Date Time field out of its range or naming a day that does not exist
(31 April), and a reserved Temperature Type. A Date Time whose year, month or day is 0
("not known") gives ``timestamp=None``.

Time stamps are **naive** ``datetime`` objects: the Date Time characteristic carries the
thermometer's local wall-clock time with no zone or offset, so attaching one would be invented
data. Consumers that need UTC must use the arrival time instead.

A FLOAT NaN/NRes is kept as ``math.nan`` in :attr:`TemperatureMeasurement.value` (the device
had no valid reading); ±INFINITY as ``±math.inf``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime

from firmware_bridge.codecs._wire import ByteReader, RawValue, uuid16
from firmware_bridge.codecs.ieee11073 import decode_float32, encode_float32

HEALTH_THERMOMETER_SERVICE_UUID = uuid16(0x1809)
TEMPERATURE_MEASUREMENT_UUID = uuid16(0x2A1C)

HTM_FLAG_FAHRENHEIT = 0x01
HTM_FLAG_TIME_STAMP = 0x02
HTM_FLAG_TEMPERATURE_TYPE = 0x04

# Date Time field ranges (GSS v5 "Date Time"): year 1582..9999, 0 meaning "not known".
DATE_TIME_YEAR_MIN = 1582
DATE_TIME_YEAR_MAX = 9999
_MONTH_MAX = 12
_DAY_MAX = 31
_HOUR_MAX = 23
_MINUTE_MAX = 59
_SECOND_MAX = 59
_WHAT = "Temperature Measurement (0x2A1C)"


class TemperatureType(enum.IntEnum):
    """Where the temperature was taken (GSS v5, "Temperature Type")."""

    ARMPIT = 1
    BODY = 2
    EAR = 3
    FINGER = 4
    GASTROINTESTINAL_TRACT = 5
    MOUTH = 6
    RECTUM = 7
    TOE = 8
    TYMPANUM = 9


@dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    """One Temperature Measurement indication.

    Attributes
    ----------
    value : float
        The temperature in the unit the thermometer used (°C, or °F when ``fahrenheit``);
        ``nan`` when the thermometer sent NaN/NRes.
    fahrenheit : bool
        ``True`` when ``value`` is in degrees Fahrenheit.
    timestamp : datetime | None
        The thermometer's local wall-clock time of the measurement (naive, second resolution),
        when sent and known.
    temperature_type : TemperatureType | None
        The measurement site, when sent.
    """

    value: float
    fahrenheit: bool = False
    timestamp: datetime | None = None
    temperature_type: TemperatureType | None = None

    @property
    def temperature_c(self) -> float:
        """The temperature in degrees Celsius (``(°F - 32) * 5 / 9`` when sent in °F)."""
        if self.fahrenheit:
            return (self.value - 32.0) * 5.0 / 9.0
        return self.value


def _read_date_time(reader: ByteReader) -> datetime | None:
    at = reader.offset
    year = reader.read_uint(2, "Time Stamp year")
    month = reader.read_uint(1, "Time Stamp month")
    day = reader.read_uint(1, "Time Stamp day")
    hour = reader.read_uint(1, "Time Stamp hours")
    minute = reader.read_uint(1, "Time Stamp minutes")
    second = reader.read_uint(1, "Time Stamp seconds")
    checks = (
        ("year", year, year == 0 or DATE_TIME_YEAR_MIN <= year <= DATE_TIME_YEAR_MAX),
        ("month", month, month <= _MONTH_MAX),
        ("day", day, day <= _DAY_MAX),
        ("hours", hour, hour <= _HOUR_MAX),
        ("minutes", minute, minute <= _MINUTE_MAX),
        ("seconds", second, second <= _SECOND_MAX),
    )
    for name, value, ok in checks:
        if not ok:
            msg = f"Time Stamp {name} {value} out of range"
            raise reader.error(msg, at)
    if 0 in (year, month, day):
        return None
    try:
        # Naive on purpose: the Date Time characteristic has no zone (module docstring).
        return datetime(year, month, day, hour, minute, second)  # noqa: DTZ001
    except ValueError as err:
        msg = f"Time Stamp {year:04d}-{month:02d}-{day:02d} is not a date ({err})"
        raise reader.error(msg, at) from err


def decode_temperature_measurement(data: RawValue) -> TemperatureMeasurement:
    """Decode a Temperature Measurement (0x2A1C) value.

    Parameters
    ----------
    data : bytes | bytearray | memoryview
        The indicated value (5..13 octets depending on flags).

    Returns
    -------
    TemperatureMeasurement
        The temperature (unit per ``fahrenheit``), optional naive local time stamp and site.

    Raises
    ------
    FrameDecodeError
        If the value is shorter than its flags announce, carries trailing octets, has a Date
        Time field out of range or an impossible date, or a reserved Temperature Type.

    References
    ----------
    .. [1] Bluetooth SIG, GATT Specification Supplement v5 (2021-09-14), "Temperature
       Measurement", "Date Time", "Temperature Type"; Health Thermometer Service v1.0.
    """
    reader = ByteReader(data, _WHAT)
    flags = reader.read_uint(1, "Flags")
    value = decode_float32(reader.read_uint(4, "Temperature Measurement Value"))
    timestamp: datetime | None = None
    if flags & HTM_FLAG_TIME_STAMP:
        timestamp = _read_date_time(reader)
    temperature_type: TemperatureType | None = None
    if flags & HTM_FLAG_TEMPERATURE_TYPE:
        at = reader.offset
        raw_type = reader.read_uint(1, "Temperature Type")
        try:
            temperature_type = TemperatureType(raw_type)
        except ValueError:
            msg = f"Temperature Type {raw_type} is reserved"
            raise reader.error(msg, at) from None
    reader.expect_end()
    return TemperatureMeasurement(
        value=value,
        fahrenheit=bool(flags & HTM_FLAG_FAHRENHEIT),
        timestamp=timestamp,
        temperature_type=temperature_type,
    )


def encode_temperature_measurement(m: TemperatureMeasurement) -> bytes:
    """Encode a Temperature Measurement value as a thermometer indicates it.

    Parameters
    ----------
    m : TemperatureMeasurement
        The measurement. ``timestamp`` must be naive (local wall-clock time); its microseconds
        are dropped (the Date Time field has one-second resolution).

    Returns
    -------
    bytes
        Flags, FLOAT value (device-style exponent: 36.6 → ``6e 01 00 ff``), optional Date Time,
        optional Temperature Type.

    Raises
    ------
    ValueError
        If the value does not fit a FLOAT, the time stamp is timezone-aware or its year is
        outside 1582..9999, or the temperature type is not a defined one.
    """
    flags = HTM_FLAG_FAHRENHEIT if m.fahrenheit else 0
    out = bytearray(encode_float32(m.value).to_bytes(4, "little"))
    if m.timestamp is not None:
        ts = m.timestamp
        if ts.tzinfo is not None:
            msg = "timestamp must be naive local time (the Date Time field has no zone)"
            raise ValueError(msg)
        if not DATE_TIME_YEAR_MIN <= ts.year <= DATE_TIME_YEAR_MAX:
            msg = f"timestamp year must be in 1582..9999, got {ts.year}"
            raise ValueError(msg)
        flags |= HTM_FLAG_TIME_STAMP
        out += ts.year.to_bytes(2, "little")
        out += bytes([ts.month, ts.day, ts.hour, ts.minute, ts.second])
    if m.temperature_type is not None:
        flags |= HTM_FLAG_TEMPERATURE_TYPE
        out.append(TemperatureType(m.temperature_type))
    return bytes([flags]) + bytes(out)


def is_valid_temperature(m: TemperatureMeasurement) -> bool:
    """Whether ``m.value`` is a finite number (not NaN/NRes/±INFINITY).

    Parameters
    ----------
    m : TemperatureMeasurement
        A decoded measurement.

    Returns
    -------
    bool
        ``True`` when the thermometer sent a usable value.
    """
    return math.isfinite(m.value)
