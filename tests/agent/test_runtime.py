"""The asyncio runtime: alarms flow to the sink, and one failing chunk does not stop the loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from agent.config import load_config
from agent.messages import AlarmEvent, VitalsMessage
from agent.pipeline import EcgPipeline, StepOutput
from agent.runtime import AgentRuntime
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
    real = EcgPipeline.process

    def flaky(self: EcgPipeline, samples_uv: NDArray[np.float32]) -> StepOutput:
        calls["n"] += 1
        if calls["n"] == 5:
            msg = "injected failure"
            raise RuntimeError(msg)
        return real(self, samples_uv)

    monkeypatch.setattr(EcgPipeline, "process", flaky)
    source = WfdbReplaySource(mitdb / "232", speed=None, start_s=600.0, stop_s=700.0)
    sink = RecordingSink()
    stats = await AgentRuntime(load_config(), source, sink, backpressure=True).run()
    assert stats.pipeline_errors == 1
    assert stats.frames_dropped == 0
    assert stats.frames_in == calls["n"]
    assert stats.beats > 50
    # 232 has pauses at 636 s and 646 s of the record (36 s and 46 s into this slice)
    pauses = [a for a in sink.alarms if a.condition == "pause" and a.lifecycle == "raised"]
    # onsets are exact (slice-relative) despite the failed chunk: its samples became NaN
    assert stats.samples_gap_filled == 90
    assert [round(a.onset_s, 1) for a in pauses] == [38.9, 48.6]
