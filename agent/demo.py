"""``bedside demo``: a private mosquitto, the agent on the simulated patient, a nurse station.

Nothing to configure: the broker listens on a free loopback port, the agent runs the embedded
NeuroKit2 simulation (a tachycardia run at ~20 s, a 5 s asystole at ~52 s, then it loops) and
the nurse station shows its alarms as they are raised, within the first minute. The broker
comes from :mod:`agent.publish.broker`, the launcher the tests use too.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Final

from agent.publish.broker import private_broker, stop_process

__all__ = [
    "DEMO_BED",
    "run_demo",
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

    def _terminate(signum: int, frame: object) -> None:
        # SIGTERM / SIGHUP (terminal closed) unwind like Ctrl-C, so the broker and the agent
        # started below are stopped by the ExitStack instead of being orphaned.
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    with ExitStack() as stack:
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
