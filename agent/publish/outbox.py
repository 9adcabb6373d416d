"""The alarm outbox: a SQLite file of unacknowledged messages and of the bed's active alarms.

paho keeps unacknowledged QoS 1 messages in memory only, and loses some around reconnects
(STACK.md, "Known field problems"); an alarm must survive a broker outage and a crash of the
agent itself. Each alarm is inserted here *before* it is published and deleted when its PUBACK
(with a success reason code) arrives, so whatever is still in the table is re-sent, in insertion
order, by the next connection or the next process.

The same transaction keeps the ``active`` table: the latest event of every alarm raised and not
yet cleared. It is what the retained ``alarms/active`` message is built from, and what a
restarted agent reconciles (alarms active when the previous process died are ended).

One process per file: :class:`Outbox` holds an exclusive ``flock`` on ``PATH.lock`` while open,
so a second agent configured for the same bed fails at start with :class:`OutboxInUseError`
instead of sharing (and double-sending) the outbox.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Final

from agent.errors import BedsideError

__all__ = ["Outbox", "OutboxBusyError", "OutboxError", "OutboxInUseError"]

logger = logging.getLogger(__name__)

_SCHEMA: Final = (
    """
CREATE TABLE IF NOT EXISTS outbox (
    row_id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_unix_s REAL NOT NULL DEFAULT (strftime('%s', 'now'))
)
""",
    """
CREATE TABLE IF NOT EXISTS active (
    alarm_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    payload BLOB NOT NULL
)
""",
)

BUSY_TIMEOUT_S: Final = 0.5
"""How long one write waits for another connection's lock. Short: the publisher's writer thread
retries a busy outbox with a backoff (and counts it), off the event loop."""


class OutboxError(BedsideError):
    """The outbox file cannot be opened or written (the message says which file and why)."""


class OutboxBusyError(OutboxError):
    """The outbox is locked by another connection right now (recoverable: retry later)."""


class OutboxInUseError(OutboxError):
    """Another process already holds this outbox (two agents configured for one bed)."""


def _describe(err: sqlite3.Error) -> str:
    text = str(err)
    if "readonly" in text:
        return "the file is read-only"
    if "not a database" in text or "malformed" in text:
        return "the file is not a bedside outbox (not a SQLite database)"
    if "unable to open" in text:
        return "the file cannot be created or opened"
    return text


class Outbox:
    """A durable FIFO of ``(topic, payload)`` pairs plus the active alarms, in SQLite (WAL).

    Safe to use from several threads (one connection, guarded by a lock). Every write is
    committed with ``synchronous=FULL``: once :meth:`add` returns, the row survives a power cut.

    Parameters
    ----------
    path
        SQLite file; created with its folder and tables if missing. ``":memory:"`` for a
        volatile outbox (no lock file).

    Raises
    ------
    OutboxInUseError
        If another process holds the outbox.
    OutboxError
        If the path is a folder, cannot be created, or is not a SQLite database.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._lock_file: IO[str] | None = None
        if isinstance(path, Path):
            if path.is_dir():
                msg = f"outbox {path} is a folder; mqtt.outbox_path must name a file"
                raise OutboxError(msg)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                msg = f"cannot create the outbox folder {path.parent}: {err.strerror}"
                raise OutboxError(msg) from err
            self._lock_file = self._take_lock(path)
        try:
            self._db: sqlite3.Connection | None = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
            )
        except sqlite3.Error as err:
            self._release_lock()
            msg = f"cannot open the outbox {path}: {_describe(err)}"
            raise OutboxError(msg) from err
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            for statement in _SCHEMA:
                self._db.execute(statement)
        except sqlite3.Error as err:
            self._db.close()
            self._db = None
            self._release_lock()
            msg = f"cannot open the outbox {path}: {_describe(err)}"
            raise OutboxError(msg) from err

    @staticmethod
    def _take_lock(path: Path) -> IO[str]:
        lock_path = path.with_name(path.name + ".lock")
        try:
            handle = lock_path.open("a+", encoding="utf-8")
        except OSError as err:
            msg = f"cannot create the outbox lock {lock_path}: {err.strerror}"
            raise OutboxError(msg) from err
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            msg = (
                f"outbox {path} is in use by pid {holder}: is another agent running for this"
                " bed? (give each agent its own bed or mqtt.outbox_path)"
            )
            raise OutboxInUseError(msg) from err
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return handle

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            msg = f"outbox {self.path} is closed"
            raise OutboxError(msg)
        return self._db

    def _write(self, statements: list[tuple[str, tuple[object, ...]]]) -> int | None:
        """Run the statements in one transaction; return the last INSERT's row id."""
        with self._lock:
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                last: int | None = None
                for sql, params in statements:
                    cur = db.execute(sql, params)
                    if sql.startswith("INSERT INTO outbox"):
                        last = cur.lastrowid
                db.execute("COMMIT")
            except sqlite3.OperationalError as err:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                if "locked" in str(err) or "busy" in str(err):
                    msg = f"outbox {self.path} is locked by another connection"
                    raise OutboxBusyError(msg) from err
                msg = f"cannot write the outbox {self.path}: {_describe(err)}"
                raise OutboxError(msg) from err
            except sqlite3.Error as err:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                msg = f"cannot write the outbox {self.path}: {_describe(err)}"
                raise OutboxError(msg) from err
            return last

    def add(
        self,
        topic: str,
        payload: bytes,
        *,
        alarm_id: str | None = None,
        active: bool | None = None,
    ) -> int:
        """Append a message; return its row id (increasing, never reused).

        With ``alarm_id``, the same transaction records the alarm as active (``active=True``:
        ``payload`` is its latest event) or no longer active (``active=False``).

        Raises
        ------
        OutboxBusyError
            If another connection holds the database lock (retry later).
        OutboxError
            If the row cannot be written (read-only file, disk full, file replaced).
        """
        statements: list[tuple[str, tuple[object, ...]]] = []
        if alarm_id is not None and active is not None:
            if active:
                statements.append(
                    (
                        "INSERT INTO active (alarm_id, seq, payload) VALUES (?,"
                        " COALESCE((SELECT MAX(seq) FROM active), 0) + 1, ?)"
                        " ON CONFLICT(alarm_id) DO UPDATE SET payload = excluded.payload",
                        (alarm_id, payload),
                    )
                )
            else:
                statements.append(("DELETE FROM active WHERE alarm_id = ?", (alarm_id,)))
        statements.append(("INSERT INTO outbox (topic, payload) VALUES (?, ?)", (topic, payload)))
        row_id = self._write(statements)
        if row_id is None:  # pragma: no cover - sqlite always sets it after an INSERT
            msg = "sqlite returned no row id"
            raise OutboxError(msg)
        return row_id

    def remove(self, row_id: int) -> bool:
        """Delete one row; return whether it existed.

        Raises
        ------
        OutboxError
            If the database cannot be written.
        """
        with self._lock:
            try:
                cur = self._conn().execute("DELETE FROM outbox WHERE row_id = ?", (row_id,))
            except sqlite3.Error as err:
                msg = f"cannot write the outbox {self.path}: {_describe(err)}"
                raise OutboxError(msg) from err
            return cur.rowcount > 0

    def pending(self) -> list[tuple[int, str, bytes]]:
        """Return every row as ``(row_id, topic, payload)``, oldest first."""
        with self._lock:
            rows = (
                self._conn()
                .execute("SELECT row_id, topic, payload FROM outbox ORDER BY row_id")
                .fetchall()
            )
        return [(int(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    def active(self) -> list[tuple[str, bytes]]:
        """Return the active alarms as ``(alarm_id, latest event payload)``, oldest first."""
        with self._lock:
            rows = (
                self._conn().execute("SELECT alarm_id, payload FROM active ORDER BY seq").fetchall()
            )
        return [(str(r[0]), bytes(r[1])) for r in rows]

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._conn().execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(count)

    def close(self) -> None:
        """Close the database connection and release the lock (idempotent)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            self._release_lock()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
