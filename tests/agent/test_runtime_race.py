"""The runtime never reads the pipeline's state while a worker thread is changing it.

A stress loop: a whole record replayed as fast as the CPU allows (the pipeline works in a
worker thread nearly all the time) while vitals are read at the fastest allowed period. Every
vitals read is checked against a flag that the processing call holds; one read inside a
processing call is a race ("dictionary changed size during iteration", or a torn state
published to the nurse station).
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pytest

from agent.config import load_config
from agent.core.monitor import MonitorCore, StepOutput
from agent.inference.bundle import load_models
from agent.messages import VitalsMessage
from agent.runtime import AgentRuntime
from firmware_bridge.frames import Frame
from firmware_bridge.transports.replay import WfdbReplaySource
from tests.agent.test_runtime import RecordingSink


async def test_vitals_are_never_read_while_the_pipeline_processes(
    mitdb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    busy = threading.Event()
    seen = {"vitals": 0, "concurrent": 0}
    real_step, real_vitals = MonitorCore.step, MonitorCore.vitals

    def step(self: MonitorCore, frame: Frame) -> StepOutput:
        busy.set()
        try:
            return real_step(self, frame)
        finally:
            busy.clear()

    def vitals(self: MonitorCore, device_id: str, ts_utc: datetime) -> VitalsMessage:
        seen["vitals"] += 1
        seen["concurrent"] += busy.is_set()
        return real_vitals(self, device_id, ts_utc)

    monkeypatch.setattr(MonitorCore, "step", step)
    monkeypatch.setattr(MonitorCore, "vitals", vitals)
    cfg = load_config(overrides={"mqtt.vitals_period_s": 0.1})
    source = WfdbReplaySource(mitdb / "208", speed=None, stop_s=900.0)
    sink = RecordingSink()
    await AgentRuntime(cfg, source, sink, load_models(cfg.inference), backpressure=True).run()
    assert seen["vitals"] >= 5, "the stress loop must read vitals while the record is processed"
    assert seen["concurrent"] == 0, f"{seen['concurrent']} of {seen['vitals']} reads raced"
