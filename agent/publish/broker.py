"""A private mosquitto broker on a free loopback port, for ``bedside demo``, benchmarks and tests.

:class:`MosquittoBroker` runs one ``mosquitto`` process on ``127.0.0.1`` (anonymous access,
loopback only), waits until it accepts TCP connections, and can be stopped and started again on
the same port to simulate an outage; with ``persistence=True`` sessions, queued QoS 1 messages
and retained messages survive such a restart. :func:`private_broker` is the context-manager
form that yields the broker URL. Both are used by :mod:`agent.demo`, ``tools/bench.py`` and the
test fixtures (``tests/fixtures_mqtt.py``), so the agent and its tests start brokers one way.

It starts a process and nothing more: no paho import (the broker is an external program).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

from agent.errors import BedsideError

__all__ = [
    "BROKER_START_TIMEOUT_S",
    "BROKER_STOP_TIMEOUT_S",
    "BrokerStartError",
    "MosquittoBroker",
    "find_mosquitto",
    "free_port",
    "mosquitto_path",
    "private_broker",
    "stop_process",
]

logger = logging.getLogger(__name__)

MOSQUITTO_PATHS: Final = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
"""Where Debian's ``mosquitto`` package and a source install put the binary (not on a
non-root user's PATH on Debian)."""

BROKER_HOST: Final = "127.0.0.1"
"""The broker listens on loopback only: it accepts anonymous clients."""

BROKER_START_TIMEOUT_S: Final = 10.0
"""A loopback mosquitto listens within ~50 ms; 10 s leaves room for a loaded 2-core box."""

BROKER_STOP_TIMEOUT_S: Final = 5.0
"""SIGTERM grace before SIGKILL (mosquitto saves its persistence file on SIGTERM)."""

_POLL_CONNECT_TIMEOUT_S: Final = 0.5
_POLL_PAUSE_S: Final = 0.02


class BrokerStartError(BedsideError):
    """mosquitto is missing or did not start (the message says which, with its log)."""


def mosquitto_path() -> str | None:
    """Return the path of the ``mosquitto`` executable (PATH, then /usr/sbin), or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in MOSQUITTO_PATHS:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def find_mosquitto() -> str:
    """Return the path of the ``mosquitto`` executable.

    Raises
    ------
    BrokerStartError
        If it is not installed (``apt-get install mosquitto``).
    """
    found = mosquitto_path()
    if found is None:
        msg = "mosquitto is not installed (sudo apt-get install -y mosquitto), or pass --broker"
        raise BrokerStartError(msg)
    return found


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((BROKER_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process(proc: subprocess.Popen[bytes], *, timeout_s: float) -> None:
    """SIGTERM ``proc``, wait up to ``timeout_s`` seconds, then SIGKILL it; reap it either way."""
    if proc.poll() is not None:
        proc.wait()
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class MosquittoBroker:
    """A mosquitto process on ``127.0.0.1:port`` that can be stopped and restarted.

    The port is chosen when the object is made and kept across :meth:`stop` / :meth:`start`.
    Also a context manager: ``with MosquittoBroker(workdir) as broker:`` starts it and stops
    it on exit.

    Parameters
    ----------
    workdir : Path
        Existing folder for ``mosquitto.conf``, ``mosquitto.log`` and (with ``persistence``)
        the database.
    binary : str | None, optional
        Path of the mosquitto executable; default :func:`find_mosquitto`.
    persistence : bool, optional
        Keep sessions, queued messages and retained messages across :meth:`stop` /
        :meth:`start` (default False).
    conf_text : str | None, optional
        A complete mosquitto configuration to run instead of the loopback, anonymous one
        (e.g. the TLS site configuration written by ``bedside provision``); ``port`` must
        then be the port its listener uses.
    port : int | None, optional
        The port to wait on; default a free one (written into the generated configuration).

    Raises
    ------
    BrokerStartError
        If ``binary`` is None and mosquitto is not installed.
    """

    host: Final = BROKER_HOST

    def __init__(
        self,
        workdir: Path,
        *,
        binary: str | None = None,
        persistence: bool = False,
        conf_text: str | None = None,
        port: int | None = None,
    ) -> None:
        self.binary = binary if binary is not None else find_mosquitto()
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self.conf_path = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        if conf_text is not None:
            lines = [conf_text]
        else:
            lines = [
                f"listener {self.port} {self.host}",
                "allow_anonymous true",
                f"persistence {'true' if persistence else 'false'}",
            ]
            if persistence:
                lines.append(f"persistence_location {workdir}/")
                lines.append("autosave_interval 0")
        if os.geteuid() == 0:
            # As root, mosquitto 2 switches to the user "mosquitto", which cannot write workdir.
            lines.append("user root")
        self.conf_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """Broker URL, ``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the mosquitto process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start mosquitto (again, on the same port) and wait until it accepts connections.

        Raises
        ------
        BrokerStartError
            If it exits or does not listen within :data:`BROKER_START_TIMEOUT_S`; the message
            carries its log.
        """
        if self.running:
            return
        self._log = self.log_path.open("ab")
        proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf_path)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self._proc = proc
        deadline = time.monotonic() + BROKER_START_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(
                    (self.host, self.port), timeout=_POLL_CONNECT_TIMEOUT_S
                ):
                    logger.debug("mosquitto listening on %s", self.url)
                    return
            except OSError:
                time.sleep(_POLL_PAUSE_S)
        status = proc.poll()
        self.stop()
        log = self.log_path.read_text(encoding="utf-8", errors="replace")
        what = (
            f"exited with status {status}"
            if status is not None
            else f"did not listen within {BROKER_START_TIMEOUT_S:g} s"
        )
        msg = f"mosquitto {what} on port {self.port}; log:\n{log}"
        raise BrokerStartError(msg)

    def stop(self) -> None:
        """Stop mosquitto by its PID (SIGTERM, then SIGKILL) and wait for it to exit."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, timeout_s=BROKER_STOP_TIMEOUT_S)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def private_broker(workdir: Path, *, persistence: bool = False) -> Iterator[str]:
    """Run mosquitto on a free loopback port for the duration of the block; yield its URL.

    Parameters
    ----------
    workdir : Path
        Existing folder for the broker's config and log (``mosquitto.conf``,
        ``mosquitto.log``).
    persistence : bool, optional
        See :class:`MosquittoBroker`.

    Yields
    ------
    str
        ``mqtt://127.0.0.1:PORT``.

    Raises
    ------
    BrokerStartError
        If mosquitto is missing or does not start.
    """
    with MosquittoBroker(workdir, persistence=persistence) as broker:
        yield broker.url
