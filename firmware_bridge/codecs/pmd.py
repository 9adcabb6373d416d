"""Polar Measurement Data (PMD): control point commands/responses and H10 ECG data frames.

Sources: Polar BLE SDK, ``technical_documentation/Polar_Measurement_Data_Specification.pdf`` and
the SDK's Kotlin model (``PmdControlPointCommand``, ``PmdControlPointResponse``,
``PmdMeasurementType``, ``PmdSetting``, ``PmdDataFrame``, ``model/EcgData``), checked against a
real Polar H10 session logged with gatttool (phdiethelm/h10_ecg, ``exploration/gatttool.md``).
All multi-octet fields are little-endian.

Control point (``fb005c81-…``), client → sensor (write with response)::

    [op_code, measurement_type, settings...]
    settings = repeated [setting_type, count, value * count]   (value width per setting type:
               SAMPLE_RATE/RESOLUTION/RANGE uint16, RANGE_MILLIUNIT/FACTOR 4 octets,
               CHANNELS uint8)

    H10 ECG start: 02 00 | 00 01 82 00 | 01 01 0e 00   (130 Hz, 14 bit)

Control point, sensor → client (indication)::

    0  0xF0 (control point response)
    1  op_code echoed
    2  measurement_type echoed
    3  error code (PmdError)
    4  "more" (non-zero: more response frames follow)      -- may be absent
    5+ parameters (GET_MEASUREMENT_SETTINGS: settings TLV; H10 start: one reserved 0x00)

    H10 settings reply: f0 01 00 00 00 | 00 01 82 00 01 01 0e 00
    H10 start reply:    f0 02 00 00 00 00
    H10 error reply:    f0 02 00 05 00          (start without settings: INVALID_PARAMETER)
    H10, MTU too small: f0 00 01 0a             (op code 0, INVALID_MTU, no "more" octet)

Control point read (features)::

    0  0x0F
    1  bit 0 ECG, 1 PPG, 2 ACC, 3 PPI, 4 reserved, 5 GYRO, 6 MAGNETOMETER, 7 SKIN_TEMP
    2  bit 1 SDK_MODE, 2 LOCATION, 3 PRESSURE, 4 TEMPERATURE, 5 OFFLINE_RECORDING, 6 OFFLINE_HR
    .. zero padding (the H10 answers 17 octets: 0f 05 00 … 00)

Data (``fb005c82-…``, notification)::

    0     measurement type (low 6 bits; 0 = ECG)
    1..8  sensor timestamp, uint64, ns (Polar epoch; only differences are meaningful here)
    9     frame type (low 7 bits) | 0x80 if delta-compressed
    10+   samples; ECG frame type 0: int24 µV per sample, 130 Hz on the H10

With an ATT MTU of 232 the H10 packs 73 samples (229 = 10 + 73 * 3 octets) per notification.
Only ECG frame type 0 (the H10's) is decoded; other measurement types, other ECG frame types and
compressed frames raise :class:`~firmware_bridge.errors.FrameDecodeError` naming what was seen.

Length: one protocol; each Polar PMD frame layout is written out with the captured replies it
was checked against.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from firmware_bridge.codecs._wire import ByteReader, RawValue

_E = TypeVar("_E", bound=enum.IntEnum)

PMD_SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_POINT_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

PMD_CONTROL_POINT_RESPONSE = 0xF0  # first octet of every control point indication
PMD_FEATURES_RESPONSE = 0x0F  # first octet of a control point read
PMD_FEATURES_LENGTH = 17  # octets the H10 returns for a feature read (gatttool capture)
PMD_MEASUREMENT_TYPE_MASK = 0x3F  # SDK PmdMeasurementType.fromId masks the type octet
PMD_FRAME_TYPE_MASK = 0x7F  # SDK PmdDataFrame: low 7 bits = frame type
PMD_FRAME_COMPRESSED_BIT = 0x80  # SDK PmdDataFrame: delta-compressed frame
PMD_DATA_HEADER_LENGTH = 10  # type (1) + timestamp (8) + frame type (1)
PMD_ECG_FRAME_TYPE_0 = 0  # raw int24 µV samples (Polar H10)
PMD_ECG_SAMPLE_BYTES = 3
ECG_SAMPLE_MIN_UV = -(1 << 23)  # int24 range of a type-0 ECG sample
ECG_SAMPLE_MAX_UV = (1 << 23) - 1
H10_ECG_SAMPLE_RATE_HZ = 130  # the only ECG rate the H10 offers (its settings reply)
H10_ECG_RESOLUTION_BITS = 14
_UINT16_MAX = 0xFFFF
_UINT64_MAX = (1 << 64) - 1


class PmdMeasurementType(enum.IntEnum):
    """PMD measurement types (SDK ``PmdMeasurementType``)."""

    ECG = 0
    PPG = 1
    ACC = 2
    PPI = 3
    GYRO = 5
    MAGNETOMETER = 6
    SKIN_TEMP = 7
    SDK_MODE = 9
    LOCATION = 10
    PRESSURE = 11
    TEMPERATURE = 12
    OFFLINE_RECORDING = 13
    OFFLINE_HR = 14
    OFFLINE_TEMP = 15


class PmdOpCode(enum.IntEnum):
    """Control point op codes, client to sensor (SDK ``PmdControlPointCommandClientToService``).

    ``NULL_ITEM`` (0) is no request; a real H10 echoed it in an INVALID_MTU reply.
    """

    NULL_ITEM = 0
    GET_MEASUREMENT_SETTINGS = 1
    REQUEST_MEASUREMENT_START = 2
    STOP_MEASUREMENT = 3
    GET_SDK_MODE_MEASUREMENT_SETTINGS = 4
    GET_MEASUREMENT_STATUS = 5
    GET_SDK_MODE_STATUS = 6
    GET_OFFLINE_RECORDING_TRIGGER_STATUS = 7
    SET_OFFLINE_RECORDING_TRIGGER_MODE = 8
    SET_OFFLINE_RECORDING_TRIGGER_SETTINGS = 9


class PmdError(enum.IntEnum):
    """Control point response codes (SDK ``PmdControlPointResponseCode``)."""

    SUCCESS = 0
    INVALID_OP_CODE = 1
    INVALID_MEASUREMENT_TYPE = 2
    NOT_SUPPORTED = 3
    INVALID_LENGTH = 4
    INVALID_PARAMETER = 5
    ALREADY_IN_STATE = 6
    INVALID_RESOLUTION = 7
    INVALID_SAMPLE_RATE = 8
    INVALID_RANGE = 9
    INVALID_MTU = 10
    INVALID_NUMBER_OF_CHANNELS = 11
    INVALID_STATE = 12
    DEVICE_IN_CHARGER = 13
    DISK_FULL = 14


class PmdSettingType(enum.IntEnum):
    """Setting types of the settings TLV (SDK ``PmdSetting.PmdSettingType``)."""

    SAMPLE_RATE = 0
    RESOLUTION = 1
    RANGE = 2
    RANGE_MILLIUNIT = 3
    CHANNELS = 4
    FACTOR = 5


# Octets per value of each setting type (SDK PmdSetting.typeToFieldSize).
PMD_SETTING_VALUE_BYTES: Mapping[PmdSettingType, int] = {
    PmdSettingType.SAMPLE_RATE: 2,
    PmdSettingType.RESOLUTION: 2,
    PmdSettingType.RANGE: 2,
    PmdSettingType.RANGE_MILLIUNIT: 4,
    PmdSettingType.CHANNELS: 1,
    PmdSettingType.FACTOR: 4,
}

# Feature-read bitmap: (octet index, bit mask) per type (SDK PmdMeasurementType.fromByteArray).
PMD_FEATURE_BITS: Mapping[PmdMeasurementType, tuple[int, int]] = {
    PmdMeasurementType.ECG: (1, 0x01),
    PmdMeasurementType.PPG: (1, 0x02),
    PmdMeasurementType.ACC: (1, 0x04),
    PmdMeasurementType.PPI: (1, 0x08),
    PmdMeasurementType.GYRO: (1, 0x20),
    PmdMeasurementType.MAGNETOMETER: (1, 0x40),
    PmdMeasurementType.SKIN_TEMP: (1, 0x80),
    PmdMeasurementType.SDK_MODE: (2, 0x02),
    PmdMeasurementType.LOCATION: (2, 0x04),
    PmdMeasurementType.PRESSURE: (2, 0x08),
    PmdMeasurementType.TEMPERATURE: (2, 0x10),
    PmdMeasurementType.OFFLINE_RECORDING: (2, 0x20),
    PmdMeasurementType.OFFLINE_HR: (2, 0x40),
}


@dataclass(frozen=True, slots=True)
class PmdControlResponse:
    """A control point response (indication starting with 0xF0).

    Attributes
    ----------
    op_code : PmdOpCode
        The request this answers.
    measurement_type : PmdMeasurementType
        The measurement type echoed.
    error : PmdError
        The sensor's verdict.
    more : bool
        More response frames follow (long settings replies).
    parameters : bytes
        Octets after the "more" octet (settings TLV for GET_MEASUREMENT_SETTINGS).
    """

    op_code: PmdOpCode
    measurement_type: PmdMeasurementType
    error: PmdError
    more: bool = False
    parameters: bytes = b""

    @property
    def ok(self) -> bool:
        """Whether the sensor accepted the request (``error is PmdError.SUCCESS``)."""
        return self.error is PmdError.SUCCESS


@dataclass(frozen=True, slots=True)
class PmdEcgFrame:
    """One PMD ECG notification (frame type 0).

    Attributes
    ----------
    sensor_timestamp_ns : int
        The sensor's timestamp of the frame in ns (Polar's clock; use differences only).
    samples_uv : tuple[int, ...]
        Shape ``(n_samples,)``, ECG in µV, oldest first, at the rate requested on start
        (130 Hz on the H10).
    """

    sensor_timestamp_ns: int
    samples_uv: tuple[int, ...]


def _uint16(name: str, value: int) -> bytes:
    if not 0 <= value <= _UINT16_MAX:
        msg = f"{name} must be in 0..65535, got {value!r}"
        raise ValueError(msg)
    return value.to_bytes(2, "little")


def build_get_settings(mt: PmdMeasurementType) -> bytes:
    """Build a GET_MEASUREMENT_SETTINGS request.

    Parameters
    ----------
    mt : PmdMeasurementType
        The measurement type whose settings to query.

    Returns
    -------
    bytes
        ``[0x01, mt]`` (write it to the control point; ECG: ``01 00``).
    """
    return bytes([PmdOpCode.GET_MEASUREMENT_SETTINGS, PmdMeasurementType(mt)])


def encode_measurement_settings(settings: Mapping[PmdSettingType, Sequence[int]]) -> bytes:
    """Encode a settings TLV (requests and GET_MEASUREMENT_SETTINGS replies).

    Parameters
    ----------
    settings : Mapping[PmdSettingType, Sequence[int]]
        For each setting type, its values (one value in a start request; the allowed values in
        a settings reply). Written in mapping order.

    Returns
    -------
    bytes
        ``[type, count, value * count] ...`` with each value little-endian on
        ``PMD_SETTING_VALUE_BYTES[type]`` octets.

    Raises
    ------
    ValueError
        If a setting has no value or more than 255 values, or a value does not fit its width.
    """
    out = bytearray()
    for setting_type, values in settings.items():
        stype = PmdSettingType(setting_type)
        width = PMD_SETTING_VALUE_BYTES[stype]
        if not 1 <= len(values) <= 0xFF:  # the count is one octet
            msg = f"{stype.name}: 1..255 values required, got {len(values)}"
            raise ValueError(msg)
        out += bytes([stype, len(values)])
        for value in values:
            if not 0 <= value < 1 << (8 * width):
                msg = f"{stype.name} value {value!r} does not fit {width} octet(s)"
                raise ValueError(msg)
            out += value.to_bytes(width, "little")
    return bytes(out)


def parse_measurement_settings(parameters: RawValue) -> dict[PmdSettingType, tuple[int, ...]]:
    """Parse a settings TLV (the parameters of a GET_MEASUREMENT_SETTINGS reply).

    Parameters
    ----------
    parameters : bytes | bytearray | memoryview
        :attr:`PmdControlResponse.parameters`. Zero or one octet means "no settings" (the H10
        answers a start request with a single reserved 0x00), as in the SDK's ``PmdSetting``.

    Returns
    -------
    dict[PmdSettingType, tuple[int, ...]]
        Values per setting type, in wire order, as unsigned integers (FACTOR: its raw 32-bit
        word). H10 ECG: ``{SAMPLE_RATE: (130,), RESOLUTION: (14,)}``.

    Raises
    ------
    FrameDecodeError
        On an unknown setting type, a count of 0, a truncated value or a repeated type.
    """
    reader = ByteReader(parameters, "PMD settings")
    result: dict[PmdSettingType, tuple[int, ...]] = {}
    if len(reader.data) <= 1:
        return result
    while reader.remaining:
        at = reader.offset
        raw_type = reader.read_uint(1, "setting type")
        try:
            stype = PmdSettingType(raw_type)
        except ValueError:
            msg = f"unknown setting type {raw_type}"
            raise reader.error(msg, at) from None
        if stype in result:
            msg = f"setting {stype.name} repeated"
            raise reader.error(msg, at)
        count = reader.read_uint(1, f"{stype.name} count")
        if count == 0:
            msg = f"setting {stype.name} has no value"
            raise reader.error(msg, at)
        width = PMD_SETTING_VALUE_BYTES[stype]
        result[stype] = tuple(reader.read_uint(width, f"{stype.name} value") for _ in range(count))
    return result


def build_start_ecg(
    sample_rate_hz: int = H10_ECG_SAMPLE_RATE_HZ, resolution_bits: int = H10_ECG_RESOLUTION_BITS
) -> bytes:
    """Build the REQUEST_MEASUREMENT_START request for ECG.

    Parameters
    ----------
    sample_rate_hz : int
        ECG sampling rate in Hz (the H10 accepts only 130).
    resolution_bits : int
        Sample resolution in bits (the H10 accepts only 14).

    Returns
    -------
    bytes
        ``02 00 00 01 <rate uint16> 01 01 <resolution uint16>``; defaults give the H10's
        ``02 00 00 01 82 00 01 01 0e 00``.

    Raises
    ------
    ValueError
        If either value is outside ``0..65535``.
    """
    return (
        bytes([PmdOpCode.REQUEST_MEASUREMENT_START, PmdMeasurementType.ECG])
        + bytes([PmdSettingType.SAMPLE_RATE, 1])
        + _uint16("sample_rate_hz", sample_rate_hz)
        + bytes([PmdSettingType.RESOLUTION, 1])
        + _uint16("resolution_bits", resolution_bits)
    )


def build_stop(mt: PmdMeasurementType) -> bytes:
    """Build a STOP_MEASUREMENT request.

    Parameters
    ----------
    mt : PmdMeasurementType
        The stream to stop.

    Returns
    -------
    bytes
        ``[0x03, mt]`` (ECG: ``03 00``).
    """
    return bytes([PmdOpCode.STOP_MEASUREMENT, PmdMeasurementType(mt)])


def parse_control_response(data: RawValue) -> PmdControlResponse:
    """Parse a control point indication.

    Parameters
    ----------
    data : bytes | bytearray | memoryview
        The indicated value: ``F0 op type error [more [parameters...]]``.

    Returns
    -------
    PmdControlResponse
        The response; ``more`` is ``False`` and ``parameters`` empty when absent. Parameters
        are kept whatever the error code (the SDK drops them on errors).

    Raises
    ------
    FrameDecodeError
        If shorter than 4 octets, not starting with 0xF0, or the op code, measurement type or
        error code is not one the SDK defines.

    References
    ----------
    .. [1] Polar BLE SDK, ``PmdControlPointResponse.kt``; Polar Measurement Data Specification.
    """
    reader = ByteReader(data, "PMD control point response")
    first = reader.read_uint(1, "response code")
    if first != PMD_CONTROL_POINT_RESPONSE:
        msg = f"first octet {first:#04x} is not a control point response (0xf0)"
        raise reader.error(msg, 0)
    op_code = _enum(reader, PmdOpCode, "op code")
    measurement_type = _enum(reader, PmdMeasurementType, "measurement type")
    error = _enum(reader, PmdError, "error code")
    more = False
    if reader.remaining:
        more = reader.read_uint(1, "more") != 0
    return PmdControlResponse(op_code, measurement_type, error, more, reader.read_rest())


def encode_control_response(
    op_code: PmdOpCode,
    measurement_type: PmdMeasurementType,
    error: PmdError = PmdError.SUCCESS,
    *,
    more: bool = False,
    parameters: bytes = b"",
) -> bytes:
    r"""Encode a control point indication as the sensor sends it.

    Parameters
    ----------
    op_code : PmdOpCode
        The request answered.
    measurement_type : PmdMeasurementType
        The measurement type echoed.
    error : PmdError
        Response code.
    more : bool
        Whether more response frames follow.
    parameters : bytes
        Trailing parameters (settings TLV; ``b"\x00"`` for an H10 start reply).

    Returns
    -------
    bytes
        ``F0 op type error more parameters`` (the "more" octet is always sent, as the H10 does
        in every reply captured with a sufficient MTU).
    """
    return (
        bytes(
            [
                PMD_CONTROL_POINT_RESPONSE,
                PmdOpCode(op_code),
                PmdMeasurementType(measurement_type),
                PmdError(error),
                1 if more else 0,
            ]
        )
        + parameters
    )


def parse_pmd_features(data: RawValue) -> frozenset[PmdMeasurementType]:
    """Parse a control point read (the sensor's feature bitmap).

    Parameters
    ----------
    data : bytes | bytearray | memoryview
        The read value, ``0F <octet 1> [<octet 2> ...]``.

    Returns
    -------
    frozenset[PmdMeasurementType]
        The measurement types the sensor offers (H10: ECG and ACC). Reserved bits are ignored.

    Raises
    ------
    FrameDecodeError
        If shorter than 2 octets or not starting with 0x0F.
    """
    reader = ByteReader(data, "PMD feature read")
    first = reader.read_uint(1, "response code")
    if first != PMD_FEATURES_RESPONSE:
        msg = f"first octet {first:#04x} is not a feature response (0x0f)"
        raise reader.error(msg, 0)
    reader.read_uint(1, "feature octet 1")
    raw = reader.data
    return frozenset(
        mt
        for mt, (index, mask) in PMD_FEATURE_BITS.items()
        if index < len(raw) and raw[index] & mask
    )


def encode_pmd_features(types: Iterable[PmdMeasurementType]) -> bytes:
    """Encode a feature read value as the H10 answers it (17 octets).

    Parameters
    ----------
    types : Iterable[PmdMeasurementType]
        Offered measurement types (H10: ``{ECG, ACC}`` gives ``0f 05 00 … 00``).

    Returns
    -------
    bytes
        ``0x0F``, the two bitmap octets, zero padding to 17 octets.

    Raises
    ------
    ValueError
        For a type with no bit in the feature map (``OFFLINE_TEMP``).
    """
    out = bytearray(PMD_FEATURES_LENGTH)
    out[0] = PMD_FEATURES_RESPONSE
    for mt in types:
        if mt not in PMD_FEATURE_BITS:
            msg = f"{PmdMeasurementType(mt).name} has no bit in the PMD feature map"
            raise ValueError(msg)
        index, mask = PMD_FEATURE_BITS[mt]
        out[index] |= mask
    return bytes(out)


def decode_pmd_data(data: RawValue) -> PmdEcgFrame:
    """Decode a PMD data notification carrying ECG frame type 0 (Polar H10).

    Parameters
    ----------
    data : bytes | bytearray | memoryview
        The notified value: 10-octet header then ``3 * n_samples`` octets (``n_samples >= 1``).

    Returns
    -------
    PmdEcgFrame
        The sensor timestamp (ns) and the samples in µV.

    Raises
    ------
    FrameDecodeError
        If shorter than the header, if the measurement type is not ECG, if the frame is
        compressed or of another frame type, if there is no sample, or if the payload is not a
        whole number of 3-octet samples.

    References
    ----------
    .. [1] Polar BLE SDK, ``PmdDataFrame.kt`` and ``model/EcgData.kt`` (``dataFromRawType0``).
    .. [2] Polar H10 ECG notifications, phdiethelm/h10_ecg ``exploration/gatttool.md``.
    """
    reader = ByteReader(data, "PMD data")
    raw_type = reader.read_uint(1, "measurement type")
    timestamp_ns = reader.read_uint(8, "timestamp")
    frame_type_octet = reader.read_uint(1, "frame type")
    mt = raw_type & PMD_MEASUREMENT_TYPE_MASK
    if mt != PmdMeasurementType.ECG:
        known = PmdMeasurementType._value2member_map_.get(mt)
        name = known.name if known is not None else "unknown"
        msg = f"measurement type {mt} ({name}) is not supported; only ECG (0) is decoded"
        raise reader.error(msg, 0)
    if frame_type_octet & PMD_FRAME_COMPRESSED_BIT:
        msg = "compressed (delta) ECG frames are not supported"
        raise reader.error(msg, 9)
    frame_type = frame_type_octet & PMD_FRAME_TYPE_MASK
    if frame_type != PMD_ECG_FRAME_TYPE_0:
        msg = f"ECG frame type {frame_type} is not supported; only type 0 (int24 µV, H10)"
        raise reader.error(msg, 9)
    if reader.remaining == 0:
        msg = "ECG frame holds no sample"
        raise reader.error(msg)
    if reader.remaining % PMD_ECG_SAMPLE_BYTES:
        msg = f"{reader.remaining} sample octets is not a multiple of 3"
        raise reader.error(msg)
    payload = reader.read_rest()
    samples = tuple(
        int.from_bytes(payload[i : i + PMD_ECG_SAMPLE_BYTES], "little", signed=True)
        for i in range(0, len(payload), PMD_ECG_SAMPLE_BYTES)
    )
    return PmdEcgFrame(sensor_timestamp_ns=timestamp_ns, samples_uv=samples)


def encode_pmd_ecg_frame(sensor_timestamp_ns: int, samples_uv: Sequence[int]) -> bytes:
    """Encode an ECG frame-type-0 notification as the H10 sends it.

    Parameters
    ----------
    sensor_timestamp_ns : int
        Sensor timestamp in ns, ``0..2**64-1``.
    samples_uv : Sequence[int]
        Shape ``(n_samples,)``, µV, each in the int24 range ``-8388608..8388607``; at least one
        (the H10 sends 73 per notification at MTU 232).

    Returns
    -------
    bytes
        ``00 <timestamp uint64> 00 <int24 samples>``.

    Raises
    ------
    ValueError
        If the timestamp or a sample is out of range, or there is no sample.
    """
    if not 0 <= sensor_timestamp_ns <= _UINT64_MAX:
        msg = f"sensor_timestamp_ns must be in 0..2**64-1, got {sensor_timestamp_ns!r}"
        raise ValueError(msg)
    if len(samples_uv) == 0:
        msg = "an ECG frame needs at least one sample"
        raise ValueError(msg)
    out = bytearray([PmdMeasurementType.ECG])
    out += sensor_timestamp_ns.to_bytes(8, "little")
    out.append(PMD_ECG_FRAME_TYPE_0)
    for i, sample in enumerate(samples_uv):
        if not ECG_SAMPLE_MIN_UV <= sample <= ECG_SAMPLE_MAX_UV:
            msg = f"samples_uv[{i}] = {sample!r} is outside the int24 range"
            raise ValueError(msg)
        out += int(sample).to_bytes(PMD_ECG_SAMPLE_BYTES, "little", signed=True)
    return bytes(out)


def _enum(reader: ByteReader, enum_type: type[_E], field: str) -> _E:
    at = reader.offset
    raw = reader.read_uint(1, field)
    try:
        return enum_type(raw)
    except ValueError:
        msg = f"unknown {field} {raw}"
        raise reader.error(msg, at) from None
