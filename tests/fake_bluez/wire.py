"""The simulated firmware's own encoders (bytes the fake devices put on the air).

Deliberately written apart from :mod:`firmware_bridge.codecs`: the fake plays the device, and
a device that shared the decoder's code would hide any mistake both made the same way. Each
layout is the published one:

- Heart Rate Measurement 0x2A37: Bluetooth SIG, Heart Rate Service 1.0, section 3.1.
- Polar Measurement Data (PMD) ECG frame and control-point responses: Polar BLE SDK,
  ``technical_documentation/Polar_Measurement_Data_Specification.pdf`` (H10 firmware 3.x).
- PLX Continuous Measurement 0x2A5F: Bluetooth SIG, Pulse Oximeter Service 1.0, 3.2; SFLOAT is
  ISO/IEEE 11073-20601 (4-bit exponent, 12-bit mantissa).
- Temperature Measurement 0x2A1C: Bluetooth SIG, Health Thermometer Service 1.0, 3.1; FLOAT is
  ISO/IEEE 11073-20601 (8-bit exponent, 24-bit mantissa).
- Battery Level 0x2A19: one unsigned byte, percent.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

PMD_MEASUREMENT_ECG = 0x00
PMD_FRAME_TYPE_ECG_RAW = 0x00  # 3-byte signed little-endian µV samples
PMD_CONTROL_RESPONSE = 0xF0
PMD_FEATURES_READ = 0x0F

HRS_FLAG_HR_UINT16 = 0x01
HRS_FLAG_CONTACT_DETECTED = 0x02
HRS_FLAG_CONTACT_SUPPORTED = 0x04
HRS_FLAG_ENERGY = 0x08
HRS_FLAG_RR = 0x10

HRS_MAX_RR_PER_PACKET = 9
"""RR values that fit a default 23-byte ATT MTU notification with a uint8 heart rate
((20 - 2) / 2 = 9); real straps split longer lists over several notifications."""

SFLOAT_NAN = 0x07FF
FLOAT_NAN = 0x007FFFFF


def encode_pmd_ecg(sensor_timestamp_ns: int, samples_uv: Sequence[int]) -> bytes:
    """Return a PMD ECG data frame: type, uint64 timestamp (ns, last sample), frame type, int24s."""
    out = bytearray([PMD_MEASUREMENT_ECG])
    out += struct.pack("<Q", sensor_timestamp_ns)
    out.append(PMD_FRAME_TYPE_ECG_RAW)
    for sample in samples_uv:
        out += int(sample).to_bytes(3, "little", signed=True)
    return bytes(out)


def encode_pmd_response(
    op_code: int, measurement_type: int, error: int, parameters: bytes = b""
) -> bytes:
    """Return a PMD control-point response (``0xF0 op type error more params``)."""
    return bytes([PMD_CONTROL_RESPONSE, op_code, measurement_type, error, 0]) + parameters


def encode_heart_rate(hr_bpm: int, contact: bool | None, rr_1024: Sequence[int]) -> bytes:
    """Return a 0x2A37 Heart Rate Measurement (uint8 HR unless above 255 bpm)."""
    flags = 0
    if contact is not None:
        flags |= HRS_FLAG_CONTACT_SUPPORTED | (HRS_FLAG_CONTACT_DETECTED if contact else 0)
    if rr_1024:
        flags |= HRS_FLAG_RR
    if hr_bpm > 0xFF:
        flags |= HRS_FLAG_HR_UINT16
        body = struct.pack("<BH", flags, hr_bpm)
    else:
        body = struct.pack("<BB", flags, hr_bpm)
    return body + b"".join(struct.pack("<H", rr) for rr in rr_1024)


def _sfloat(value: float) -> int:
    """Encode ``value`` as an IEEE 11073 16-bit SFLOAT with the fewest decimals that fit."""
    for exponent in (0, -1, -2):
        mantissa = round(value * 10**-exponent)
        if abs(value * 10**-exponent - mantissa) < 1e-9 and -2048 < mantissa < 2047:
            return ((exponent & 0xF) << 12) | (mantissa & 0x0FFF)
    mantissa = round(value * 10)
    return ((-1 & 0xF) << 12) | (mantissa & 0x0FFF)


def encode_plx_continuous(spo2_pct: float, pulse_rate_bpm: float) -> bytes:
    """Return a 0x2A5F PLX Continuous Measurement with only the SpO2PR-Normal fields."""
    return struct.pack("<BHH", 0x00, _sfloat(spo2_pct), _sfloat(pulse_rate_bpm))


def encode_temperature(temperature_c: float, temperature_type: int = 2) -> bytes:
    """Return a 0x2A1C Temperature Measurement in °C, 0.01 °C resolution, with its type."""
    flags = 0x04  # Celsius, no time stamp, temperature type present
    mantissa = round(temperature_c * 100)
    encoded = (mantissa & 0xFFFFFF) | ((-2 & 0xFF) << 24)
    return struct.pack("<BIB", flags, encoded, temperature_type)


def encode_battery(level_pct: int) -> bytes:
    """Return a 0x2A19 Battery Level."""
    return bytes([max(0, min(100, level_pct))])


def malformed_pmd(rng: random.Random) -> bytes:
    """A PMD data notification cut inside its 10-byte header (never decodable)."""
    return rng.randbytes(rng.randint(0, 9))


def malformed_heart_rate(rng: random.Random) -> bytes:
    """A 0x2A37 notification shorter than its own flags require (never decodable)."""
    flags = rng.randint(0, 0xFF)
    needed = 1 + (2 if flags & HRS_FLAG_HR_UINT16 else 1) + (2 if flags & HRS_FLAG_ENERGY else 0)
    length = rng.randint(0, needed - 1)
    return (bytes([flags]) + rng.randbytes(needed))[:length]


def malformed_short(rng: random.Random, minimum: int) -> bytes:
    """Random bytes shorter than ``minimum`` (PLX and thermometer frames need 5)."""
    return rng.randbytes(rng.randint(0, minimum - 1))
