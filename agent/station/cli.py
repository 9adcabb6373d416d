"""``bedside station``: serve the web central station; ``bedside station user-add``: add a user.

Wired into :mod:`agent.cli` by :func:`add_station_parser` and :func:`run_station_command`.
Errors a user can cause end as one line on stderr and exit status 2 (the CLI's convention).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Final

from agent.errors import BedsideError
from agent.station.config import StationConfig, load_station_config

__all__ = [
    "RunningStation",
    "add_station_parser",
    "add_ward_sim_parser",
    "run_station_command",
    "run_ward_sim_command",
    "serve",
    "serve_in_thread",
]

logger = logging.getLogger(__name__)

EXIT_FAILED: Final = 2

BROKER_CHECK_TIMEOUT_S: Final = 5.0
"""A TCP connect to the broker before serving, so that a wrong address is one clear line."""

START_TIMEOUT_S: Final = 60.0
"""Safety net while waiting for a background station to listen (a loaded 2-core box)."""

STOP_TIMEOUT_S: Final = 30.0

PASSWORD_ENV: Final = "BEDSIDE_STATION_PASSWORD"  # noqa: S105 - a variable name
"""Non-interactive password for ``user-add`` (scripts, tests); never on the command line."""


def add_station_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``station`` subcommand to the ``bedside`` parser."""
    p = sub.add_parser("station", help="the web central station (every bed in a browser)")
    p.add_argument("--config", type=Path, help="station TOML file")
    p.add_argument("--db", dest="db_url", help="SQLAlchemy URL (default: SQLite file)")
    p.add_argument("--broker-host", dest="mqtt__host", help="MQTT broker host")
    p.add_argument("--broker-port", dest="mqtt__port", type=int, help="MQTT broker port")
    p.add_argument("--host", dest="http__host", help="HTTP listen address")
    p.add_argument("--port", dest="http__port", type=int, help="HTTP port")
    p.add_argument("--cert", dest="http__cert_file", type=Path, help="HTTPS certificate (PEM)")
    p.add_argument("--key", dest="http__key_file", type=Path, help="HTTPS key (PEM)")
    p.add_argument("--station-id", dest="station_id", help="this station's identity")
    actions = p.add_subparsers(dest="station_action", metavar="ACTION")
    add = actions.add_parser(
        "user-add", help=f"add a user (password from ${PASSWORD_ENV} or asked)"
    )
    add.add_argument("username")
    add.add_argument("--role", default="nurse", choices=("nurse", "viewer", "admin"))
    actions.add_parser("migrate", help="create or upgrade the database schema, then exit")


def _config(args: argparse.Namespace) -> StationConfig:
    keys = (
        "db_url",
        "mqtt__host",
        "mqtt__port",
        "http__host",
        "http__port",
        "http__cert_file",
        "http__key_file",
        "station_id",
    )
    overrides = {k: getattr(args, k, None) for k in keys}
    return load_station_config(args.config, **overrides)


def run_station_command(args: argparse.Namespace) -> int:
    """Run ``bedside station [ACTION]``; return the exit status.

    Raises
    ------
    BedsideError
        Configuration, user or broker errors (the CLI prints them as one line).
    """
    from agent.station.db import Database
    from agent.station.users import add_user

    config = _config(args)
    action = getattr(args, "station_action", None)
    if action is None:
        return serve(config)
    db = Database(config.db_url)
    try:
        _migrate(db)
        if action == "user-add":
            password = os.environ.get(PASSWORD_ENV) or getpass.getpass(
                f"password for {args.username}: "
            )
            add_user(db, args.username, password, args.role)
            print(f"user {args.username} added ({args.role})", file=sys.stderr)  # noqa: T201
    finally:
        db.close()
    return 0


def _migrate(db: object) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from agent.station.db import Database

    assert isinstance(db, Database)  # noqa: S101 - narrowing for mypy
    try:
        db.migrate()
    except SQLAlchemyError as err:
        first = str(err).splitlines()[0]
        msg = f"cannot open the station database: {err.__class__.__name__}: {first}"
        raise BedsideError(msg) from err


def _check_broker(config: StationConfig) -> None:
    import socket

    m = config.mqtt
    try:
        socket.create_connection((m.host, m.port), timeout=BROKER_CHECK_TIMEOUT_S).close()
    except OSError as err:
        msg = f"cannot reach MQTT broker {m.host}:{m.port}: {err.strerror or err}"
        raise BedsideError(msg) from err


def _server(config: StationConfig) -> tuple[Any, Any]:
    import uvicorn

    from agent.station.app import create_app
    from agent.station.db import Database

    http = config.http
    if (http.cert_file is None) != (http.key_file is None):
        msg = "HTTPS needs both --cert and --key"
        raise BedsideError(msg)
    _check_broker(config)
    db = Database(config.db_url)
    _migrate(db)
    app = create_app(config, db)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=http.host,
            port=http.port,
            ssl_certfile=None if http.cert_file is None else str(http.cert_file),
            ssl_keyfile=None if http.key_file is None else str(http.key_file),
            log_level="warning",
            ws_max_size=1 << 20,
        )
    )
    return server, db


def serve(config: StationConfig) -> int:
    """Migrate the database and serve the station until SIGTERM / Ctrl-C.

    Raises
    ------
    BedsideError
        If the database cannot be opened, the certificate is incomplete, or the broker is
        unreachable.
    """
    server, db = _server(config)
    scheme = "https" if config.http.cert_file is not None else "http"
    print(f"bedside station: {scheme}://{config.http.host}:{config.http.port}/", flush=True)  # noqa: T201
    try:
        server.run()
    finally:
        db.close()
    return 0 if server.started else EXIT_FAILED


class RunningStation:
    """A station served by uvicorn in a background thread (demo, tests, benchmark)."""

    def __init__(self, server: Any, db: Any, thread: threading.Thread, scheme: str) -> None:  # noqa: ANN401
        self.server = server
        self.db = db
        self.thread = thread
        sock = server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        self.url = f"{scheme}://{host}:{port}"
        self.core = server.config.app.state.core

    def stop(self) -> None:
        """Ask uvicorn to exit (lifespan shutdown flushes the writer), then join it."""
        self.server.should_exit = True
        self.thread.join(timeout=STOP_TIMEOUT_S)
        self.db.close()


def serve_in_thread(config: StationConfig) -> RunningStation:
    """Start the station in a thread; return once it accepts connections.

    ``http.port`` 0 picks a free port (see :attr:`RunningStation.url`).

    Raises
    ------
    BedsideError
        If it cannot start (see :func:`serve`), or does not listen within
        :data:`START_TIMEOUT_S`.
    """
    server, db = _server(config)
    thread = threading.Thread(target=server.run, name="station-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            db.close()
            msg = "the station did not start (see the log above)"
            raise BedsideError(msg)
        time.sleep(0.02)
    scheme = "https" if config.http.cert_file is not None else "http"
    return RunningStation(server, db, thread, scheme)


def add_ward_sim_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``ward-sim`` subcommand (the simulator lives in :mod:`agent.ward_sim`)."""
    p = sub.add_parser("ward-sim", help="N simulated beds publishing like agents (load, demos)")
    p.add_argument("--beds", type=int, default=8, help="number of beds (default 8)")
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://HOST[:PORT]")
    p.add_argument("--unit", default="ward1", help="unit name (default ward1)")
    p.add_argument("--script", help="scripted events: BED:EVENT@SECONDS,... (no random events)")
    p.add_argument("--no-random", action="store_true", help="no random events")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")


def run_ward_sim_command(args: argparse.Namespace) -> int:
    """Run ``bedside ward-sim``; return the exit status.

    Raises
    ------
    BedsideError
        Bad arguments or an unreachable broker.
    """
    from agent.ward_sim import run_ward_sim

    if args.beds < 1:
        msg = f"--beds must be at least 1, got {args.beds}"
        raise BedsideError(msg)
    return run_ward_sim(
        args.broker,
        beds=args.beds,
        unit=args.unit,
        script=args.script,
        seed=args.seed,
        duration_s=args.duration,
        quiet_events=args.no_random,
    )
