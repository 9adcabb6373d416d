"""The alarm outbox: a SQLite table of messages the broker has not acknowledged yet.

paho keeps unacknowledged QoS 1 messages in memory only, and loses some around reconnects
(STACK.md, "Known field problems"); an alarm must survive a broker outage and a crash of the
agent itself. Each alarm is inserted here *before* it is published and deleted when its PUBACK
arrives, so whatever is still in the table is re-sent, in insertion order, by the next
connection or the next process.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from types import TracebackType

__all__ = ["Outbox"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    row_id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_unix_s REAL NOT NULL DEFAULT (strftime('%s', 'now'))
)
"""

BUSY_TIMEOUT_S = 5.0
"""How long a write waits for another connection's lock (a second process on the same file)."""


class Outbox:
    """A durable FIFO of ``(topic, payload)`` pairs in a SQLite file (WAL mode).

    Safe to use from several threads (one connection, guarded by a lock). Every write is
    committed with ``synchronous=FULL``: once :meth:`add` returns, the row survives a power cut.

    Parameters
    ----------
    path
        SQLite file; created with its table if missing. ``":memory:"`` for a volatile outbox.

    Raises
    ------
    sqlite3.Error
        If the file cannot be opened or is not a SQLite database.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = path
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
        )
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error:
            self._db.close()
            self._db = None
            raise

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            msg = f"outbox {self.path} is closed"
            raise RuntimeError(msg)
        return self._db

    def add(self, topic: str, payload: bytes) -> int:
        """Append a message; return its row id (increasing, never reused)."""
        with self._lock:
            cur = self._conn().execute(
                "INSERT INTO outbox (topic, payload) VALUES (?, ?)", (topic, payload)
            )
            row_id = cur.lastrowid
        if row_id is None:  # pragma: no cover - sqlite always sets it after an INSERT
            msg = "sqlite returned no row id"
            raise RuntimeError(msg)
        return row_id

    def remove(self, row_id: int) -> bool:
        """Delete one row; return whether it existed."""
        with self._lock:
            cur = self._conn().execute("DELETE FROM outbox WHERE row_id = ?", (row_id,))
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

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._conn().execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(count)

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
