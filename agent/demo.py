"""``bedside demo``: a private mosquitto, simulated beds and the web station.

With ``--terminal``: the agent on one simulated patient and the terminal nurse station.

The web demo (:func:`run_web_demo`) starts ``bedside ward-sim`` beds in-process, the web station
on ``http://127.0.0.1:PORT/`` with a throw-away SQLite database and one demo user, and prints
the URL and the demo login.


Nothing to configure: the broker listens on a free loopback port, the agent runs the embedded
NeuroKit2 simulation (a tachycardia run at ~20 s, a 5 s asystole at ~52 s, then it loops) and
the nurse station shows its alarms as they are raised, within the first minute. The broker
comes from :mod:`agent.publish.broker`, the launcher the tests use too.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Final

from agent.publish.broker import private_broker, stop_process
from agent.termination import termination_unwinds

__all__ = [
    "DEMO_BED",
    "DEMO_PASSWORD",
    "DEMO_USER",
    "run_demo",
    "run_web_demo",
]

logger = logging.getLogger(__name__)

DEMO_BED: Final = "demo/bed1"

AGENT_STOP_TIMEOUT_S: Final = 10.0
"""SIGTERM grace for the demo agent before SIGKILL: it flushes its outbox and says offline."""


def run_demo(*, duration_s: float | None, plain: bool, broker: str | None) -> int:
    """Start broker (unless given), agent and nurse station; return the exit status.

    Raises
    ------
    agent.publish.broker.BrokerStartError
        If mosquitto is needed but missing.
    BrokerUnreachableError
        If the nurse station cannot reach the broker.
    """
    from agent.nurse_station import run_nurse_station

    # SIGTERM / SIGHUP (terminal closed) unwind like Ctrl-C, so the broker and the agent
    # started below are stopped by the ExitStack instead of being orphaned.
    with termination_unwinds(), ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bedside-demo-")))
        url = broker or stack.enter_context(private_broker(workdir))
        agent_log = stack.enter_context((workdir / "agent.log").open("wb"))
        cmd = [
            sys.executable,
            "-m",
            "agent",
            "run",
            "--source",
            "simulate",
            "--broker",
            url,
            "--bed",
            DEMO_BED,
            "--outbox",
            str(workdir / "outbox.sqlite3"),
        ]
        agent = subprocess.Popen(cmd, stdout=agent_log, stderr=subprocess.STDOUT)
        try:
            code = run_nurse_station(
                url, station_id="demo-station", duration_s=duration_s, plain=plain
            )
        finally:
            stop_process(agent, timeout_s=AGENT_STOP_TIMEOUT_S)
        if agent.returncode not in (0, -15):
            agent_log.flush()
            tail = (workdir / "agent.log").read_text(encoding="utf-8", errors="replace")[-2000:]
            logger.error("the agent exited with status %s:\n%s", agent.returncode, tail)
            return 1
        return code


DEMO_USER: Final = "demo"
DEMO_PASSWORD: Final = "demo-password"  # noqa: S105 - a throw-away demo account, printed
DEMO_SCRIPT: Final = "bed01:tachycardia@15,bed02:asystole@25,bed03:af@35,bed04:desaturation@45"
"""Events in the first minute of the demo, so the ward shows every colour soon."""


def run_web_demo(*, duration_s: float | None, broker: str | None, beds: int, port: int) -> int:
    """Start a broker (unless given), ``beds`` simulated beds and the web station.

    Prints ``bedside demo: open http://127.0.0.1:PORT/ (user demo, password ...)``; runs until
    SIGTERM / Ctrl-C or ``duration_s``.

    Raises
    ------
    agent.publish.broker.BrokerStartError
        If mosquitto is needed but missing.
    BedsideError
        If the station cannot start (port in use, broker unreachable).
    """
    import threading

    from agent.station.cli import serve_in_thread
    from agent.station.config import load_station_config
    from agent.station.db import Database
    from agent.station.users import add_user
    from agent.ward_sim import WardSim, parse_script

    with termination_unwinds(), ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bedside-demo-")))
        url = broker or stack.enter_context(private_broker(workdir))
        host, _, port_text = url.removeprefix("mqtt://").partition(":")
        db_url = f"sqlite:///{workdir / 'station.sqlite3'}"
        config = load_station_config(
            None,
            db_url=db_url,
            mqtt__host=host,
            mqtt__port=int(port_text or 1883),
            http__port=port,
            station_id="demo-station",
        )
        db = Database(db_url)
        db.migrate()
        add_user(db, DEMO_USER, DEMO_PASSWORD, "nurse")
        db.close()
        stopped = threading.Event()
        server = serve_in_thread(config)
        stack.callback(server.stop)
        sim = WardSim(
            url, beds=beds, unit="demo", script=parse_script(DEMO_SCRIPT) if beds >= 4 else None
        )
        sim.start()
        stack.callback(sim.stop)
        print(  # noqa: T201 - the demo's one line for the user
            f"bedside demo: open {server.url}/ (user {DEMO_USER}, password {DEMO_PASSWORD});"
            f" {beds} simulated beds; Ctrl-C to stop",
            flush=True,
        )
        with suppress(KeyboardInterrupt):
            stopped.wait(duration_s)
    return 0
