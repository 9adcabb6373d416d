"""Pure decoders: bytes from sensor firmware in, typed frames out (no I/O).

Each module documents its wire layout and sources; every decoder raises only
:class:`~firmware_bridge.errors.FrameDecodeError` on bad bytes, and every encoder produces the
bytes a real device sends (the fake BLE peripheral uses them).

Characteristic → UUID constant → decoder (frame):

- Heart Rate Measurement 0x2A37: ``HEART_RATE_MEASUREMENT_UUID`` →
  :func:`decode_heart_rate_measurement` (:class:`HeartRateMeasurement`)
- Polar PMD data: ``PMD_DATA_UUID`` → :func:`decode_pmd_data` (:class:`PmdEcgFrame`)
- Polar PMD control point indications: ``PMD_CONTROL_POINT_UUID`` →
  :func:`parse_control_response` (:class:`PmdControlResponse`)
- PLX Continuous Measurement 0x2A5F: ``PLX_CONTINUOUS_UUID`` → :func:`decode_plx_continuous`
  (:class:`PlxContinuous`)
- Temperature Measurement 0x2A1C: ``TEMPERATURE_MEASUREMENT_UUID`` →
  :func:`decode_temperature_measurement` (:class:`TemperatureMeasurement`)
- Battery Level 0x2A19: ``BATTERY_LEVEL_UUID`` → :func:`decode_battery_level` (``int``, %)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from firmware_bridge.codecs._wire import RawValue, uuid16
from firmware_bridge.codecs.battery import (
    BATTERY_LEVEL_UUID,
    BATTERY_SERVICE_UUID,
    decode_battery_level,
    encode_battery_level,
)
from firmware_bridge.codecs.heart_rate import (
    HEART_RATE_MEASUREMENT_UUID,
    HEART_RATE_SERVICE_UUID,
    HeartRateMeasurement,
    decode_heart_rate_measurement,
    encode_heart_rate_measurement,
)
from firmware_bridge.codecs.ieee11073 import (
    decode_float32,
    decode_sfloat,
    encode_float32,
    encode_sfloat,
)
from firmware_bridge.codecs.plx import (
    PLX_CONTINUOUS_UUID,
    PLX_SERVICE_UUID,
    PlxContinuous,
    decode_plx_continuous,
    encode_plx_continuous,
)
from firmware_bridge.codecs.pmd import (
    PMD_CONTROL_POINT_UUID,
    PMD_DATA_UUID,
    PMD_SERVICE_UUID,
    PmdControlResponse,
    PmdEcgFrame,
    PmdError,
    PmdMeasurementType,
    PmdOpCode,
    PmdSettingType,
    build_get_settings,
    build_start_ecg,
    build_stop,
    decode_pmd_data,
    encode_control_response,
    encode_measurement_settings,
    encode_pmd_ecg_frame,
    encode_pmd_features,
    parse_control_response,
    parse_measurement_settings,
    parse_pmd_features,
)
from firmware_bridge.codecs.thermometer import (
    HEALTH_THERMOMETER_SERVICE_UUID,
    TEMPERATURE_MEASUREMENT_UUID,
    TemperatureMeasurement,
    TemperatureType,
    decode_temperature_measurement,
    encode_temperature_measurement,
)

DECODERS: Mapping[str, Callable[[RawValue], object]] = MappingProxyType(
    {
        HEART_RATE_MEASUREMENT_UUID: decode_heart_rate_measurement,
        PMD_DATA_UUID: decode_pmd_data,
        PMD_CONTROL_POINT_UUID: parse_control_response,
        PLX_CONTINUOUS_UUID: decode_plx_continuous,
        TEMPERATURE_MEASUREMENT_UUID: decode_temperature_measurement,
        BATTERY_LEVEL_UUID: decode_battery_level,
    }
)
"""Decoder for the notifications/indications of each characteristic, keyed by lower-case UUID.

The PMD control point entry decodes indications (0xF0 responses); a control point *read*
(feature bitmap) goes through :func:`parse_pmd_features` instead.
"""

__all__ = [
    "BATTERY_LEVEL_UUID",
    "BATTERY_SERVICE_UUID",
    "DECODERS",
    "HEALTH_THERMOMETER_SERVICE_UUID",
    "HEART_RATE_MEASUREMENT_UUID",
    "HEART_RATE_SERVICE_UUID",
    "PLX_CONTINUOUS_UUID",
    "PLX_SERVICE_UUID",
    "PMD_CONTROL_POINT_UUID",
    "PMD_DATA_UUID",
    "PMD_SERVICE_UUID",
    "TEMPERATURE_MEASUREMENT_UUID",
    "HeartRateMeasurement",
    "PlxContinuous",
    "PmdControlResponse",
    "PmdEcgFrame",
    "PmdError",
    "PmdMeasurementType",
    "PmdOpCode",
    "PmdSettingType",
    "RawValue",
    "TemperatureMeasurement",
    "TemperatureType",
    "build_get_settings",
    "build_start_ecg",
    "build_stop",
    "decode_battery_level",
    "decode_float32",
    "decode_heart_rate_measurement",
    "decode_plx_continuous",
    "decode_pmd_data",
    "decode_sfloat",
    "decode_temperature_measurement",
    "encode_battery_level",
    "encode_control_response",
    "encode_float32",
    "encode_heart_rate_measurement",
    "encode_measurement_settings",
    "encode_plx_continuous",
    "encode_pmd_ecg_frame",
    "encode_pmd_features",
    "encode_sfloat",
    "encode_temperature_measurement",
    "parse_control_response",
    "parse_measurement_settings",
    "parse_pmd_features",
    "uuid16",
]
