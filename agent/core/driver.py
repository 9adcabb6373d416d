"""The one driver of the core, for ``bedside run`` and ``bedside analyze`` alike.

:class:`CoreDriver` takes the frames of one stream, in order, and:

- builds the core from the first ECG chunk or RR notification (device events and vital signs
  that come before it, as when a strap connects before it streams, wait for it);
- steps the core with every frame in its own worker thread (NeuroKit2 and TFLite never run on
  the event loop), under one lock, so that nothing reads the core's state (vitals,
  acknowledgements, nurse observations: :meth:`CoreDriver.call`) while it changes. The thread
  is one dedicated thread per driver (a single-worker executor, shut down by
  :meth:`CoreDriver.finish` / :meth:`CoreDriver.close`), not the loop's default executor:
  there the steps were spread over whichever idle worker came first (two, live), each with
  cold caches, and cost about twice the CPU of stepping the core in a loop (issue 11);
- counts and drops a frame the core fails on (one bad frame never stops the bedside loop) and
  frames the stream does not use (RR beside a waveform);
- hands every :class:`~agent.core.monitor.StepOutput` to ``on_output`` with the arrival time
  of the frame that produced it.

The live runtime (:mod:`agent.runtime`) feeds it from the source's queue; ``bedside analyze``
(:mod:`agent.analyze`) feeds it a recording's frames directly. Same frames in, same outputs.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
from collections import deque
from collections.abc import AsyncIterable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Final, ParamSpec, TypeVar

from agent.config import AgentConfig
from agent.core.monitor import MonitorCore, StepOutput
from agent.core.streams import RR_STREAM_FS_HZ, build_core
from agent.core.timing import StageTimes
from agent.inference.bundle import ModelBundle
from agent.messages import utc_now
from firmware_bridge.frames import EcgChunk, Frame, RrIntervals

logger = logging.getLogger(__name__)

EARLY_MAX: Final = 1000
"""Device events and vital signs kept while waiting for the first ECG / RR frame."""

OutputHandler = Callable[[StepOutput, int], None]
"""``(output, arrival_ns)``: what one step produced and the ``time.monotonic_ns()`` arrival of
the frame that completed it (for publish latency)."""

_P = ParamSpec("_P")
_T = TypeVar("_T")


class CoreDriver:
    """Drive one stream's core with its frames (see the module docstring).

    Parameters
    ----------
    cfg
        Agent configuration.
    models
        The loaded models, shared by every stream of the process.
    on_output
        Receives every step's output, in order.
    rr_fs_hz
        Rate at which an RR-only stream counts beat sample indices, Hz.
    clock
        UTC clock (an RR-only stream's start time).
    stage_times
        When given, the core adds the CPU time of each stage to it (``tools.bench``).

    Attributes
    ----------
    core : MonitorCore | None
        The core, once the first ECG / RR frame has come.
    frames_ignored : int
        Frames the stream does not use: RR notifications beside a waveform (its beats are
        authoritative), ECG chunks on a stream that started RR-only.
    pipeline_errors : int
        Frames the core failed on (logged with a traceback, then dropped).
    """

    def __init__(
        self,
        cfg: AgentConfig,
        models: ModelBundle,
        on_output: OutputHandler,
        *,
        rr_fs_hz: float = RR_STREAM_FS_HZ,
        clock: Callable[[], datetime] = utc_now,
        stage_times: StageTimes | None = None,
    ) -> None:
        self.cfg = cfg
        self.models = models
        self._on_output = on_output
        self._rr_fs_hz = rr_fs_hz
        self._clock = clock
        self._stage_times = stage_times
        self.core: MonitorCore | None = None
        self.frames_ignored = 0
        self.pipeline_errors = 0
        self.lock = asyncio.Lock()
        """Held while the core is stepped; hold it (:meth:`call`) to read or change the core."""
        self._early: deque[Frame] = deque(maxlen=EARLY_MAX)
        self._executor: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="bedside-core"
        )
        """The one thread the core runs in (started on first use); None once closed."""

    async def run(self, frames: AsyncIterable[Frame]) -> None:
        """Feed every frame of ``frames``, then :meth:`finish`."""
        async for frame in frames:
            await self.feed(frame)
        await self.finish()

    async def feed(self, frame: Frame) -> None:
        """Step the core with one frame (building the core first if this frame starts it)."""
        async with self.lock:
            if self.core is None:
                if not isinstance(frame, EcgChunk | RrIntervals):
                    self._early.append(frame)
                    return
                self.core = build_core(
                    self.cfg,
                    self.models,
                    frame,
                    rr_fs_hz=self._rr_fs_hz,
                    clock_utc=self._clock(),
                    stage_times=self._stage_times,
                )
                early = list(self._early)
                self._early.clear()
                for item in early:
                    await self._step(self.core, item)
            if not self.core.accepts(frame):
                self.frames_ignored += 1
                return
            await self._step(self.core, frame)

    async def _in_thread(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run ``fn`` in the core's thread (as ``asyncio.to_thread`` does, context included).

        Once the driver is closed (the stream ended) the loop's default executor runs it: a
        late vital-signs or acknowledgement call still gets an answer from the finished core.
        """
        if self._executor is None:
            return await asyncio.to_thread(fn, *args, **kwargs)
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _step(self, core: MonitorCore, frame: Frame) -> None:
        try:
            out = await self._in_thread(core.step, frame)
        except Exception:
            # Never let one frame stop the bedside loop: count it, log it, go on.
            self.pipeline_errors += 1
            logger.exception("pipeline failed on a frame; frame dropped")
            return
        self._on_output(out, frame.t0_monotonic_ns)

    async def call(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run ``fn`` on the core's state in the core's thread, while no frame is stepped."""
        async with self.lock:
            return await self._in_thread(fn, *args, **kwargs)

    async def finish(self) -> None:
        """End of stream: commit what is left, clear every active alarm, then :meth:`close`."""
        try:
            if self.core is None:
                return
            out = await self.call(self.core.finish)
            self._on_output(out, time.monotonic_ns())
        finally:
            self.close()

    def close(self) -> None:
        """Stop the core's thread (idempotent; :meth:`finish` calls it).

        Call it from the event loop when no step is in flight (after :meth:`finish`, or when
        the stream's tasks are gone): the idle thread is joined at once.
        """
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
