"""The station's database: alarm history, acknowledgements, observations, trends, users.

SQLAlchemy 2 over SQLite (one ward, the default) or PostgreSQL (a hospital, by URL). The schema
is created and upgraded by Alembic (:func:`migrate`; migrations in ``agent/station/migrations``),
never by ``create_all``, so a deployed database follows the code.

Several station processes may write to one PostgreSQL: every alarm event carries a unique
``event_key`` (the SHA-256 of its payload), and :func:`store_alarm_event` ignores a key already
stored, so an event delivered twice (a re-send after reconnection, or two stations outside one
shared-subscription group) is stored once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from agent.messages import AlarmEvent

__all__ = [
    "CSV_COLUMNS",
    "ActionRow",
    "AlarmEventRow",
    "AlarmQuery",
    "Base",
    "Database",
    "TrendRow",
    "UserRow",
    "event_key",
    "migrate",
]

logger = logging.getLogger(__name__)

MIGRATIONS_DIR: Final = Path(__file__).parent / "migrations"

CSV_COLUMNS: Final = (
    "ts_utc",
    "unit",
    "bed",
    "alarm_id",
    "lifecycle",
    "condition",
    "priority",
    "kind",
    "onset_utc",
    "onset_s",
    "raised_s",
    "cleared_s",
    "hr_bpm",
    "acknowledged",
    "acknowledged_by",
    "message",
)
"""History CSV header: units in the column names (``_s`` seconds of stream time, ``_bpm``)."""

STATION_CONDITIONS: Final = frozenset({"bed_offline"})
"""Conditions the station itself raises (not published by an agent): a bed's last will."""

QUERY_LIMIT_MAX: Final = 10_000
"""Most rows one history query returns (a day of a busy ward is a few hundred events)."""


class Base(DeclarativeBase):
    """Declarative base of the station tables."""


class UserRow(Base):
    """A station user: name, argon2 hash, role (``nurse``, ``viewer`` or ``admin``)."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    created_utc: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SessionRow(Base):
    """A login session; only the SHA-256 of the cookie token is stored."""

    __tablename__ = "sessions"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    expires_utc: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlarmEventRow(Base):
    """One alarm lifecycle event as received (raised, updated, cleared)."""

    __tablename__ = "alarm_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_key: Mapped[str] = mapped_column(String(64), unique=True)
    alarm_id: Mapped[str] = mapped_column(String(64), index=True)
    unit: Mapped[str] = mapped_column(String(32), index=True)
    bed: Mapped[str] = mapped_column(String(32), index=True)
    lifecycle: Mapped[str] = mapped_column(String(16))
    condition: Mapped[str] = mapped_column(String(32), index=True)
    priority: Mapped[str] = mapped_column(String(8), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    ts_utc: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    received_utc: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    onset_utc: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    onset_s: Mapped[float] = mapped_column(Float)
    raised_s: Mapped[float] = mapped_column(Float)
    cleared_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    hr_bpm: Mapped[float | None] = mapped_column(Float, nullable=True)
    acknowledged: Mapped[bool] = mapped_column(Boolean)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    message: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    strip: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ActionRow(Base):
    """Something a station user did: an acknowledgement or observations, and who."""

    __tablename__ = "actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts_utc: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    unit: Mapped[str] = mapped_column(String(32))
    bed: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    username: Mapped[str] = mapped_column(String(64))
    station_id: Mapped[str] = mapped_column(String(64))
    alarm_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class TrendRow(Base):
    """One trend point of one bed (at most one per ``retention.trend_period_s``)."""

    __tablename__ = "trends"
    __table_args__ = (Index("ix_trends_bed_ts", "unit", "bed", "ts_utc"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit: Mapped[str] = mapped_column(String(32))
    bed: Mapped[str] = mapped_column(String(32))
    ts_utc: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    hr_bpm: Mapped[float | None] = mapped_column(Float, nullable=True)
    spo2_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    respiration_rate_per_min: Mapped[float | None] = mapped_column(Float, nullable=True)
    temperature_c: Mapped[float | None] = mapped_column(Float, nullable=True)
    news2_total: Mapped[int | None] = mapped_column(Integer, nullable=True)


def event_key(payload: bytes) -> str:
    """Return the SHA-256 hex digest identifying one received event payload."""
    return hashlib.sha256(payload).hexdigest()


def _alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (Alembic).

    Raises
    ------
    sqlalchemy.exc.OperationalError
        If the database cannot be reached.
    """
    command.upgrade(_alembic_config(url), revision)


def _utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns: they were stored as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AlarmQuery:
    """A history search: every field narrows it; None means any."""

    unit: str | None = None
    bed: str | None = None
    condition: str | None = None
    priority: str | None = None
    since_utc: datetime | None = None
    until_utc: datetime | None = None
    limit: int = 1000


class Database:
    """Sessions on one database (SQLite file or PostgreSQL), thread-safe for short sessions.

    Parameters
    ----------
    url
        SQLAlchemy URL: ``sqlite:///PATH`` or ``postgresql+psycopg://USER@HOST:PORT/DB``.
    """

    def __init__(self, url: str) -> None:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        connect_args: dict[str, object] = {}
        if self.is_sqlite:
            connect_args = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = create_engine(url, connect_args=connect_args, pool_pre_ping=True)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest migration (see :func:`migrate`)."""
        with self.engine.begin() as conn:
            cfg = _alembic_config(self.url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def session(self) -> Session:
        """Return a new ORM session (use it as a context manager)."""
        return self._sessions()

    def close(self) -> None:
        """Dispose of the connection pool."""
        self.engine.dispose()

    # ------------------------------------------------------------------ writes
    def store_alarm_events(
        self, items: Sequence[tuple[str, str, AlarmEvent, bytes, datetime]]
    ) -> int:
        """Store ``(unit, bed, event, raw payload, received_utc)`` items; return rows added.

        An event whose payload was stored before (same :func:`event_key`) is skipped.
        """
        if not items:
            return 0
        rows = [_event_row(*item) for item in items]
        ins = pg_insert if not self.is_sqlite else sqlite_insert
        stmt = (
            ins(AlarmEventRow)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["event_key"])
            .returning(AlarmEventRow.id)
        )
        with self.engine.begin() as conn:
            return len(conn.execute(stmt).all())

    def store_station_events(self, rows: Sequence[dict[str, Any]]) -> int:
        """Store alarm events the station raised itself (a bed offline); return rows added.

        Each row has every :class:`AlarmEventRow` column but ``id``; its ``event_key`` must be
        derived from the alarm id and lifecycle only, so that several stations recording the
        same will store it once.
        """
        if not rows:
            return 0
        ins = pg_insert if not self.is_sqlite else sqlite_insert
        stmt = (
            ins(AlarmEventRow)
            .values(list(rows))
            .on_conflict_do_nothing(index_elements=["event_key"])
            .returning(AlarmEventRow.id)
        )
        with self.engine.begin() as conn:
            return len(conn.execute(stmt).all())

    def open_station_alarm(self, unit: str, bed: str, condition: str) -> str | None:
        """Return the id of the bed's station-raised alarm of ``condition`` not yet cleared."""
        stmt = (
            select(AlarmEventRow.alarm_id, AlarmEventRow.lifecycle)
            .where(
                AlarmEventRow.unit == unit,
                AlarmEventRow.bed == bed,
                AlarmEventRow.condition == condition,
            )
            .order_by(AlarmEventRow.ts_utc.desc(), AlarmEventRow.id.desc())
            .limit(1)
        )
        with self.session() as s:
            row = s.execute(stmt).first()
        return None if row is None or row.lifecycle == "cleared" else str(row.alarm_id)

    def store_trends(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert trend rows (keys: the :class:`TrendRow` columns but ``id``)."""
        if rows:
            with self.session() as s, s.begin():
                s.add_all(TrendRow(**row) for row in rows)

    def store_action(
        self,
        *,
        unit: str,
        bed: str,
        action: str,
        username: str,
        station_id: str,
        alarm_id: str | None,
        detail: dict[str, Any],
    ) -> None:
        """Record an acknowledgement or observations entered by ``username``."""
        with self.session() as s, s.begin():
            s.add(
                ActionRow(
                    ts_utc=datetime.now(UTC),
                    unit=unit,
                    bed=bed,
                    action=action,
                    username=username,
                    station_id=station_id,
                    alarm_id=alarm_id,
                    detail=detail,
                )
            )

    def purge(self, *, strip_days: float, trend_days: float, now: datetime | None = None) -> int:
        """Apply retention: drop ECG strips older than ``strip_days``, trends past ``trend_days``.

        Returns
        -------
        int
            Strips dropped plus trend rows deleted.
        """
        now = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            strips = conn.execute(
                update(AlarmEventRow)
                .where(
                    AlarmEventRow.ts_utc < now - timedelta(days=strip_days),
                    AlarmEventRow.strip.is_not(None),
                )
                .values(strip=None)
            ).rowcount
            trends = conn.execute(
                delete(TrendRow).where(TrendRow.ts_utc < now - timedelta(days=trend_days))
            ).rowcount
        return max(strips, 0) + max(trends, 0)

    # ------------------------------------------------------------------ reads
    def count_alarm_events(self, *, agent_only: bool = True) -> int:
        """Return the number of alarm events stored.

        By default only those agents published, not the station's own
        :data:`STATION_CONDITIONS` (the benchmark compares it with what the broker carried).
        """
        stmt = select(func.count()).select_from(AlarmEventRow)
        if agent_only:
            stmt = stmt.where(AlarmEventRow.condition.not_in(STATION_CONDITIONS))
        with self.session() as s:
            return int(s.scalar(stmt) or 0)

    def search(self, q: AlarmQuery) -> list[AlarmEventRow]:
        """Return stored alarm events matching ``q``, newest first."""
        stmt = select(AlarmEventRow)
        for column, value in (
            (AlarmEventRow.unit, q.unit),
            (AlarmEventRow.bed, q.bed),
            (AlarmEventRow.condition, q.condition),
            (AlarmEventRow.priority, q.priority),
        ):
            if value:
                stmt = stmt.where(column == value)
        if q.since_utc is not None:
            stmt = stmt.where(AlarmEventRow.ts_utc >= q.since_utc)
        if q.until_utc is not None:
            stmt = stmt.where(AlarmEventRow.ts_utc <= q.until_utc)
        limit = max(1, min(q.limit, QUERY_LIMIT_MAX))
        stmt = stmt.order_by(AlarmEventRow.ts_utc.desc(), AlarmEventRow.id.desc()).limit(limit)
        with self.session() as s:
            rows = list(s.scalars(stmt))
        for row in rows:
            row.ts_utc = _utc(row.ts_utc)
            row.onset_utc = _utc(row.onset_utc)
        return rows

    def alarm_events(self, alarm_id: str) -> list[AlarmEventRow]:
        """Return every stored event of one alarm, oldest first."""
        stmt = (
            select(AlarmEventRow)
            .where(AlarmEventRow.alarm_id == alarm_id)
            .order_by(AlarmEventRow.ts_utc, AlarmEventRow.id)
        )
        with self.session() as s:
            return list(s.scalars(stmt))

    def actions(self, alarm_id: str | None = None, limit: int = 1000) -> list[ActionRow]:
        """Return acknowledgements and observations, newest first (one alarm's if given)."""
        stmt = select(ActionRow)
        if alarm_id is not None:
            stmt = stmt.where(ActionRow.alarm_id == alarm_id)
        stmt = stmt.order_by(ActionRow.ts_utc.desc(), ActionRow.id.desc()).limit(limit)
        with self.session() as s:
            return list(s.scalars(stmt))

    def trends(self, unit: str, bed: str, since_utc: datetime) -> list[TrendRow]:
        """Return one bed's trend rows since ``since_utc``, oldest first."""
        stmt = (
            select(TrendRow)
            .where(TrendRow.unit == unit, TrendRow.bed == bed, TrendRow.ts_utc >= since_utc)
            .order_by(TrendRow.ts_utc)
        )
        with self.session() as s:
            rows = list(s.scalars(stmt))
        for row in rows:
            row.ts_utc = _utc(row.ts_utc)
        return rows

    def history_csv(self, q: AlarmQuery) -> str:
        """Return the events matching ``q`` as CSV text with :data:`CSV_COLUMNS`."""
        return "".join(iter_csv(self.search(q)))


def iter_csv(rows: Sequence[AlarmEventRow]) -> Iterator[str]:
    """Yield the CSV header then one line per event (ISO 8601 UTC times)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(
            [
                _utc(r.ts_utc).isoformat(),
                r.unit,
                r.bed,
                r.alarm_id,
                r.lifecycle,
                r.condition,
                r.priority,
                r.kind,
                _utc(r.onset_utc).isoformat(),
                f"{r.onset_s:.3f}",
                f"{r.raised_s:.3f}",
                "" if r.cleared_s is None else f"{r.cleared_s:.3f}",
                "" if r.hr_bpm is None else f"{r.hr_bpm:.1f}",
                int(r.acknowledged),
                r.acknowledged_by or "",
                r.message,
            ]
        )
    yield buf.getvalue()


def _sqlite_pragmas(dbapi_conn: Any, _record: object) -> None:  # noqa: ANN401 - DB-API object
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the ingest writer
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _event_row(
    unit: str, bed: str, ev: AlarmEvent, payload: bytes, received_utc: datetime
) -> dict[str, Any]:
    data = json.loads(payload)
    evidence = data.get("evidence") or {}
    strip = evidence.pop("strip", None) if isinstance(evidence, dict) else None
    return {
        "event_key": event_key(payload),
        "alarm_id": ev.alarm_id,
        "unit": unit,
        "bed": bed,
        "lifecycle": str(ev.lifecycle),
        "condition": str(ev.condition),
        "priority": str(ev.priority),
        "kind": str(ev.kind),
        "ts_utc": ev.ts_utc.astimezone(UTC),
        "received_utc": received_utc,
        "onset_utc": ev.onset_utc.astimezone(UTC),
        "onset_s": ev.onset_s,
        "raised_s": ev.raised_s,
        "cleared_s": ev.cleared_s,
        "hr_bpm": ev.evidence.hr_bpm,
        "acknowledged": ev.acknowledged,
        "acknowledged_by": _str_or_none(getattr(ev, "acknowledged_by", None)),
        "message": ev.message,
        "payload": data,
        "strip": strip,
    }


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)[:64]
