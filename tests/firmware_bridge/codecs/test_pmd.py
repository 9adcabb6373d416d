from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.codecs.pmd import (
    PMD_CONTROL_POINT_UUID,
    PMD_DATA_UUID,
    PMD_FEATURE_BITS,
    PMD_SERVICE_UUID,
    PMD_SETTING_VALUE_BYTES,
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
from firmware_bridge.errors import FrameDecodeError
from tests.firmware_bridge.codecs.strategies import FUZZ, ROUND_TRIP, returns_or_frame_error

# A real Polar H10 ECG notification (gatttool, phdiethelm/h10_ecg exploration/gatttool.md, the
# sixth notification: its table reads sample 0 = 117, sample 1 = 115, sample 14 = -4).
H10_ECG_NOTIFICATION = bytes.fromhex(
    "00 aa 9a 93 51 31 49 52 08 00 75 00 00 73 00 00 63 00 00 5e 00 00 77 00 00 8c 00 00 8c 00 "
    "00 85 00 00 7c 00 00 83 00 00 98 00 00 9c 00 00 8e 00 00 57 00 00 fc ff ff f5 ff ff 30 00 "
    "00 37 00 00 27 00 00 04 00 00 d0 ff ff 7a 00 00 0a 03 00 9f 06 00 52 08 00 eb 05 00 4b 01 "
    "00 c7 fe ff 26 ff ff 92 ff ff 3f ff ff 4f ff ff 90 ff ff 90 ff ff 94 ff ff b2 ff ff d5 ff "
    "ff e5 ff ff e3 ff ff f5 ff ff 09 00 00 0d 00 00 19 00 00 19 00 00 04 00 00 fc ff ff 0b 00 "
    "00 2b 00 00 30 00 00 1d 00 00 12 00 00 24 00 00 42 00 00 45 00 00 22 00 00 0b 00 00 f7 ff "
    "ff b7 ff ff 9d ff ff c7 ff ff d0 ff ff c5 ff ff e3 ff ff 00 00 00 0b 00 00 24 00 00 42 00 "
    "00 45 00 00 32 00 00 2b 00 00 32 00 00 34 00 00 27 00 00"
)


def test_uuids() -> None:
    assert PMD_SERVICE_UUID == "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
    assert PMD_CONTROL_POINT_UUID == "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
    assert PMD_DATA_UUID == "fb005c82-02e7-f387-1cad-8acd2d8df0c8"


def test_real_h10_ecg_frame() -> None:
    assert len(H10_ECG_NOTIFICATION) == 229  # MTU 232 - 3: 10 header + 73 samples * 3
    frame = decode_pmd_data(H10_ECG_NOTIFICATION)
    assert frame.sensor_timestamp_ns == 0x085249315193_9AAA
    assert len(frame.samples_uv) == 73
    assert frame.samples_uv[0] == 117
    assert frame.samples_uv[1] == 115
    assert frame.samples_uv[14] == -4
    assert max(frame.samples_uv) == 0x0852  # the R wave of this frame: 2130 µV
    assert min(frame.samples_uv) == -0x0139  # 0xfec7 = -313 µV
    # The encoder reproduces the device's bytes exactly.
    assert encode_pmd_ecg_frame(frame.sensor_timestamp_ns, frame.samples_uv) == H10_ECG_NOTIFICATION


def test_sdk_type0_vector() -> None:
    # Polar BLE SDK EcgDataTest "process raw ecg data type 0".
    raw = bytes.fromhex("000094357700000000000280ff028000")
    assert decode_pmd_data(raw) == PmdEcgFrame(2_000_000_000, (-32766, 32770))


@pytest.mark.parametrize(
    ("hexdata", "match"),
    [
        ("", "too short for measurement type"),
        ("000094357700", "too short for timestamp"),
        ("000094357700000000", "too short for frame type"),
        ("00009435770000000000", "no sample"),
        ("000094357700000000000280", "multiple of 3"),
        ("02009435770000000001010203040506", r"measurement type 2 \(ACC\)"),
        ("3e009435770000000000010203", r"measurement type 62 \(unknown\)"),
        ("000094357700000000018002ff028000", "frame type 1"),
        ("000094357700000000800280ff", "compressed"),
    ],
)
def test_bad_data_frames(hexdata: str, match: str) -> None:
    with pytest.raises(FrameDecodeError, match=match):
        decode_pmd_data(bytes.fromhex(hexdata))


def test_measurement_type_upper_bits_are_masked_as_in_the_sdk() -> None:
    raw = bytes.fromhex("40009435770000000000010000")
    assert decode_pmd_data(raw).samples_uv == (1,)


def test_ecg_encoder_validates() -> None:
    with pytest.raises(ValueError, match="int24"):
        encode_pmd_ecg_frame(0, [1 << 23])
    with pytest.raises(ValueError, match="int24"):
        encode_pmd_ecg_frame(0, [-(1 << 23) - 1])
    with pytest.raises(ValueError, match="at least one"):
        encode_pmd_ecg_frame(0, [])
    with pytest.raises(ValueError, match="timestamp"):
        encode_pmd_ecg_frame(-1, [0])
    extremes = encode_pmd_ecg_frame(5, [-(1 << 23), (1 << 23) - 1])
    assert extremes[-6:] == bytes.fromhex("000080ffff7f")


def test_requests() -> None:
    assert build_start_ecg() == bytes.fromhex("02000001820001010e00")  # the H10 capture
    assert build_start_ecg(250, 16) == bytes.fromhex("02000001fa0001011000")
    assert build_get_settings(PmdMeasurementType.ECG) == b"\x01\x00"
    assert build_get_settings(PmdMeasurementType.ACC) == b"\x01\x02"
    assert build_stop(PmdMeasurementType.ECG) == b"\x03\x00"
    with pytest.raises(ValueError, match="sample_rate_hz"):
        build_start_ecg(70000)


@pytest.mark.parametrize(
    ("hexdata", "expected"),
    [
        # H10 captures (phdiethelm/h10_ecg).
        (
            "f0010000000001820001010e00",
            PmdControlResponse(
                PmdOpCode.GET_MEASUREMENT_SETTINGS,
                PmdMeasurementType.ECG,
                PmdError.SUCCESS,
                False,
                bytes.fromhex("0001820001010e00"),
            ),
        ),
        (
            "f00200000000",
            PmdControlResponse(
                PmdOpCode.REQUEST_MEASUREMENT_START,
                PmdMeasurementType.ECG,
                PmdError.SUCCESS,
                False,
                b"\x00",
            ),
        ),
        (
            "f002000500",
            PmdControlResponse(
                PmdOpCode.REQUEST_MEASUREMENT_START,
                PmdMeasurementType.ECG,
                PmdError.INVALID_PARAMETER,
            ),
        ),
        (
            "f000010a",
            PmdControlResponse(PmdOpCode.NULL_ITEM, PmdMeasurementType.PPG, PmdError.INVALID_MTU),
        ),
        # Polar BLE SDK BlePmdClientControlPointResponseTest.
        (
            "f001020000ffffff",
            PmdControlResponse(
                PmdOpCode.GET_MEASUREMENT_SETTINGS,
                PmdMeasurementType.ACC,
                PmdError.SUCCESS,
                False,
                b"\xff\xff\xff",
            ),
        ),
        (
            "f001060700",
            PmdControlResponse(
                PmdOpCode.GET_MEASUREMENT_SETTINGS,
                PmdMeasurementType.MAGNETOMETER,
                PmdError.INVALID_RESOLUTION,
            ),
        ),
        (
            "f00102000100",
            PmdControlResponse(
                PmdOpCode.GET_MEASUREMENT_SETTINGS,
                PmdMeasurementType.ACC,
                PmdError.SUCCESS,
                True,
                b"\x00",
            ),
        ),
    ],
)
def test_control_responses(hexdata: str, expected: PmdControlResponse) -> None:
    response = parse_control_response(bytes.fromhex(hexdata))
    assert response == expected
    assert response.ok is (expected.error is PmdError.SUCCESS)


def test_h10_settings_reply_round_trip() -> None:
    reply = bytes.fromhex("f0010000000001820001010e00")
    response = parse_control_response(reply)
    settings = parse_measurement_settings(response.parameters)
    assert settings == {PmdSettingType.SAMPLE_RATE: (130,), PmdSettingType.RESOLUTION: (14,)}
    encoded = encode_control_response(
        PmdOpCode.GET_MEASUREMENT_SETTINGS,
        PmdMeasurementType.ECG,
        parameters=encode_measurement_settings(settings),
    )
    assert encoded == reply


def test_h10_start_and_error_replies_encode_exactly() -> None:
    start = encode_control_response(
        PmdOpCode.REQUEST_MEASUREMENT_START, PmdMeasurementType.ECG, parameters=b"\x00"
    )
    assert start == bytes.fromhex("f00200000000")
    assert parse_measurement_settings(parse_control_response(start).parameters) == {}
    error = encode_control_response(
        PmdOpCode.REQUEST_MEASUREMENT_START, PmdMeasurementType.ECG, PmdError.INVALID_PARAMETER
    )
    assert error == bytes.fromhex("f002000500")


@pytest.mark.parametrize(
    ("hexdata", "match"),
    [
        ("", "too short"),
        ("f00100", "too short for error code"),
        ("0f0500", "not a control point response"),
        ("f0200000", "unknown op code 32"),
        ("f0013f00", "unknown measurement type 63"),
        ("f0010040", "unknown error code 64"),
    ],
)
def test_bad_control_responses(hexdata: str, match: str) -> None:
    with pytest.raises(FrameDecodeError, match=match):
        parse_control_response(bytes.fromhex(hexdata))


@pytest.mark.parametrize(
    ("hexdata", "match"),
    [
        ("0901820000", "unknown setting type 9"),
        ("0000", "no value"),
        ("000182", "too short"),
        ("000182000001fa00", "repeated"),
    ],
)
def test_bad_settings(hexdata: str, match: str) -> None:
    with pytest.raises(FrameDecodeError, match=match):
        parse_measurement_settings(bytes.fromhex(hexdata))


def test_settings_widths_follow_the_sdk() -> None:
    tlv = bytes.fromhex("00021900320002010800030110270000040103")
    assert parse_measurement_settings(tlv) == {
        PmdSettingType.SAMPLE_RATE: (25, 50),
        PmdSettingType.RANGE: (8,),
        PmdSettingType.RANGE_MILLIUNIT: (10000,),
        PmdSettingType.CHANNELS: (3,),
    }


def test_features() -> None:
    h10 = bytes.fromhex("0f05" + "00" * 15)  # the H10's 17-octet feature read
    assert parse_pmd_features(h10) == {PmdMeasurementType.ECG, PmdMeasurementType.ACC}
    assert encode_pmd_features([PmdMeasurementType.ECG, PmdMeasurementType.ACC]) == h10
    assert parse_pmd_features(b"\x0f\x10") == frozenset()  # bit 4 reserved
    with pytest.raises(FrameDecodeError, match="not a feature response"):
        parse_pmd_features(b"\xf0\x05")
    with pytest.raises(FrameDecodeError, match="too short"):
        parse_pmd_features(b"\x0f")
    with pytest.raises(ValueError, match="OFFLINE_TEMP"):
        encode_pmd_features([PmdMeasurementType.OFFLINE_TEMP])


def test_enum_values_match_the_sdk() -> None:
    assert [e.value for e in PmdError] == list(range(15))
    assert PmdError.DEVICE_IN_CHARGER.value == 13
    assert PmdError.INVALID_MTU.value == 10
    assert (PmdOpCode.GET_MEASUREMENT_SETTINGS, PmdOpCode.STOP_MEASUREMENT) == (1, 3)
    assert (PmdMeasurementType.PPI, PmdMeasurementType.GYRO, PmdMeasurementType.SDK_MODE) == (
        3,
        5,
        9,
    )


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_data(data: bytes) -> None:
    returns_or_frame_error(decode_pmd_data, data)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_data_with_ecg_header(tail: bytes) -> None:
    returns_or_frame_error(decode_pmd_data, bytes(10) + tail)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_control_response(data: bytes) -> None:
    returns_or_frame_error(parse_control_response, data)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_settings_and_features(data: bytes) -> None:
    returns_or_frame_error(parse_measurement_settings, data)
    returns_or_frame_error(parse_pmd_features, data)


@ROUND_TRIP
@given(
    st.integers(0, (1 << 64) - 1),
    st.lists(st.integers(-(1 << 23), (1 << 23) - 1), min_size=1, max_size=73).map(tuple),
)
def test_ecg_round_trip(timestamp_ns: int, samples: tuple[int, ...]) -> None:
    raw = encode_pmd_ecg_frame(timestamp_ns, samples)
    assert len(raw) == 10 + 3 * len(samples)
    assert decode_pmd_data(raw) == PmdEcgFrame(timestamp_ns, samples)


@ROUND_TRIP
@given(
    st.sampled_from(PmdOpCode),
    st.sampled_from(PmdMeasurementType),
    st.sampled_from(PmdError),
    st.booleans(),
    st.binary(max_size=30),
)
def test_control_response_round_trip(
    op: PmdOpCode, mt: PmdMeasurementType, error: PmdError, more: bool, params: bytes
) -> None:
    raw = encode_control_response(op, mt, error, more=more, parameters=params)
    assert parse_control_response(raw) == PmdControlResponse(op, mt, error, more, params)


@st.composite
def settings_maps(draw: st.DrawFn) -> dict[PmdSettingType, tuple[int, ...]]:
    types = draw(st.lists(st.sampled_from(PmdSettingType), unique=True, min_size=1))
    return {
        t: tuple(
            draw(
                st.lists(
                    st.integers(0, (1 << (8 * PMD_SETTING_VALUE_BYTES[t])) - 1),
                    min_size=1,
                    max_size=5,
                )
            )
        )
        for t in types
    }


@ROUND_TRIP
@given(settings_maps())
def test_settings_round_trip(settings: dict[PmdSettingType, tuple[int, ...]]) -> None:
    assert parse_measurement_settings(encode_measurement_settings(settings)) == settings


@ROUND_TRIP
@given(st.frozensets(st.sampled_from(sorted(PMD_FEATURE_BITS))))
def test_features_round_trip(types: frozenset[PmdMeasurementType]) -> None:
    assert parse_pmd_features(encode_pmd_features(types)) == types
