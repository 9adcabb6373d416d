"""Periodic jobs ride on the stream's steps (agent.cadence): a nudge runs a due job, a job not
due waits, a silent stream still gets its job from the timer, and the live runtime's vitals,
watchdog and status run on its steps."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent import runtime as runtime_module
from agent.cadence import Cadence
from agent.config import load_config
from agent.inference.bundle import load_models
from agent.runtime import AgentRuntime
from firmware_bridge.transports.replay import WfdbReplaySource
from tests.agent.test_runtime import RecordingSink

HOUR_S = 3600.0


async def _settle() -> None:
    for _ in range(5):  # let every ready callback of the loop run
        await asyncio.sleep(0)


async def test_a_nudge_runs_a_due_job_and_keeps_the_grid() -> None:
    cadence = Cadence(HOUR_S, early_s=HOUR_S)  # due within the hour: any nudge is in time
    job = asyncio.create_task(cadence.wait())
    await _settle()
    first_due = cadence.due_s
    assert first_due is not None
    cadence.nudge()
    await asyncio.wait_for(job, timeout=HOUR_S)
    assert (cadence.runs_nudged, cadence.runs_timed) == (1, 0)
    assert cadence.due_s == first_due + HOUR_S  # one period after the previous due time


async def test_a_job_not_due_ignores_the_nudge_until_kicked() -> None:
    cadence = Cadence(HOUR_S, early_s=0.0)
    job = asyncio.create_task(cadence.wait())
    await _settle()
    cadence.nudge()
    await _settle()
    assert not job.done()
    cadence.kick()
    await asyncio.wait_for(job, timeout=HOUR_S)
    assert (cadence.runs_nudged, cadence.runs_timed) == (1, 0)


async def test_without_steps_the_timer_runs_the_job() -> None:
    cadence = Cadence(0.01, grace_s=0.0)
    for _ in range(3):
        await asyncio.wait_for(cadence.wait(), timeout=HOUR_S)
    assert (cadence.runs_nudged, cadence.runs_timed) == (0, 3)


def test_a_cadence_needs_a_positive_period() -> None:
    with pytest.raises(ValueError, match="period_s must be positive"):
        Cadence(0.0)
    with pytest.raises(ValueError, match="must not be negative"):
        Cadence(1.0, grace_s=-1.0)


async def test_the_runtime_runs_vitals_watchdog_and_status_on_its_steps(
    mitdb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream replayed as fast as it goes (a step every few ms): every periodic job rides
    on the steps; a timer run would need a stall of half a period without a single step."""
    monkeypatch.setattr(runtime_module, "WATCHDOG_PERIOD_S", 0.1)
    monkeypatch.setattr(runtime_module, "STATUS_PERIOD_S", 0.1)
    source = WfdbReplaySource(mitdb / "100", speed=None, start_s=0.0, stop_s=300.0)
    sink = RecordingSink()
    cfg = load_config(None, {"mqtt.vitals_period_s": 0.1})
    runtime = AgentRuntime(cfg, source, sink, load_models(cfg.inference), backpressure=True)
    await runtime.run()
    jobs = {
        "vitals": runtime._vitals_due,
        "watchdog": runtime._watchdog_due,
        "status": runtime._status_due,
    }
    # every published vitals message came from a run of the cadence; the last run may be
    # cancelled by the end of the stream between its wake-up and its publish (seen once in CI)
    runs = jobs["vitals"].runs_nudged + jobs["vitals"].runs_timed
    assert runs - 1 <= len(sink.vitals) <= runs
    for name, job in jobs.items():
        assert job.runs_nudged >= 1, name
        assert job.runs_nudged >= job.runs_timed, name


def test_with_joined_steps_a_job_waits_a_whole_step_for_one(mitdb: Path) -> None:
    """``dsp.step_s`` 1 s: a step comes once a second, so the jobs' timers wait that long."""
    models = load_models(load_config().inference)
    for step_s, grace_s in ((0.0, 0.5), (1.0, 1.0)):
        cfg = load_config(None, {"dsp.powerline_hz": 50, "dsp.step_s": step_s})
        source = WfdbReplaySource(mitdb / "100", speed=None)
        runtime = AgentRuntime(cfg, source, RecordingSink(), models)
        assert runtime._vitals_due.grace_s == grace_s
        assert runtime._watchdog_due.grace_s == grace_s
        assert runtime._status_due.grace_s == 5.0  # half its 10 s period either way
