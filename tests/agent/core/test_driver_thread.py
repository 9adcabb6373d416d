"""The driver steps the core on one dedicated thread, and stops it at the end of the stream.

The live agent used to step the core through ``asyncio.to_thread``: the loop's default
executor spread the steps over whichever idle worker came first (two in the live process,
each with cold caches). :class:`agent.core.driver.CoreDriver` now owns one single-worker
executor: every step and every :meth:`~agent.core.driver.CoreDriver.call` runs on the same
thread, never on the event loop's, and :meth:`~agent.core.driver.CoreDriver.finish` shuts it
down (a later call still answers, from the loop's default executor).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from agent.analyze import analyze_record
from agent.config import AgentConfig
from agent.core.driver import CoreDriver
from agent.core.monitor import StepOutput
from agent.inference.bundle import load_models
from firmware_bridge.errors import RecordReadError
from firmware_bridge.frames import Frame
from firmware_bridge.transports.replay import WfdbReplaySource


def test_every_step_runs_on_one_thread_that_finish_stops(data_dir: Path) -> None:
    cfg = AgentConfig()
    models = load_models(cfg.inference)
    source = WfdbReplaySource(
        data_dir / "mitdb" / "100", speed=None, fs_hz=130.0, chunk_s=0.25, stop_s=12.0
    )
    outputs: list[StepOutput] = []
    threads: set[int] = set()

    async def main() -> tuple[int, int, bool]:
        loop_thread = threading.get_ident()
        driver = CoreDriver(cfg, models, lambda out, _ns: outputs.append(out))

        async def frames() -> list[Frame]:
            return [f async for f in source.frames()]

        for frame in await frames():
            await driver.feed(frame)
            core = driver.core
            if core is not None and "step" not in vars(core):
                step: Callable[[Frame], StepOutput] = core.step

                def traced(f: Frame, step: Callable[[Frame], StepOutput] = step) -> StepOutput:
                    threads.add(threading.get_ident())
                    return step(f)

                core.step = traced  # type: ignore[method-assign,assignment]
        assert driver.core is not None
        await driver.finish()
        stopped = all(t.ident not in threads for t in threading.enumerate())
        # after the end a late call (vital signs) is still answered
        await driver.call(driver.core.clock_s)
        return loop_thread, len(outputs), stopped

    loop_thread, n_outputs, stopped = asyncio.run(main())
    assert n_outputs > 40
    assert len(threads) == 1
    assert loop_thread not in threads
    assert stopped


def test_a_record_that_fails_midway_leaves_no_core_thread_behind(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bedside analyze`` skips a bad record and goes on: its core's thread must not stay."""
    real_frames = WfdbReplaySource.frames

    async def failing(self: WfdbReplaySource) -> AsyncIterator[Frame]:
        n = 0
        async for frame in real_frames(self):
            yield frame
            n += 1
            if n == 3:  # the core exists by now, and so does its thread
                raise RecordReadError(str(self.record_name), "disk gone mid-record")

    monkeypatch.setattr(WfdbReplaySource, "frames", failing)
    cfg = AgentConfig()
    before = {t.ident for t in threading.enumerate()}
    with pytest.raises(RecordReadError, match="mid-record"):
        asyncio.run(analyze_record(data_dir / "mitdb" / "100", cfg, load_models(cfg.inference)))
    left = [
        t
        for t in threading.enumerate()
        if t.ident not in before and t.name.startswith("bedside-core")
    ]
    assert left == []
