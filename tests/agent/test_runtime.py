"""The asyncio runtime: alarms flow to the sink, one failing chunk does not stop the loop, and
with ``dsp.step_s`` the strap's notifications are joined into one step a second, same outputs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
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
    cfg = load_config(None, {"dsp.powerline_hz": 50, "dsp.step_s": 0.0})  # a step per chunk
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


async def test_notifications_are_joined_into_one_step_a_second(
    mitdb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``dsp.step_s`` 1 s: four 0.25 s chunks make one step; beats and alarms are unchanged."""
    stepped: list[float] = []
    real = MonitorCore.step

    def counted(self: MonitorCore, frame: Frame) -> StepOutput:
        if isinstance(frame, EcgChunk):
            stepped.append(frame.duration_s)
        return real(self, frame)

    monkeypatch.setattr(MonitorCore, "step", counted)
    seen: dict[float, tuple[list[tuple[int, str | None]], list[tuple[str, str, float]]]] = {}
    steps: dict[float, list[float]] = {}
    for step_s in (0.0, 1.0):
        stepped.clear()
        beats: list[tuple[int, str | None]] = []
        events: list[tuple[str, str, float]] = []

        def collect(
            out: StepOutput,
            _arrival_ns: int,
            b: list[tuple[int, str | None]] = beats,
            e: list[tuple[str, str, float]] = events,
        ) -> None:
            b.extend((beat.r_peak_idx, beat.aami_class) for beat in out.beats)
            e.extend((ev.condition, ev.lifecycle, round(ev.onset_s, 3)) for ev in out.events)

        source = WfdbReplaySource(
            mitdb / "232", speed=None, start_s=600.0, stop_s=700.0, chunk_s=0.25
        )
        cfg = load_config(None, {"dsp.powerline_hz": 50, "dsp.step_s": step_s})
        runtime = AgentRuntime(
            cfg,
            source,
            RecordingSink(),
            load_models(cfg.inference),
            backpressure=True,
            on_output=collect,
        )
        stats = await runtime.run()
        assert stats.pipeline_errors == 0
        assert stats.frames_in == 400  # 100 s in 0.25 s chunks
        seen[step_s] = (beats, events)
        steps[step_s] = list(stepped)
    assert len(steps[0.0]) == 400
    assert len(steps[1.0]) == 100
    assert all(abs(d - 1.0) < 1e-9 for d in steps[1.0])
    beats_each, events_each = seen[0.0]
    assert len(beats_each) > 50
    assert any(condition == "pause" for condition, _, _ in events_each)
    assert seen[1.0] == seen[0.0]


class QuietAfterOneChunk:
    """A strap that sends one 0.5 s notification, then nothing until ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    def describe(self) -> str:
        return "quiet strap"

    def counters(self) -> dict[str, int]:
        return {}

    async def frames(self) -> AsyncIterator[Frame]:
        t = np.arange(65) / 130.0
        yield EcgChunk(
            samples_uv=(300.0 * np.sin(2 * np.pi * t)).astype(np.float32),
            fs_hz=130.0,
            first_sample_idx=0,
            t0_monotonic_ns=0,
            t0_utc=datetime(2026, 12, 4, tzinfo=UTC),
        )
        await self.release.wait()


async def test_a_held_notification_is_stepped_when_the_strap_goes_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Half a second held for ``dsp.step_s`` 1 s is stepped although no more ECG comes."""
    stepped = asyncio.Event()
    durations: list[float] = []
    real = MonitorCore.step

    def counted(self: MonitorCore, frame: Frame) -> StepOutput:
        if isinstance(frame, EcgChunk):
            durations.append(frame.duration_s)
            stepped.set()
        return real(self, frame)

    monkeypatch.setattr(MonitorCore, "step", counted)
    overrides = {"inference.beats": False, "inference.af": False, "dsp.powerline_hz": 50}
    cfg = load_config(None, {**overrides, "dsp.step_s": 1.0})
    source = QuietAfterOneChunk()
    runtime = AgentRuntime(cfg, source, RecordingSink(), load_models(cfg.inference))
    run = asyncio.create_task(runtime.run())
    try:
        await asyncio.wait_for(stepped.wait(), timeout=60.0)
        assert durations == [0.5]
    finally:
        source.release.set()
        await asyncio.wait_for(run, timeout=60.0)
