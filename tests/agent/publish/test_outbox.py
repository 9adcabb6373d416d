from __future__ import annotations

from pathlib import Path

from agent.publish.outbox import Outbox


def test_outbox_fifo_and_remove(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite3") as box:
        a = box.add("t/a", b"1")
        b = box.add("t/b", b"2")
        c = box.add("t/c", b"3")
        assert a < b < c
        assert len(box) == 3
        assert box.remove(b)
        assert not box.remove(b)
        assert box.pending() == [(a, "t/a", b"1"), (c, "t/c", b"3")]


def test_outbox_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "o.sqlite3"
    box = Outbox(path)
    row = box.add("bedside/v1/w/b/alarms", b'{"x": 1}')
    box.close()
    box.close()  # idempotent
    with Outbox(path) as again:
        assert again.pending() == [(row, "bedside/v1/w/b/alarms", b'{"x": 1}')]
        new = again.add("t", b"")
        assert new > row  # ids are never reused


def test_outbox_wal_mode(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "o.sqlite3"
    Outbox(path).close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()
