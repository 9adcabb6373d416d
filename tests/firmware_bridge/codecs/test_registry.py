from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import firmware_bridge.codecs as codecs
from firmware_bridge.codecs import DECODERS, RawValue, uuid16
from tests.firmware_bridge.codecs.strategies import REGISTRY_FUZZ, returns_or_frame_error


def test_uuid16() -> None:
    assert uuid16(0x2A37) == "00002a37-0000-1000-8000-00805f9b34fb"
    assert uuid16(0) == "00000000-0000-1000-8000-00805f9b34fb"
    with pytest.raises(ValueError, match="16-bit"):
        uuid16(0x10000)


def test_decoders_table() -> None:
    assert set(DECODERS) == {
        codecs.HEART_RATE_MEASUREMENT_UUID,
        codecs.PMD_DATA_UUID,
        codecs.PMD_CONTROL_POINT_UUID,
        codecs.PLX_CONTINUOUS_UUID,
        codecs.TEMPERATURE_MEASUREMENT_UUID,
        codecs.BATTERY_LEVEL_UUID,
    }
    assert all(key == key.lower() for key in DECODERS)
    assert DECODERS[codecs.BATTERY_LEVEL_UUID](b"\x42") == 66
    with pytest.raises(TypeError):
        DECODERS["x"] = bytes  # type: ignore[index]


def test_public_names_exist() -> None:
    for name in codecs.__all__:
        assert hasattr(codecs, name), name


@pytest.mark.parametrize("uuid", sorted(DECODERS))
@REGISTRY_FUZZ
@given(data=st.binary(max_size=300))
def test_every_registered_decoder_fuzz(uuid: str, data: bytes) -> None:
    decode: Callable[[RawValue], object] = DECODERS[uuid]
    returns_or_frame_error(decode, data)
    returns_or_frame_error(decode, bytearray(data))
