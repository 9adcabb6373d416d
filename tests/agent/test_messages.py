"""Contract tests: every published payload's JSON Schema is pinned by a committed snapshot.

If a test here fails because you changed a payload on purpose, bump ``SCHEMA_VERSION`` when the
change is not backward compatible, then regenerate the snapshot:
``.venv/bin/bedside schema --out tests/agent/schemas/payloads.json``.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.messages import (
    AlarmAck,
    AlarmCode,
    AlarmCondition,
    AlarmEvent,
    AlarmLifecycle,
    AlarmPriority,
    StatusMessage,
    decode_payload,
    json_schemas,
    parse_topic,
    topic,
)

SNAPSHOT = Path(__file__).parent / "schemas" / "payloads.json"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_schemas_match_snapshot() -> None:
    assert json_schemas() == json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def test_every_payload_has_schema_version_device_and_time() -> None:
    for name, schema in json_schemas().items():
        props = schema["properties"]
        assert isinstance(props, dict)
        # observations come *from* a nurse station, which has no device_id
        required = {"schema_version", "ts_utc"} | (
            {"device_id"} if name != "observations" else set()
        )
        assert required <= set(props), name
        assert schema.get("additionalProperties") is False, name


def test_topics() -> None:
    assert topic("icu", "bed-3", "alarms") == "bedside/v1/icu/bed-3/alarms"
    assert parse_topic("bedside/v1/icu/bed-3/alarms/ack") == ("icu", "bed-3", "alarms/ack")
    assert parse_topic("other/v1/x") is None
    for bad in ("", "a/b", "+", "#", "x" * 33):
        with pytest.raises(ValueError, match="unit must be"):
            topic(bad, "b", "status")


def test_round_trip_and_strictness() -> None:
    ev = AlarmEvent(
        device_id="d",
        ts_utc=NOW,
        alarm_id="abc",
        condition=AlarmCode.ASYSTOLE,
        priority=AlarmPriority.HIGH,
        kind=AlarmCondition.PHYSIOLOGICAL,
        lifecycle=AlarmLifecycle.RAISED,
        onset_s=12.5,
        onset_utc=NOW,
        raised_s=13.0,
        message="Asystole",
    )
    assert decode_payload("alarms", ev.model_dump_json().encode()) == ev
    bad = json.loads(ev.model_dump_json())
    bad["surprise"] = 1
    assert decode_payload("alarms", json.dumps(bad).encode()) is None
    assert decode_payload("alarms", b"not json") is None
    assert decode_payload("nope", b"{}") is None
    with pytest.raises(ValidationError):
        StatusMessage(device_id="d", ts_utc=NOW, state="sleeping")  # type: ignore[arg-type]
    ack = AlarmAck(device_id="ns", ts_utc=NOW, alarm_id="abc", station_id="ns")
    assert AlarmAck.model_validate_json(ack.model_dump_json()) == ack
