"""The asyncio runtime: alarms flow to the sink, and one failing chunk does not stop the loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config
from agent.core.monitor import MonitorCore, StepOutput
from agent.inference.bundle import load_models
from agent.messages import AlarmEvent, VitalsMessage
from agent.runtime import AgentRuntime
from firmware_bridge.frames import EcgChunk, Frame
from firmware_bridge.transports.replay import WfdbReplaySource


class RecordingSink:
    """The runtime's AlarmSink protocol, recording what it is given."""

    def __init__(self) -> None:
        self.alarms: list[AlarmEvent] = []
        self.vitals: list[VitalsMessage] = []
        self.status: list[dict[str, int]] = []

    def publish_alarm(self, event: AlarmEvent) -> None:
        self.alarms.append(event)

    def publish_vitals(self, msg: VitalsMessage) -> None:
        self.vitals.append(msg)

    def publish_status(self, counters: dict[str, int]) -> None:
        self.status.append(counters)


async def test_runtime_survives_a_failing_chunk(
    mitdb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = MonitorCore.step

    def flaky(self: MonitorCore, frame: Frame) -> StepOutput:
        calls["n"] += isinstance(frame, EcgChunk)
        if calls["n"] == 5:
            msg = "injected failure"
            raise RuntimeError(msg)
        return real(self, frame)

    monkeypatch.setattr(MonitorCore, "step", flaky)
    source = WfdbReplaySource(mitdb / "232", speed=None, start_s=600.0, stop_s=700.0)
    sink = RecordingSink()
    cfg = load_config()
    runtime = AgentRuntime(cfg, source, sink, load_models(cfg.inference), backpressure=True)
    stats = await runtime.run()
    assert stats.pipeline_errors == 1
    assert stats.frames_dropped == 0
    assert stats.frames_in == calls["n"]
    assert stats.beats > 50
    # 232 has pauses at 636 s and 646 s of the record (36 s and 46 s into this slice)
    pauses = [a for a in sink.alarms if a.condition == "pause" and a.lifecycle == "raised"]
    # onsets are exact (slice-relative) despite the failed chunk: its samples became NaN
    assert stats.samples_gap_filled == 90
    assert [round(a.onset_s, 1) for a in pauses] == [38.9, 48.6]
