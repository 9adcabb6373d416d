"""Station test fixtures: a real PostgreSQL (Debian's server on a free port), the database URL
parametrized over SQLite and PostgreSQL, and a running station with simulated beds.

PostgreSQL refuses to run as root, so the server runs as the ``postgres`` user (``runuser``)
in a private data directory; it is stopped with ``pg_ctl stop`` at the end of the session.
Skipped with a reason when the binaries are absent (``apt-get install postgresql``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.publish.broker import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _pg_cmd(*args: str) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return list(args)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server for the session; yields its base URL (no database name)."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL 15 not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="bedside-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    log = root / "pg.log"
    subprocess.run(
        _pg_cmd(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "bedside"),
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _pg_cmd(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log), "-w", "start"),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://bedside@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _pg_cmd(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def _new_pg_db(base: str) -> str:
    import psycopg

    name = f"t_{uuid.uuid4().hex[:10]}"
    dsn = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: an SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'station.sqlite3'}"
    base: str = request.getfixturevalue("pg_server")
    return _new_pg_db(base)
