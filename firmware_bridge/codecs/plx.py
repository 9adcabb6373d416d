"""Bluetooth PLX Continuous Measurement (0x2A5F, Pulse Oximeter Service 0x1822).

Layout (GATT Specification Supplement v5, "PLX Continuous Measurement"; Pulse Oximeter Service
v1.0.1), little-endian, every physiological value an IEEE 11073 SFLOAT
(:mod:`firmware_bridge.codecs.ieee11073`)::

    offset  size  field
    0       1     Flags
                    bit 0  SpO2PR-Fast present
                    bit 1  SpO2PR-Slow present
                    bit 2  Measurement Status present
                    bit 3  Device and Sensor Status present
                    bit 4  Pulse Amplitude Index present
                    bits 5..7 reserved for future use (ignored on receipt, sent as 0)
    1       4     SpO2PR-Normal: SpO2 (%) SFLOAT, PR (bpm) SFLOAT        (mandatory)
    ..      0|4   SpO2PR-Fast:   SpO2 (%) SFLOAT, PR (bpm) SFLOAT
    ..      0|4   SpO2PR-Slow:   SpO2 (%) SFLOAT, PR (bpm) SFLOAT
    ..      0|2   Measurement Status, uint16 (bits 0..4 reserved)
    ..      0|3   Device and Sensor Status, uint24 (bits 16..23 reserved)
    ..      0|2   Pulse Amplitude Index (%) SFLOAT

Measurement Status bits: 5 measurement ongoing, 6 early estimated data, 7 validated data,
8 fully qualified data, 9 data from measurement storage, 10 data for demonstration, 11 data for
testing, 12 calibration ongoing, 13 measurement unavailable, 14 questionable measurement
detected, 15 invalid measurement detected.

Device and Sensor Status bits: 0 extended display update ongoing, 1 equipment malfunction,
2 signal processing irregularity, 3 inadequate signal, 4 poor signal, 5 low perfusion,
6 erratic signal, 7 nonpulsatile signal, 8 questionable pulse, 9 signal analysis ongoing,
10 sensor interference, 11 sensor unconnected to user, 12 unknown sensor connected,
13 sensor displaced, 14 sensor malfunctioning, 15 sensor disconnected.

Decoding rules: an SFLOAT that is not a finite number (NaN, NRes, reserved, ±INFINITY) is
``None`` ("no valid value"; the oximeter blanks its display for these); a finite value outside
its physical range (SpO2 or Pulse Amplitude Index outside 0..100 %, negative pulse rate) raises
:class:`~firmware_bridge.errors.FrameDecodeError`, as do a short value and trailing octets.
Status words are kept raw, reserved bits included.

Cross-checked against the Stanford Spezi ``PLXContinuousMeasurement`` model (same flag and
status bit assignments).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from firmware_bridge.codecs._wire import ByteReader, RawValue, uuid16
from firmware_bridge.codecs.ieee11073 import SFLOAT_NAN, decode_sfloat, encode_sfloat
from firmware_bridge.limits import (
    PAI_MAX_PLAUSIBLE_PCT,
    PAI_MIN_PLAUSIBLE_PCT,
    PULSE_MIN_PLAUSIBLE_BPM,
    SPO2_MAX_PLAUSIBLE_PCT,
    SPO2_MIN_PLAUSIBLE_PCT,
)

PLX_SERVICE_UUID = uuid16(0x1822)
PLX_CONTINUOUS_UUID = uuid16(0x2A5F)

PLX_FLAG_FAST = 0x01
PLX_FLAG_SLOW = 0x02
PLX_FLAG_MEASUREMENT_STATUS = 0x04
PLX_FLAG_DEVICE_SENSOR_STATUS = 0x08
PLX_FLAG_PULSE_AMPLITUDE_INDEX = 0x10

# Measurement Status bits (PLXS v1.0.1, Measurement Status field).
MEAS_STATUS_ONGOING = 1 << 5
MEAS_STATUS_EARLY_ESTIMATE = 1 << 6
MEAS_STATUS_VALIDATED = 1 << 7
MEAS_STATUS_FULLY_QUALIFIED = 1 << 8
MEAS_STATUS_FROM_STORAGE = 1 << 9
MEAS_STATUS_DEMONSTRATION = 1 << 10
MEAS_STATUS_TESTING = 1 << 11
MEAS_STATUS_CALIBRATION_ONGOING = 1 << 12
MEAS_STATUS_UNAVAILABLE = 1 << 13
MEAS_STATUS_QUESTIONABLE = 1 << 14
MEAS_STATUS_INVALID = 1 << 15

# Device and Sensor Status bits (PLXS v1.0.1, Device and Sensor Status field).
DEV_STATUS_EXTENDED_DISPLAY_UPDATE = 1 << 0
DEV_STATUS_EQUIPMENT_MALFUNCTION = 1 << 1
DEV_STATUS_SIGNAL_PROCESSING_IRREGULARITY = 1 << 2
DEV_STATUS_INADEQUATE_SIGNAL = 1 << 3
DEV_STATUS_POOR_SIGNAL = 1 << 4
DEV_STATUS_LOW_PERFUSION = 1 << 5
DEV_STATUS_ERRATIC_SIGNAL = 1 << 6
DEV_STATUS_NONPULSATILE_SIGNAL = 1 << 7
DEV_STATUS_QUESTIONABLE_PULSE = 1 << 8
DEV_STATUS_SIGNAL_ANALYSIS_ONGOING = 1 << 9
DEV_STATUS_SENSOR_INTERFERENCE = 1 << 10
DEV_STATUS_SENSOR_UNCONNECTED_TO_USER = 1 << 11
DEV_STATUS_UNKNOWN_SENSOR = 1 << 12
DEV_STATUS_SENSOR_DISPLACED = 1 << 13
DEV_STATUS_SENSOR_MALFUNCTIONING = 1 << 14
DEV_STATUS_SENSOR_DISCONNECTED = 1 << 15

# Plausibility gates (firmware_bridge.limits): SpO2 and the Pulse Amplitude Index are
# percentages (0..100 %); a pulse rate cannot be negative. Values outside are corrupt frames,
# not physiology. The upper pulse-rate gate is applied by the transport (it keeps the SpO2).

_UINT16_MAX = 0xFFFF
_UINT24_MAX = 0xFFFFFF
_WHAT = "PLX Continuous Measurement (0x2A5F)"


@dataclass(frozen=True, slots=True)
class PlxContinuous:
    """One PLX Continuous Measurement notification.

    Attributes
    ----------
    spo2_pct : float | None
        SpO2 (normal response), %; ``None`` when the oximeter sent no valid value.
    pulse_rate_bpm : float | None
        Pulse rate (normal response), bpm.
    spo2_fast_pct, pr_fast_bpm : float | None
        Fast-response SpO2 (%) and pulse rate (bpm), when sent and valid.
    spo2_slow_pct, pr_slow_bpm : float | None
        Slow-response SpO2 (%) and pulse rate (bpm), when sent and valid.
    measurement_status : int | None
        Raw Measurement Status word (uint16), when sent.
    device_sensor_status : int | None
        Raw Device and Sensor Status word (uint24), when sent.
    pulse_amplitude_index_pct : float | None
        Pulse Amplitude Index (perfusion), %, when sent and valid.
    """

    spo2_pct: float | None
    pulse_rate_bpm: float | None
    spo2_fast_pct: float | None = None
    pr_fast_bpm: float | None = None
    spo2_slow_pct: float | None = None
    pr_slow_bpm: float | None = None
    measurement_status: int | None = None
    device_sensor_status: int | None = None
    pulse_amplitude_index_pct: float | None = None

    def _meas(self, mask: int) -> bool | None:
        if self.measurement_status is None:
            return None
        return bool(self.measurement_status & mask)

    def _dev(self, mask: int) -> bool | None:
        if self.device_sensor_status is None:
            return None
        return bool(self.device_sensor_status & mask)

    @property
    def measurement_ongoing(self) -> bool | None:
        """Measurement Status bit 5: the oximeter is still acquiring; ``None`` if not sent."""
        return self._meas(MEAS_STATUS_ONGOING)

    @property
    def questionable(self) -> bool | None:
        """Measurement Status bit 14 (questionable) or 15 (invalid); ``None`` if not sent."""
        return self._meas(MEAS_STATUS_QUESTIONABLE | MEAS_STATUS_INVALID)

    @property
    def measurement_unavailable(self) -> bool | None:
        """Measurement Status bit 13: no measurement available; ``None`` if not sent."""
        return self._meas(MEAS_STATUS_UNAVAILABLE)

    @property
    def sensor_disconnected(self) -> bool | None:
        """Device and Sensor Status bit 15: the probe is unplugged; ``None`` if not sent."""
        return self._dev(DEV_STATUS_SENSOR_DISCONNECTED)

    @property
    def no_contact(self) -> bool | None:
        """Bit 11 (sensor unconnected to user) or bit 13 (displaced); ``None`` if not sent."""
        return self._dev(DEV_STATUS_SENSOR_UNCONNECTED_TO_USER | DEV_STATUS_SENSOR_DISPLACED)

    @property
    def equipment_fault(self) -> bool | None:
        """Bit 1 (equipment malfunction) or bit 14 (sensor malfunctioning); ``None`` if not sent."""
        return self._dev(DEV_STATUS_EQUIPMENT_MALFUNCTION | DEV_STATUS_SENSOR_MALFUNCTIONING)

    @property
    def poor_signal(self) -> bool | None:
        """Any of bits 3..7 (inadequate, poor, low perfusion, erratic, nonpulsatile signal).

        ``None`` when the Device and Sensor Status field was not sent.
        """
        return self._dev(
            DEV_STATUS_INADEQUATE_SIGNAL
            | DEV_STATUS_POOR_SIGNAL
            | DEV_STATUS_LOW_PERFUSION
            | DEV_STATUS_ERRATIC_SIGNAL
            | DEV_STATUS_NONPULSATILE_SIGNAL
        )


def _read_sfloat(reader: ByteReader, field: str, lo: float, hi: float = math.inf) -> float | None:
    at = reader.offset
    value = decode_sfloat(reader.read_uint(2, field))
    if not math.isfinite(value):
        return None
    if not lo <= value <= hi:
        msg = f"{field} = {value} outside {lo}..{hi}"
        raise reader.error(msg, at)
    return value


def decode_plx_continuous(data: RawValue) -> PlxContinuous:
    """Decode a PLX Continuous Measurement (0x2A5F) value.

    Parameters
    ----------
    data : bytes | bytearray | memoryview
        The notified value (5..20 octets depending on flags).

    Returns
    -------
    PlxContinuous
        SpO2 in %, pulse rates in bpm, Pulse Amplitude Index in %, raw status words.

    Raises
    ------
    FrameDecodeError
        If the value is shorter than its flags announce, carries trailing octets, or holds a
        finite SpO2/PAI outside 0..100 % or a negative pulse rate.

    References
    ----------
    .. [1] Bluetooth SIG, GATT Specification Supplement v5 (2021-09-14), "PLX Continuous
       Measurement"; Pulse Oximeter Service v1.0.1.
    """
    reader = ByteReader(data, _WHAT)
    flags = reader.read_uint(1, "Flags")
    spo2 = _read_sfloat(
        reader, "SpO2PR-Normal SpO2", SPO2_MIN_PLAUSIBLE_PCT, SPO2_MAX_PLAUSIBLE_PCT
    )
    pr = _read_sfloat(reader, "SpO2PR-Normal PR", PULSE_MIN_PLAUSIBLE_BPM)
    spo2_fast = pr_fast = spo2_slow = pr_slow = pai = None
    meas_status = dev_status = None
    if flags & PLX_FLAG_FAST:
        spo2_fast = _read_sfloat(
            reader, "SpO2PR-Fast SpO2", SPO2_MIN_PLAUSIBLE_PCT, SPO2_MAX_PLAUSIBLE_PCT
        )
        pr_fast = _read_sfloat(reader, "SpO2PR-Fast PR", PULSE_MIN_PLAUSIBLE_BPM)
    if flags & PLX_FLAG_SLOW:
        spo2_slow = _read_sfloat(
            reader, "SpO2PR-Slow SpO2", SPO2_MIN_PLAUSIBLE_PCT, SPO2_MAX_PLAUSIBLE_PCT
        )
        pr_slow = _read_sfloat(reader, "SpO2PR-Slow PR", PULSE_MIN_PLAUSIBLE_BPM)
    if flags & PLX_FLAG_MEASUREMENT_STATUS:
        meas_status = reader.read_uint(2, "Measurement Status")
    if flags & PLX_FLAG_DEVICE_SENSOR_STATUS:
        dev_status = reader.read_uint(3, "Device and Sensor Status")
    if flags & PLX_FLAG_PULSE_AMPLITUDE_INDEX:
        pai = _read_sfloat(
            reader, "Pulse Amplitude Index", PAI_MIN_PLAUSIBLE_PCT, PAI_MAX_PLAUSIBLE_PCT
        )
    reader.expect_end()
    return PlxContinuous(
        spo2_pct=spo2,
        pulse_rate_bpm=pr,
        spo2_fast_pct=spo2_fast,
        pr_fast_bpm=pr_fast,
        spo2_slow_pct=spo2_slow,
        pr_slow_bpm=pr_slow,
        measurement_status=meas_status,
        device_sensor_status=dev_status,
        pulse_amplitude_index_pct=pai,
    )


def _sfloat_bytes(name: str, value: float | None, lo: float, hi: float = math.inf) -> bytes:
    if value is None:
        return SFLOAT_NAN.to_bytes(2, "little")
    if not math.isfinite(value) or not lo <= value <= hi:
        msg = f"{name} must be finite and in {lo}..{hi} (or None), got {value!r}"
        raise ValueError(msg)
    return encode_sfloat(value).to_bytes(2, "little")


def encode_plx_continuous(m: PlxContinuous) -> bytes:
    """Encode a PLX Continuous Measurement value as an oximeter notifies it.

    Parameters
    ----------
    m : PlxContinuous
        The measurement. ``None`` SpO2/PR encode as SFLOAT NaN; a fast (slow) pair is sent when
        either of its two values is not ``None``; status words and PAI when not ``None``.

    Returns
    -------
    bytes
        Flags and fields in the order of the module docstring; SFLOATs use the device-style
        exponent of :func:`~firmware_bridge.codecs.ieee11073.encode_sfloat` (97 % → ``61 00``).

    Raises
    ------
    ValueError
        If a value is non-finite or outside its range (SpO2/PAI 0..100 %, PR >= 0), does not
        fit an SFLOAT, or a status word does not fit its width.
    """
    flags = 0
    out = bytearray()
    out += _sfloat_bytes("spo2_pct", m.spo2_pct, SPO2_MIN_PLAUSIBLE_PCT, SPO2_MAX_PLAUSIBLE_PCT)
    out += _sfloat_bytes("pulse_rate_bpm", m.pulse_rate_bpm, PULSE_MIN_PLAUSIBLE_BPM)
    if m.spo2_fast_pct is not None or m.pr_fast_bpm is not None:
        flags |= PLX_FLAG_FAST
        out += _sfloat_bytes(
            "spo2_fast_pct", m.spo2_fast_pct, SPO2_MIN_PLAUSIBLE_PCT, SPO2_MAX_PLAUSIBLE_PCT
        )
        out += _sfloat_bytes("pr_fast_bpm", m.pr_fast_bpm, PULSE_MIN_PLAUSIBLE_BPM)
    if m.spo2_slow_pct is not None or m.pr_slow_bpm is not None:
        flags |= PLX_FLAG_SLOW
        out += _sfloat_bytes(
            "spo2_slow_pct", m.spo2_slow_pct, SPO2_MIN_PLAUSIBLE_PCT, SPO2_MAX_PLAUSIBLE_PCT
        )
        out += _sfloat_bytes("pr_slow_bpm", m.pr_slow_bpm, PULSE_MIN_PLAUSIBLE_BPM)
    if m.measurement_status is not None:
        if not 0 <= m.measurement_status <= _UINT16_MAX:
            msg = f"measurement_status must fit a uint16, got {m.measurement_status!r}"
            raise ValueError(msg)
        flags |= PLX_FLAG_MEASUREMENT_STATUS
        out += m.measurement_status.to_bytes(2, "little")
    if m.device_sensor_status is not None:
        if not 0 <= m.device_sensor_status <= _UINT24_MAX:
            msg = f"device_sensor_status must fit a uint24, got {m.device_sensor_status!r}"
            raise ValueError(msg)
        flags |= PLX_FLAG_DEVICE_SENSOR_STATUS
        out += m.device_sensor_status.to_bytes(3, "little")
    if m.pulse_amplitude_index_pct is not None:
        flags |= PLX_FLAG_PULSE_AMPLITUDE_INDEX
        out += _sfloat_bytes(
            "pulse_amplitude_index_pct",
            m.pulse_amplitude_index_pct,
            PAI_MIN_PLAUSIBLE_PCT,
            PAI_MAX_PLAUSIBLE_PCT,
        )
    return bytes([flags]) + bytes(out)
