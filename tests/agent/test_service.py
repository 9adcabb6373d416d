"""systemd integration: sd_notify to a socket stub, the progress watchdog, the units themselves.

The notify socket is a real ``AF_UNIX`` datagram socket bound by the test (what systemd
listens on); the agent is the real ``bedside run`` (subprocess) or the real runtime
(in process), against a real mosquitto where it publishes.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from agent.config import load_config
from agent.inference.bundle import load_models
from agent.messages import AlarmEvent, VitalsMessage
from agent.runtime import AgentRuntime
from agent.service import PipelineWatchdog, StreamTimeLimit, SystemdNotifier
from firmware_bridge.frames import DeviceEvent, DeviceEventKind, EcgChunk, RrIntervals
from firmware_bridge.transports.simulate import Segment, SimulatedSource
from tests.fixtures_mqtt import MosquittoBroker

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
SAFETY_TIMEOUT_S = 120.0  # a safety net only: every wait below ends on an event


class NotifyStub:
    """A datagram socket standing in for systemd's notify socket; records every message."""

    def __init__(self) -> None:
        # AF_UNIX paths are limited to 108 bytes: pytest's tmp_path can be longer
        self._dir = Path(tempfile.mkdtemp(prefix="sdn-"))
        self.path = self._dir / "notify"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.path))
        self._sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._recv, daemon=True)
        self._thread.start()

    def _recv(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            with self._cond:
                for line in data.decode().splitlines():
                    self.messages.append((time.monotonic(), line))
                self._cond.notify_all()

    def count(self, message: str) -> int:
        with self._cond:
            return sum(m == message for _, m in self.messages)

    def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + SAFETY_TIMEOUT_S
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    msg = f"no {what} within {SAFETY_TIMEOUT_S} s; got {self.messages}"
                    raise TimeoutError(msg)
                self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture
def notify_stub() -> Iterator[NotifyStub]:
    stub = NotifyStub()
    yield stub
    stub.close()


class RecordingSink:
    def __init__(self) -> None:
        self.alarms: list[AlarmEvent] = []

    def publish_alarm(self, event: AlarmEvent) -> None:
        self.alarms.append(event)

    def publish_vitals(self, msg: VitalsMessage) -> None:
        pass

    def publish_status(self, counters: dict[str, int]) -> None:
        pass


def test_notifier_is_a_no_op_without_notify_socket() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.enabled
    assert notifier.watchdog_period_s is None
    assert notifier.notify("READY=1") is False


def test_notifier_reads_the_watchdog_period(notify_stub: NotifyStub) -> None:
    env = {"NOTIFY_SOCKET": str(notify_stub.path), "WATCHDOG_USEC": "30000000"}
    notifier = SystemdNotifier(env)
    assert notifier.watchdog_period_s == 30.0
    assert notifier.notify("READY=1")
    notify_stub.wait_for(lambda: notify_stub.count("READY=1") == 1, "READY=1")
    # a watchdog meant for another process (WATCHDOG_PID) is not ours
    other = SystemdNotifier({**env, "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.watchdog_period_s is None


def test_notify_to_a_vanished_socket_is_reported_not_raised(tmp_path: Path) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert notifier.notify("WATCHDOG=1") is False


async def test_watchdog_pings_only_while_the_pipeline_progresses(notify_stub: NotifyStub) -> None:
    """Healthy: WATCHDOG=1. Driver lock held (the core cannot step while frames keep coming):
    no WATCHDOG=1 at all. Lock released: pings resume."""
    cfg = load_config(
        None, {"inference.beats": False, "inference.af": False, "inference.vf": False}
    )
    source = SimulatedSource(fs_hz=250.0, speed=4.0, script=(Segment(600.0, 70.0),), loop=False)
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(notify_stub.path)})
    # wired as agent/cli.py wires it; building the core (the first step) is not what is
    # tested here, so it gets the production bound
    watchdog = PipelineWatchdog(notifier, stall_s=1.0)
    runtime = AgentRuntime(
        cfg,
        watchdog.watch(source),
        RecordingSink(),
        load_models(cfg.inference),
        on_output=watchdog.note_step,
    )
    loop = asyncio.get_running_loop()

    async def wait(predicate: Callable[[], bool], what: str) -> None:
        await loop.run_in_executor(None, notify_stub.wait_for, predicate, what)

    run = asyncio.create_task(runtime.run())
    pinger = asyncio.create_task(watchdog.run(0.2))
    try:
        await wait(lambda: watchdog.steps >= 4 and notify_stub.count("WATCHDOG=1") >= 3, "pings")
        assert watchdog.stalls == 0

        async with runtime.driver.lock:  # the pipeline cannot step; the source goes on
            frames_at_stall = runtime.stats.frames_in
            await wait(lambda: watchdog.stalls >= 5, "five stalled checks")
            pings_while_stalled = notify_stub.count("WATCHDOG=1")
            await wait(lambda: watchdog.stalls >= 10, "ten stalled checks")
            assert runtime.stats.frames_in > frames_at_stall  # frames really were waiting
            assert notify_stub.count("WATCHDOG=1") == pings_while_stalled  # not one ping

        await wait(lambda: notify_stub.count("WATCHDOG=1") > pings_while_stalled, "resumed")
    finally:
        pinger.cancel()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run


def test_watchdog_stays_healthy_while_the_source_is_silent() -> None:
    """A read frame that was stepped, then silence: idle, not stalled (a wearable out of range
    is a technical alarm, not a hung agent). A frame read and never stepped: stalled. The
    watchdog's clock is the test's, so a loaded machine cannot move a bound."""
    now_ns = [0]
    watchdog = PipelineWatchdog(
        SystemdNotifier({}), stall_s=0.05, first_step_stall_s=0.2, clock_ns=lambda: now_ns[0]
    )

    def advance(s: float) -> None:
        now_ns[0] += int(s * 1e9)

    chunk = EcgChunk(
        samples_uv=np.zeros(10, dtype=np.float32),
        fs_hz=250.0,
        first_sample_idx=0,
        t0_monotonic_ns=0,
        t0_utc=datetime.now(UTC),
    )
    advance(0.01)
    watchdog.note_read(chunk)  # the first step is slow (imports): a longer bound applies
    advance(0.1)
    assert watchdog.healthy()  # 0.11 s waiting: over stall_s, under first_step_stall_s
    advance(0.15)
    assert not watchdog.healthy()  # but not unbounded
    watchdog.note_step(None, 0)
    advance(0.1)
    assert watchdog.healthy()  # nothing waits: idle
    rr = RrIntervals(rr_ms=(800.0,), t_s=1.0, t0_monotonic_ns=0)
    watchdog.note_read(rr)  # a waveform stream ignores RR notifications: nothing waits
    advance(0.1)
    assert watchdog.healthy()
    advance(0.01)
    watchdog.note_read(chunk)  # waits, and the last step is older than stall_s
    assert not watchdog.healthy()
    assert not watchdog.check_and_ping()
    assert watchdog.stalls == 1
    watchdog.note_step(None, 0)  # the step comes: healthy again at once
    assert watchdog.check_and_ping()


async def test_stream_time_limit_ends_on_stream_time() -> None:
    source = SimulatedSource(fs_hz=250.0, speed=None, script=(Segment(60.0, 70.0),), loop=False)
    limited = StreamTimeLimit(source, 5.0)
    chunks = []
    ends = []
    async for frame in limited.frames():
        if isinstance(frame, EcgChunk):
            chunks.append(frame)
        elif isinstance(frame, DeviceEvent) and frame.kind is DeviceEventKind.END_OF_STREAM:
            ends.append(frame)
    assert sum(len(c.samples_uv) for c in chunks) == 5 * 250
    assert [e.t_s for e in ends] == [5.0]
    assert limited.describe().endswith("for 5s")
    with pytest.raises(ValueError, match="limit_s"):
        StreamTimeLimit(source, 0.0)


def test_bedside_run_under_a_notify_socket(
    notify_stub: NotifyStub, mqtt_broker: MosquittoBroker, tmp_path: Path
) -> None:
    """The real command: READY=1, then WATCHDOG=1 while it monitors, STOPPING=1 on SIGTERM;
    every log line carries the bed."""
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(notify_stub.path),
        "WATCHDOG_USEC": "1000000",  # pings every 0.5 s
        "JOURNAL_STREAM": "8:1234",  # as under systemd: journal-style lines
        "BEDSIDE_MQTT__STATE_DIR": str(tmp_path / "state"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--broker", mqtt_broker.url, "--bed", "w9/b42"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        notify_stub.wait_for(lambda: notify_stub.count("READY=1") == 1, "READY=1")
        notify_stub.wait_for(lambda: notify_stub.count("WATCHDOG=1") >= 3, "WATCHDOG=1 x3")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=SAFETY_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == 0, stderr
    order = [m for _, m in notify_stub.messages if m != "WATCHDOG=1"]
    assert order == ["READY=1", "STOPPING=1"]
    ready_at = next(t for t, m in notify_stub.messages if m == "READY=1")
    assert all(t >= ready_at for t, m in notify_stub.messages if m == "WATCHDOG=1")
    lines = [line for line in stderr.splitlines() if line.strip()]
    logged = [line for line in lines if line.startswith("<")]
    assert len(logged) >= 3, lines  # start, models, publisher
    assert all(re.match(r"<[0-7]>w9/b42 \S+: ", line) for line in logged), logged
    # the one line not from Python's logging: TFLite's C++ runtime writes it to stderr itself
    assert all("TensorFlow Lite" in line for line in lines if line not in logged), lines


def _verifiable_units(tmp_path: Path) -> list[Path]:
    """The units, ExecStart pointed at this checkout's ``bedside`` (verify checks it exists)."""
    bedside = Path(sys.executable).parent / "bedside"
    if not bedside.exists():
        pytest.skip(f"{bedside} not installed (pip install -e .)")
    out = []
    for name, as_name in (
        ("bedside-agent@.service", "bedside-agent@bed01.service"),
        ("bedside-station.service", "bedside-station.service"),
    ):
        text = (DEPLOY / name).read_text().replace("/opt/bedside/venv/bin/bedside", str(bedside))
        path = tmp_path / as_name
        path.write_text(text)
        out.append(path)
    return out


@pytest.mark.parametrize("broken", [False, True])
def test_units_pass_systemd_analyze_verify(tmp_path: Path, *, broken: bool) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (apt-get install systemd)")
    units = _verifiable_units(tmp_path)
    if broken:  # the check can fail: a typo in a directive is reported
        units[0].write_text(units[0].read_text().replace("WatchdogSec=60", "WatchdogSec=sixty"))
    result = subprocess.run(
        [analyze, "verify", *map(str, units)],
        capture_output=True,
        text=True,
        check=False,
        timeout=SAFETY_TIMEOUT_S,
    )
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "bedside" in line  # verify also comments on the host's own units
    ]
    if broken:
        assert any("sixty" in line for line in complaints), complaints
    else:
        assert result.returncode == 0, result.stderr
        assert complaints == []


def test_agent_unit_is_notify_with_watchdog_and_hardening() -> None:
    unit = (DEPLOY / "bedside-agent@.service").read_text()
    lines = {line.strip() for line in unit.splitlines()}
    for wanted in (
        "Type=notify",
        "WatchdogSec=60",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "User=bedside",
        "SupplementaryGroups=bluetooth",
        "StateDirectory=bedside",
        "ConfigurationDirectory=bedside",
        "EnvironmentFile=/etc/bedside/beds/%i.env",
    ):
        assert wanted in lines, wanted


@pytest.mark.parametrize("dpkg_arch", ["armhf", "armel", "i386"])
def test_install_refuses_32_bit_in_one_line(tmp_path: Path, dpkg_arch: str) -> None:
    """deploy/install.sh stops before touching anything on a 32-bit userland."""
    if os.geteuid() != 0:
        pytest.skip("install.sh checks for root before the architecture")
    shim = tmp_path / "bin"
    shim.mkdir()
    dpkg = shim / "dpkg"
    dpkg.write_text(f"#!/bin/sh\necho {dpkg_arch}\n")
    dpkg.chmod(0o755)
    result = subprocess.run(
        ["bash", str(DEPLOY / "install.sh")],
        env={**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=False,
        timeout=SAFETY_TIMEOUT_S,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert dpkg_arch in lines[0]
    assert "64-bit" in lines[0]
    assert "armv7l" in lines[0]
