"""A private ``dbus-daemon`` that stands in for the system bus.

bleak's BlueZ backend talks to ``org.bluez`` on the D-Bus *system* bus, whose address it takes
from ``DBUS_SYSTEM_BUS_ADDRESS``. A private daemon listening on a unix socket in a temporary
folder, with a policy that allows everything, lets the fake BlueZ own ``org.bluez`` without
root and without touching the machine's real bus.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DBUS_DAEMON_CANDIDATES = ("/usr/bin/dbus-daemon", "/bin/dbus-daemon")
"""Where Debian's ``dbus-daemon`` package installs the daemon."""

DAEMON_START_TIMEOUT_S = 10.0
"""The daemon prints its address within ~20 ms; 10 s leaves room for a loaded 2-core CI box."""

DAEMON_STOP_TIMEOUT_S = 5.0
"""SIGTERM grace before SIGKILL."""

_CONFIG_TEMPLATE = """<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>bedside-fake-system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow send_destination="*"/>
  </policy>
  <limit name="max_incoming_bytes">1000000000</limit>
  <limit name="max_outgoing_bytes">1000000000</limit>
  <limit name="max_message_size">1000000000</limit>
  <limit name="max_replies_per_connection">100000</limit>
</busconfig>
"""


def find_dbus_daemon() -> str | None:
    """Return the path of the ``dbus-daemon`` binary (PATH, then Debian's location), or None."""
    found = shutil.which("dbus-daemon")
    if found:
        return found
    for candidate in DBUS_DAEMON_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass
class PrivateBus:
    """A running private ``dbus-daemon``.

    Attributes
    ----------
    address : str
        The bus address to put in ``DBUS_SYSTEM_BUS_ADDRESS``.
    process : subprocess.Popen[bytes]
        The daemon process (stopped by its PID in :meth:`stop`).
    directory : Path
        Temporary folder holding the socket and the config file (removed by :meth:`stop`).
    """

    address: str
    process: subprocess.Popen[bytes]
    directory: Path
    _stopped: bool = field(default=False, repr=False)

    @classmethod
    def start(cls, daemon: str | None = None) -> PrivateBus:
        """Start a daemon on a fresh socket and wait for its address.

        Raises
        ------
        FileNotFoundError
            If no ``dbus-daemon`` binary is installed (Debian package ``dbus-daemon``).
        RuntimeError
            If the daemon exits or prints no address within ``DAEMON_START_TIMEOUT_S``.
        """
        binary = daemon or find_dbus_daemon()
        if binary is None:
            msg = "dbus-daemon not found: install the Debian package 'dbus-daemon'"
            raise FileNotFoundError(msg)
        directory = Path(tempfile.mkdtemp(prefix="bedside-dbus-"))
        config = directory / "bus.conf"
        config.write_text(_CONFIG_TEMPLATE.format(socket=directory / "bus.sock"))
        process = subprocess.Popen(
            [binary, f"--config-file={config}", "--nofork", "--nopidfile", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        assert process.stdout is not None
        deadline = time.monotonic() + DAEMON_START_TIMEOUT_S
        line = b""
        os.set_blocking(process.stdout.fileno(), False)
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            chunk = process.stdout.read()
            if chunk:
                line += chunk
            elif process.poll() is not None:
                break
            else:
                time.sleep(0.005)
        address = line.decode().strip().splitlines()[0] if line.strip() else ""
        bus = cls(address=address, process=process, directory=directory)
        if not address:
            bus.stop()
            msg = f"dbus-daemon printed no address within {DAEMON_START_TIMEOUT_S} s"
            raise RuntimeError(msg)
        return bus

    def stop(self) -> None:
        """Stop the daemon by its PID and remove the temporary folder (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        stop_process(self.process)
        if self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def stop_process(
    process: subprocess.Popen[bytes], timeout_s: float = DAEMON_STOP_TIMEOUT_S
) -> None:
    """Send SIGTERM to one process by its PID, then SIGKILL after ``timeout_s``."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout_s)
