"""Bluetooth Heart Rate Measurement (0x2A37, Heart Rate Service 0x180D).

Layout (GATT Specification Supplement v5, "Heart Rate Measurement"; Heart Rate Service v1.0
§3.1), all fields little-endian::

    offset  size  field
    0       1     Flags
                    bit 0   HR value format: 0 = uint8, 1 = uint16
                    bit 1   Sensor Contact detected   } bits 2..1 = 0b0x: feature not supported
                    bit 2   Sensor Contact supported  } 0b10: no contact, 0b11: contact
                    bit 3   Energy Expended present
                    bit 4   RR-Interval present (one or more)
                    bits 5..7 reserved for future use
    1       1|2   Heart Rate Measurement Value, bpm (uint8 or uint16 per bit 0)
    ..      0|2   Energy Expended, kJ (uint16; stays at 0xFFFF once 65535 kJ is reached, HRS §3.1)
    ..      2n    RR-Interval values, uint16 each, unit 1/1024 s, oldest first

Decoding rules (each failure raises :class:`~firmware_bridge.errors.FrameDecodeError`):

- the value must hold every field its flags announce;
- with bit 4 set, at least one RR-Interval must follow ("One or more RR-Interval values are
  present") and the octets after the fixed fields must be a whole number of uint16s;
- with bit 4 clear, no octet may follow the last announced field (trailing garbage).

Reserved flag bits 5..7 are ignored on receipt, as the Bluetooth convention for "reserved for
future use" bits requires of a receiver; the encoder always sends them as 0.

Known captures used in the tests: a Polar H7 sending ``16 3c 11 04`` (flags 0x16: RR present,
contact supported and detected; 60 bpm; RR 0x0411 = 1041/1024 s), from the cal-id/Polar-H7-Pi
README (gatttool log); and the Polar BLE SDK's ``BleHrClientTest`` vectors (``00 ff``,
``01 80 80``, ``09 00 00 ff ff``, ``11 00 00 ff ff 7f 80`` ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_bridge.codecs._wire import ByteReader, RawValue, uuid16

HEART_RATE_SERVICE_UUID = uuid16(0x180D)
HEART_RATE_MEASUREMENT_UUID = uuid16(0x2A37)

HRM_FLAG_HR_UINT16 = 0x01
HRM_FLAG_CONTACT_DETECTED = 0x02
HRM_FLAG_CONTACT_SUPPORTED = 0x04
HRM_FLAG_ENERGY_EXPENDED = 0x08
HRM_FLAG_RR_INTERVALS = 0x10

# RR-Interval resolution: 1/1024 s (GSS v5 "Heart Rate Measurement", RR-Interval field).
RR_UNITS_PER_S = 1024
_UINT8_MAX = 0xFF
_UINT16_MAX = 0xFFFF
_WHAT = "Heart Rate Measurement (0x2A37)"


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One Heart Rate Measurement notification.

    Attributes
    ----------
    hr_bpm : int
        The device's heart rate in beats per minute (0..65535 on the wire; the device's own
        averaging, not ours).
    sensor_contact : bool | None
        ``True``/``False`` when the strap reports skin contact; ``None`` when the sensor-contact
        feature is not supported (flag bit 2 clear).
    energy_expended_kj : int | None
        Cumulative energy expended in kilojoules, when present.
    rr_1024 : tuple[int, ...]
        RR intervals in units of 1/1024 s, oldest first (empty when none were sent).
    """

    hr_bpm: int
    sensor_contact: bool | None = None
    energy_expended_kj: int | None = None
    rr_1024: tuple[int, ...] = ()

    @property
    def rr_ms(self) -> tuple[float, ...]:
        """RR intervals in milliseconds (``rr_1024 * 1000 / 1024``), oldest first."""
        return tuple(rr * 1000.0 / RR_UNITS_PER_S for rr in self.rr_1024)


def decode_heart_rate_measurement(data: RawValue) -> HeartRateMeasurement:
    """Decode a Heart Rate Measurement (0x2A37) value.

    Parameters
    ----------
    data : bytes | bytearray | memoryview
        The notified characteristic value (2..n octets).

    Returns
    -------
    HeartRateMeasurement
        The decoded measurement (units in the attribute names).

    Raises
    ------
    FrameDecodeError
        If the value is shorter than its flags announce, has an odd number of RR octets, has the
        RR flag set with no RR-Interval, or carries trailing octets when the RR flag is clear.

    References
    ----------
    .. [1] Bluetooth SIG, GATT Specification Supplement v5 (2021-09-14), "Heart Rate
       Measurement"; Heart Rate Service v1.0 (2011-07-12), §3.1.
    """
    reader = ByteReader(data, _WHAT)
    flags = reader.read_uint(1, "Flags")
    if flags & HRM_FLAG_HR_UINT16:
        hr_bpm = reader.read_uint(2, "Heart Rate Measurement Value (uint16)")
    else:
        hr_bpm = reader.read_uint(1, "Heart Rate Measurement Value (uint8)")
    sensor_contact: bool | None = None
    if flags & HRM_FLAG_CONTACT_SUPPORTED:
        sensor_contact = bool(flags & HRM_FLAG_CONTACT_DETECTED)
    energy_kj: int | None = None
    if flags & HRM_FLAG_ENERGY_EXPENDED:
        energy_kj = reader.read_uint(2, "Energy Expended")
    rr: tuple[int, ...] = ()
    if flags & HRM_FLAG_RR_INTERVALS:
        if reader.remaining == 0:
            msg = "RR-Interval flag set but no RR-Interval value follows"
            raise reader.error(msg)
        if reader.remaining % 2:
            msg = f"{reader.remaining} RR-Interval octets is not a whole number"
            raise reader.error(msg)
        rr = tuple(reader.read_uint(2, "RR-Interval") for _ in range(reader.remaining // 2))
    reader.expect_end()
    return HeartRateMeasurement(
        hr_bpm=hr_bpm, sensor_contact=sensor_contact, energy_expended_kj=energy_kj, rr_1024=rr
    )


def encode_heart_rate_measurement(m: HeartRateMeasurement, *, hr_16bit: bool = False) -> bytes:
    """Encode a Heart Rate Measurement value exactly as a strap notifies it.

    Parameters
    ----------
    m : HeartRateMeasurement
        The measurement.
    hr_16bit : bool
        Send the heart rate as uint16 even when it fits a uint8. Values above 255 always use
        uint16 (HRS v1.0 §3.1 recommends uint8 whenever the value fits).

    Returns
    -------
    bytes
        Flags, HR, optional Energy Expended, optional RR-Intervals (module docstring). Reserved
        flag bits are 0; the RR flag is set only when ``m.rr_1024`` is non-empty.

    Raises
    ------
    ValueError
        If ``hr_bpm``, ``energy_expended_kj`` or an RR interval is outside ``0..65535``.
    """
    _check_uint16("hr_bpm", m.hr_bpm)
    flags = 0
    use_16bit = hr_16bit or m.hr_bpm > _UINT8_MAX
    if use_16bit:
        flags |= HRM_FLAG_HR_UINT16
    if m.sensor_contact is not None:
        flags |= HRM_FLAG_CONTACT_SUPPORTED
        if m.sensor_contact:
            flags |= HRM_FLAG_CONTACT_DETECTED
    out = bytearray()
    out += m.hr_bpm.to_bytes(2 if use_16bit else 1, "little")
    if m.energy_expended_kj is not None:
        _check_uint16("energy_expended_kj", m.energy_expended_kj)
        flags |= HRM_FLAG_ENERGY_EXPENDED
        out += m.energy_expended_kj.to_bytes(2, "little")
    if m.rr_1024:
        flags |= HRM_FLAG_RR_INTERVALS
        for rr in m.rr_1024:
            _check_uint16("rr_1024", rr)
            out += rr.to_bytes(2, "little")
    return bytes([flags]) + bytes(out)


def _check_uint16(name: str, value: int) -> None:
    if not 0 <= value <= _UINT16_MAX:
        msg = f"{name} must be in 0..65535, got {value!r}"
        raise ValueError(msg)
