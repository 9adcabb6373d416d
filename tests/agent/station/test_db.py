"""The station database on SQLite and on a real PostgreSQL: migrations, idempotent storage,
search, CSV with units, retention, users and sessions."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect

from agent.messages import (
    AlarmCode,
    AlarmCondition,
    AlarmEvent,
    AlarmEvidence,
    AlarmLifecycle,
    AlarmPriority,
    EcgStrip,
)
from agent.station.db import CSV_COLUMNS, AlarmQuery, Database
from agent.station.users import (
    UserError,
    add_user,
    authenticate,
    end_session,
    session_user,
    start_session,
)


def _event(
    condition: AlarmCode,
    priority: AlarmPriority,
    lifecycle: AlarmLifecycle,
    *,
    alarm_id: str,
    ts: datetime,
) -> AlarmEvent:
    return AlarmEvent(
        device_id="sim",
        ts_utc=ts,
        alarm_id=alarm_id,
        condition=condition,
        priority=priority,
        kind=AlarmCondition.PHYSIOLOGICAL,
        lifecycle=lifecycle,
        onset_s=10.0,
        onset_utc=ts,
        raised_s=14.0,
        message=str(condition),
        evidence=AlarmEvidence(
            rr_ms=[800.0], strip=EcgStrip(fs_hz=130.0, t0_s=8.0, samples_uv=[1, 2, 3]), hr_bpm=75.0
        ),
    )


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    d = Database(db_url)
    d.migrate()
    yield d
    d.close()


def test_migration_creates_every_table(db: Database) -> None:
    names = set(inspect(db.engine).get_table_names())
    assert {"users", "sessions", "alarm_events", "actions", "trends", "alembic_version"} <= names
    db.migrate()  # a second upgrade is a no-op


def test_events_are_stored_once_and_searchable(db: Database) -> None:
    t0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    a1, a2 = uuid.uuid4().hex, uuid.uuid4().hex
    e1 = _event(AlarmCode.ASYSTOLE, AlarmPriority.HIGH, AlarmLifecycle.RAISED, alarm_id=a1, ts=t0)
    e2 = _event(
        AlarmCode.AFIB,
        AlarmPriority.MEDIUM,
        AlarmLifecycle.RAISED,
        alarm_id=a2,
        ts=t0 + timedelta(minutes=5),
    )
    items = [
        ("w1", "bed01", e1, e1.model_dump_json().encode(), t0),
        ("w1", "bed02", e2, e2.model_dump_json().encode(), t0),
    ]
    assert db.store_alarm_events(items) == 2
    assert db.store_alarm_events(items[:1]) == 0  # a re-send is not stored twice
    assert db.count_alarm_events() == 2
    assert [r.alarm_id for r in db.search(AlarmQuery())] == [a2, a1]  # newest first
    assert [r.alarm_id for r in db.search(AlarmQuery(priority="high"))] == [a1]
    assert [r.alarm_id for r in db.search(AlarmQuery(bed="bed02"))] == [a2]
    assert [r.alarm_id for r in db.search(AlarmQuery(condition="asystole"))] == [a1]
    since = AlarmQuery(since_utc=t0 + timedelta(minutes=1))
    assert [r.alarm_id for r in db.search(since)] == [a2]
    row = db.search(AlarmQuery(condition="asystole"))[0]
    assert row.strip is not None
    assert row.strip["samples_uv"] == [1, 2, 3]
    assert row.hr_bpm == 75.0
    rows = list(csv.DictReader(io.StringIO(db.history_csv(AlarmQuery()))))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert "onset_s" in CSV_COLUMNS
    assert "hr_bpm" in CSV_COLUMNS
    assert [r["condition"] for r in rows] == ["afib", "asystole"]
    assert rows[1]["priority"] == "high"
    assert float(rows[1]["onset_s"]) == 10.0


def test_retention_drops_old_strips_and_trends(db: Database) -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    old = now - timedelta(days=40)
    ev = _event(
        AlarmCode.PAUSE, AlarmPriority.MEDIUM, AlarmLifecycle.RAISED, alarm_id="a" * 32, ts=old
    )
    db.store_alarm_events([("w1", "bed01", ev, ev.model_dump_json().encode(), old)])
    db.store_trends(
        [
            {
                "unit": "w1",
                "bed": "bed01",
                "ts_utc": old,
                "hr_bpm": 70.0,
                "spo2_pct": 97.0,
                "respiration_rate_per_min": 16.0,
                "temperature_c": 36.8,
                "news2_total": 0,
            },
            {
                "unit": "w1",
                "bed": "bed01",
                "ts_utc": now,
                "hr_bpm": 71.0,
                "spo2_pct": 96.0,
                "respiration_rate_per_min": 16.0,
                "temperature_c": 36.8,
                "news2_total": 1,
            },
        ]
    )
    assert db.purge(strip_days=30, trend_days=30, now=now) == 2
    row = db.search(AlarmQuery())[0]
    assert row.strip is None  # the strip is gone, the event stays
    assert row.condition == "pause"
    assert [t.hr_bpm for t in db.trends("w1", "bed01", now - timedelta(days=100))] == [71.0]


def test_users_hash_passwords_and_sessions_expire(db: Database) -> None:
    add_user(db, "alice", "correct horse", "nurse")
    add_user(db, "viewer1", "correct horse", "viewer")
    with pytest.raises(UserError, match="exists"):
        add_user(db, "alice", "another password", "nurse")
    with pytest.raises(UserError, match="at least 8"):
        add_user(db, "bob", "short", "nurse")
    with pytest.raises(UserError, match="role"):
        add_user(db, "bob", "long enough", "root")
    assert authenticate(db, "alice", "wrong password") is None
    assert authenticate(db, "nobody", "correct horse") is None
    alice = authenticate(db, "alice", "correct horse")
    assert alice is not None
    assert alice.can_act
    viewer = authenticate(db, "viewer1", "correct horse")
    assert viewer is not None
    assert not viewer.can_act
    with db.session() as s:
        from sqlalchemy import select

        from agent.station.db import UserRow

        stored = s.scalar(select(UserRow.password_hash).where(UserRow.username == "alice"))
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    token = start_session(db, alice, lifetime_h=1.0)
    assert session_user(db, token) == alice
    assert session_user(db, token + "x") is None
    expired = start_session(db, alice, lifetime_h=-1.0)
    assert session_user(db, expired) is None
    end_session(db, token)
    assert session_user(db, token) is None


def test_an_alarm_reaches_the_history_under_steady_vitals_traffic(db: Database) -> None:
    """The writer gathers for WRITER_BATCH_S from the first row, not until a quiet gap.

    Every bed publishes vitals at 1 Hz (and live ECG while watched), so on a busy ward the
    queue is never quiet for 0.2 s; an alarm must not wait for 500 rows to reach the history.
    Vitals are fed every 10 ms here (an invalid payload: queued, counted, not stored).
    """
    from agent.station.config import RetentionSettings
    from agent.station.ingest import WRITER_BATCH_MAX, DbWriter

    writer = DbWriter(db, RetentionSettings())
    writer.start()
    ts = datetime.now(UTC)
    alarm = _event(
        AlarmCode.ASYSTOLE,
        AlarmPriority.HIGH,
        AlarmLifecycle.RAISED,
        alarm_id=uuid.uuid4().hex,
        ts=ts,
    )
    vitals_topic = "bedside/v1/ward1/bed01/vitals"
    fed = 0
    try:
        for _ in range(20):
            writer.put_message(vitals_topic, b"{}")
        writer.put_message("bedside/v1/ward1/bed01/alarms", alarm.model_dump_json().encode())
        while not db.alarm_events(alarm.alarm_id) and fed < WRITER_BATCH_MAX:
            writer.put_message(vitals_topic, b"{}")
            fed += 1
            time.sleep(0.01)
    finally:
        writer.stop()
    assert db.alarm_events(alarm.alarm_id)
    # written long before a 500-row batch filled (0.2 s is about 20 feeds; 5x margin)
    assert fed < WRITER_BATCH_MAX // 5
