"""``bedside demo``: a private mosquitto, the agent on the simulated patient, a nurse station.

Nothing to configure: the broker listens on a free loopback port, the agent runs the embedded
NeuroKit2 simulation (a tachycardia run at ~20 s, a 5 s asystole at ~52 s, then it loops) and
the nurse station shows its alarms as they are raised, within the first minute.
"""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Final

from agent.errors import BedsideError

logger = logging.getLogger(__name__)

MOSQUITTO_PATHS: Final = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
BROKER_START_TIMEOUT_S: Final = 10.0
DEMO_BED: Final = "demo/bed1"


class BrokerStartError(BedsideError):
    """mosquitto is missing or did not start."""


def find_mosquitto() -> str:
    """Return the path of the ``mosquitto`` binary.

    Raises
    ------
    BrokerStartError
        If it is not installed (``apt-get install mosquitto``).
    """
    found = shutil.which("mosquitto")
    if found:
        return found
    for path in MOSQUITTO_PATHS:
        if Path(path).exists():
            return path
    msg = "mosquitto is not installed (sudo apt-get install -y mosquitto), or pass --broker"
    raise BrokerStartError(msg)


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"mosquitto exited with status {proc.returncode}"
            raise BrokerStartError(msg)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    msg = f"mosquitto did not listen on port {port} within {timeout_s:.0f} s"
    raise BrokerStartError(msg)


def stop_process(proc: subprocess.Popen[bytes], *, timeout_s: float) -> None:
    """SIGTERM ``proc``, wait up to ``timeout_s``, then SIGKILL it."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def private_broker(workdir: Path) -> Iterator[str]:
    """Run mosquitto on a free loopback port for the duration of the block; yield its URL.

    Raises
    ------
    BrokerStartError
        If mosquitto is missing or does not start.
    """
    binary = find_mosquitto()
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n",
        encoding="utf-8",
    )
    log = (workdir / "mosquitto.log").open("wb")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_port(port, proc, BROKER_START_TIMEOUT_S)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        stop_process(proc, timeout_s=5)
        log.close()


def run_demo(*, duration_s: float | None, plain: bool, broker: str | None) -> int:
    """Start broker (unless given), agent and nurse station; return the exit status.

    Raises
    ------
    BrokerStartError
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
            stop_process(agent, timeout_s=10)
        if agent.returncode not in (0, -15):
            agent_log.flush()
            tail = (workdir / "agent.log").read_text(encoding="utf-8", errors="replace")[-2000:]
            logger.error("the agent exited with status %s:\n%s", agent.returncode, tail)
            return 1
        return code
