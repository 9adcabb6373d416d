"""The runtime fails loudly and never goes quiet (issue 14, "Fail loudly", "Technical alarms").

- a stage that raises ends ``run_until_done`` with :class:`AgentFailureError` (never a silent
  return, so ``bedside run`` exits non-zero);
- a sensor that never delivers raises ``sensor_disconnected`` (it was: HR ``--``, no alarm);
- an unrecoverable publisher problem raises its technical alarm, then ends the run;
- ``bedside run`` monitors without a broker and keeps its alarms in the outbox.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.config import load_config
from agent.inference.bundle import ModelBundle, load_models
from agent.messages import AlarmCode, AlarmEvent, AlarmLifecycle, AlarmPhase
from agent.publish.broker import free_port
from agent.runtime import AgentFailureError, AgentRuntime, run_until_done
from firmware_bridge.frames import DeviceEvent, DeviceEventKind, Frame
from tests.agent.test_runtime import RecordingSink

SAFETY_TIMEOUT_S = 60.0
"""Safety net only: the tests wait on events, not on time."""


class SilentSource:
    """A configured sensor that connects but never sends ECG (or fails after some frames)."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail

    async def frames(self) -> AsyncIterator[Frame]:
        yield DeviceEvent(
            kind=DeviceEventKind.CONNECTED, t_s=0.0, t0_monotonic_ns=0, detail="strap"
        )
        if self.fail:
            msg = "injected source failure"
            raise RuntimeError(msg)
        await asyncio.Event().wait()

    def describe(self) -> str:
        return "silent"

    def counters(self) -> dict[str, int]:
        return {}


class EventSink(RecordingSink):
    """RecordingSink that wakes a waiter on every alarm."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def publish_alarm(self, event: AlarmEvent) -> None:
        super().publish_alarm(event)
        self.changed.set()

    async def wait_for(self, code: AlarmCode) -> AlarmEvent:
        async with asyncio.timeout(SAFETY_TIMEOUT_S):
            while True:
                for event in self.alarms:
                    if event.condition == code:
                        return event
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture(scope="module")
def models() -> ModelBundle:
    return load_models(load_config().inference)


async def test_sensor_that_never_delivers_raises_sensor_disconnected(models: ModelBundle) -> None:
    cfg = load_config(overrides={"alarms.no_data_s": 2.0})
    sink = EventSink()
    runtime = AgentRuntime(cfg, SilentSource(), sink, models)
    stop = asyncio.Event()
    task = asyncio.create_task(run_until_done(runtime, stop))
    event = await sink.wait_for(AlarmCode.SENSOR_DISCONNECTED)
    stop.set()
    await task
    assert event.kind == "technical"
    assert event.lifecycle == AlarmLifecycle.RAISED
    assert event.phase == AlarmPhase.START
    assert "since start" in event.message
    assert runtime.core is None  # no ECG ever came


async def test_a_failing_stage_ends_the_run_with_an_error(models: ModelBundle) -> None:
    cfg = load_config()
    runtime = AgentRuntime(cfg, SilentSource(fail=True), RecordingSink(), models)
    with pytest.raises(AgentFailureError, match="RuntimeError: injected source failure"):
        await asyncio.wait_for(run_until_done(runtime, asyncio.Event()), SAFETY_TIMEOUT_S)


async def test_fatal_publisher_problem_raises_its_alarm_then_fails(models: ModelBundle) -> None:
    cfg = load_config()
    sink = EventSink()
    runtime = AgentRuntime(cfg, SilentSource(), sink, models)
    task = asyncio.create_task(run_until_done(runtime, asyncio.Event()))
    await asyncio.sleep(0)
    runtime.report_problem(AlarmCode.OUTBOX_FAILED, "outbox x: disk I/O error", fatal=True)
    with pytest.raises(AgentFailureError, match="disk I/O error"):
        await asyncio.wait_for(task, SAFETY_TIMEOUT_S)
    failed = [a for a in sink.alarms if a.condition == AlarmCode.OUTBOX_FAILED]
    assert [a.lifecycle for a in failed] == [AlarmLifecycle.RAISED]
    assert failed[0].priority == "high"


def test_run_without_broker_monitors_and_keeps_alarms(tmp_path: Path, mitdb: Path) -> None:
    """Broker down for the whole run: exit 0, every alarm event waits in the outbox, in order."""
    outbox = tmp_path / "o.sqlite3"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            "run",
            "--source",
            f"replay:{mitdb / '232'}",
            "--speed",
            "200",
            "--stop-after",
            "120",
            "--broker",
            f"mqtt://127.0.0.1:{free_port()}",
            "--outbox",
            str(outbox),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(outbox) as db:
        rows = [bytes(r[0]) for r in db.execute("SELECT payload FROM outbox ORDER BY row_id")]
        active = db.execute("SELECT COUNT(*) FROM active").fetchone()[0]
    events = [AlarmEvent.model_validate_json(r) for r in rows]
    raised = {e.alarm_id for e in events if e.lifecycle == AlarmLifecycle.RAISED}
    cleared = {e.alarm_id for e in events if e.lifecycle == AlarmLifecycle.CLEARED}
    assert raised
    assert raised == cleared  # the end of the replay cleared every alarm
    assert active == 0
