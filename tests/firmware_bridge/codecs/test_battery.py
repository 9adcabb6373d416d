from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.codecs.battery import (
    BATTERY_LEVEL_UUID,
    BATTERY_SERVICE_UUID,
    decode_battery_level,
    encode_battery_level,
)
from firmware_bridge.errors import FrameDecodeError
from tests.firmware_bridge.codecs.strategies import FUZZ, returns_or_frame_error


def test_uuids() -> None:
    assert BATTERY_SERVICE_UUID == "0000180f-0000-1000-8000-00805f9b34fb"
    assert BATTERY_LEVEL_UUID == "00002a19-0000-1000-8000-00805f9b34fb"


@pytest.mark.parametrize(("raw", "pct"), [(b"\x00", 0), (b"\x37", 55), (b"\x64", 100)])
def test_levels(raw: bytes, pct: int) -> None:
    assert decode_battery_level(raw) == pct
    assert encode_battery_level(pct) == raw


@pytest.mark.parametrize(
    ("raw", "match"),
    [(b"", "too short"), (b"\x65", "reserved"), (b"\xff", "reserved"), (b"\x50\x00", "trailing")],
)
def test_bad_values(raw: bytes, match: str) -> None:
    with pytest.raises(FrameDecodeError, match=match):
        decode_battery_level(raw)


@pytest.mark.parametrize("pct", [-1, 101])
def test_encoder_rejects_out_of_range(pct: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        encode_battery_level(pct)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_returns_or_raises_frame_error(data: bytes) -> None:
    returns_or_frame_error(decode_battery_level, data)


def test_round_trip_every_level() -> None:
    assert [decode_battery_level(encode_battery_level(p)) for p in range(101)] == list(range(101))
