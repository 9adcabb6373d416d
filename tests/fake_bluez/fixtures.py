"""pytest plugin: a private system bus with a fake BlueZ and simulated wearables.

Register with ``pytest_plugins = ["tests.fake_bluez.fixtures"]`` (tests/conftest.py).

Fixture
-------
``fake_bluez``
    A factory: ``fake_bluez(DeviceSpec(...), ...)`` starts a private ``dbus-daemon`` and the
    fake BlueZ in a subprocess (``python -m tests.fake_bluez``: bleak in the test process talks
    to a real, separate D-Bus peer), points ``DBUS_SYSTEM_BUS_ADDRESS`` at it (monkeypatch)
    and returns a :class:`FakeBluezHandle` whose ``control`` commands the fake. Everything is
    stopped by PID at teardown. Skips when ``dbus-daemon`` is not installed (Debian package
    ``dbus-daemon``).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fake_bluez.bus import PrivateBus, find_dbus_daemon, stop_process
from tests.fake_bluez.control import FakeBluezControl
from tests.fake_bluez.devices import DeviceSpec, specs_to_json

__all__ = ["DeviceSpec", "FakeBluezHandle", "fake_bluez"]

REPO_ROOT = Path(__file__).resolve().parents[2]

FAKE_START_TIMEOUT_S = 30.0
"""Python start-up, numpy/wfdb imports and reading a record take ~1-2 s; 30 s covers a loaded
2-core CI machine."""


@dataclass
class FakeBluezHandle:
    """A running fake BlueZ.

    Attributes
    ----------
    bus_address : str
        The private system bus (already in ``DBUS_SYSTEM_BUS_ADDRESS``).
    specs : list[DeviceSpec]
        The simulated devices.
    control : FakeBluezControl
        Client of the fake's control interface (drop, silence, malformed frames, ...).
    log_path : Path
        The fake's stderr (its log), for diagnosing a failing test.
    """

    bus_address: str
    specs: list[DeviceSpec]
    control: FakeBluezControl
    log_path: Path
    bus: PrivateBus = field(repr=False)
    process: subprocess.Popen[bytes] = field(repr=False)

    def stop(self) -> None:
        """Stop the fake, then the bus, by PID (idempotent)."""
        stop_process(self.process)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.bus.stop()

    def log_tail(self, n_lines: int = 40) -> str:
        """The last lines of the fake's log."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n_lines:])


def _wait_ready(process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    buffer = b""
    fd = process.stdout.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                return False
            buffer += chunk
            if b"READY\n" in buffer:
                return True
        elif process.poll() is not None:
            return False
    return False


@pytest.fixture
async def fake_bluez(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[Callable[..., FakeBluezHandle]]:
    """Factory fixture starting a fake BlueZ with the given :class:`DeviceSpec` s."""
    if find_dbus_daemon() is None:
        pytest.skip("dbus-daemon not installed (Debian package 'dbus-daemon')")
    started: list[FakeBluezHandle] = []

    def start(*specs: DeviceSpec) -> FakeBluezHandle:
        bus = PrivateBus.start()
        log_path = tmp_path / f"fake_bluez_{len(started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.fake_bluez",
                    "--bus-address",
                    bus.address,
                    "--specs-json",
                    specs_to_json(list(specs)),
                ],
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            )
        handle = FakeBluezHandle(
            bus_address=bus.address,
            specs=list(specs),
            control=FakeBluezControl(bus.address),
            log_path=log_path,
            bus=bus,
            process=process,
        )
        started.append(handle)
        if not _wait_ready(process, FAKE_START_TIMEOUT_S):
            tail = handle.log_tail()
            handle.stop()
            pytest.fail(f"fake BlueZ did not start:\n{tail}")
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)
        return handle

    yield start
    for handle in reversed(started):
        await handle.control.close()
        handle.stop()
