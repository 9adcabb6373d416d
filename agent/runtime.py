"""The live agent: source → bounded queue → pipeline (off the event loop) → publisher.

Stages run in one :class:`asyncio.TaskGroup` and are joined by queues with stated overflow
policies (STYLE.md, "The pipeline is stages joined by bounded queues"):

- waveform chunks: bounded (``WAVE_QUEUE_CHUNKS``); when the pipeline falls behind, the
  *oldest* chunk is dropped and ``frames_dropped`` counts it (published in ``status``);
- device events and acknowledgements: never dropped.

NeuroKit2 work runs in a worker thread (``asyncio.to_thread``) so the event loop keeps
serving MQTT acknowledgements, vitals and the source while a window is analysed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

import numpy as np
from numpy.typing import NDArray

from agent.config import AgentConfig
from agent.inference.factory import load_beat_classifier
from agent.messages import AlarmAck, AlarmEvent, VitalsMessage, utc_now
from agent.pipeline import EcgPipeline, StepOutput
from agent.vitals.observations import ManualObservations
from firmware_bridge.frames import (
    DeviceEvent,
    DeviceEventKind,
    EcgChunk,
    Frame,
    RrIntervals,
    Spo2Reading,
    TemperatureReading,
)
from firmware_bridge.transports import Source

logger = logging.getLogger(__name__)

WAVE_QUEUE_CHUNKS: Final = 120
"""Waveform chunks buffered before the oldest is dropped (30 s of 0.25 s chunks)."""

STATUS_PERIOD_S: Final = 10.0
"""Status (with counters) is republished this often, s."""

MAX_GAP_FILL_S: Final = 120.0
"""Missing stretches up to this long (dropped chunks, a failed chunk) are filled with NaN so
stream time stays exact and the gap reads as invalid signal (leads-off past 2 s)."""

EARLY_MAX: Final = 1000
"""Device events and vitals kept while waiting for the first ECG / RR frame."""

RR_STREAM_FS_HZ: Final = 1000.0
"""Beat sample indices of RR-only streams are counted in ms."""

RR_TICK_MARGIN_S: Final = 2.0
"""RR-only streams: stream time is advanced between notifications to this much behind the
estimated present, so that a late notification's beats still fall after it."""


class FrameQueue:
    """The queue between the source and the pipeline, with the overflow policy in one place.

    At most ``max_chunks`` waveform chunks wait. :meth:`put_nowait` (live sources) makes
    room by dropping the *oldest chunk*; :meth:`put` (recordings) waits for room instead.
    Device events, RR notifications and the end marker (None) are never dropped and never
    wait.
    """

    def __init__(self, max_chunks: int) -> None:
        self._items: deque[Frame | None] = deque()
        self._max_chunks = max_chunks
        self._chunks = 0
        self._nonempty = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def put_nowait(self, item: Frame | None) -> int:
        """Enqueue now; return how many chunks were dropped to make room (0 or 1)."""
        dropped = 0
        if isinstance(item, EcgChunk):
            if self._chunks >= self._max_chunks:
                oldest = next(f for f in self._items if isinstance(f, EcgChunk))
                self._items.remove(oldest)
                self._chunks -= 1
                dropped = 1
            self._chunks += 1
            if self._chunks >= self._max_chunks:
                self._room.clear()
        self._items.append(item)
        self._nonempty.set()
        return dropped

    async def put(self, item: Frame | None) -> None:
        """Enqueue, waiting while ``max_chunks`` chunks are already waiting."""
        if isinstance(item, EcgChunk):
            while self._chunks >= self._max_chunks:
                await self._room.wait()
        self.put_nowait(item)

    async def get(self) -> Frame | None:
        """Dequeue the oldest item, waiting for one."""
        while not self._items:
            await self._nonempty.wait()
        item = self._items.popleft()
        if not self._items:
            self._nonempty.clear()
        if isinstance(item, EcgChunk):
            self._chunks -= 1
            if self._chunks < self._max_chunks:
                self._room.set()
        return item


class AlarmSink(Protocol):
    """Where the runtime sends what it decides (the MQTT publisher, or a test double)."""

    def publish_alarm(self, event: AlarmEvent) -> None:
        """Deliver an alarm event durably."""
        ...

    def publish_vitals(self, msg: VitalsMessage) -> None:
        """Deliver vitals (best effort)."""
        ...

    def publish_status(self, counters: dict[str, int]) -> None:
        """Republish the retained online status with counters."""
        ...


@dataclass(slots=True)
class RunStats:
    """Counters of one run (published in ``status.counters``).

    Attributes
    ----------
    frames_in, frames_dropped, beats, alarm_events, acks, device_events : int
        Counts since start.
    pipeline_errors : int
        Chunks the pipeline failed on (logged with a traceback, then skipped).
    samples_implausible : int
        Samples rejected by the pipeline's plausibility gate.
    samples_gap_filled : int
        Samples filled with NaN where chunks were dropped or failed.
    frames_ignored : int
        RR notifications ignored because the stream has a waveform (its beats are
        authoritative), or waveform chunks on a stream that started as RR-only.
    publish_latency_ms : list[float]
        For each raised alarm, the time from the arrival of the chunk that completed the
        condition to the hand-over to the publisher, ms.
    """

    frames_in: int = 0
    frames_dropped: int = 0
    beats: int = 0
    alarm_events: int = 0
    acks: int = 0
    device_events: int = 0
    pipeline_errors: int = 0
    samples_implausible: int = 0
    samples_gap_filled: int = 0
    frames_ignored: int = 0
    publish_latency_ms: list[float] = field(default_factory=list)

    def counters(self) -> dict[str, int]:
        """Return the integer counters as a dict."""
        return {
            "frames_in": self.frames_in,
            "frames_dropped": self.frames_dropped,
            "beats": self.beats,
            "alarm_events": self.alarm_events,
            "acks": self.acks,
            "device_events": self.device_events,
            "pipeline_errors": self.pipeline_errors,
            "samples_implausible": self.samples_implausible,
            "samples_gap_filled": self.samples_gap_filled,
            "frames_ignored": self.frames_ignored,
        }


class AgentRuntime:
    """Run the pipeline over a live source and hand results to a sink.

    Parameters
    ----------
    cfg
        Agent configuration.
    source
        Where frames come from.
    sink
        Where alarms, vitals and status go.
    clock
        UTC clock for message timestamps.
    backpressure
        When True the reader waits for room in the waveform queue instead of dropping the
        oldest chunk: right for recordings (a file can wait), wrong for live sensors (they
        cannot), which keep the drop-oldest policy.
    """

    def __init__(
        self,
        cfg: AgentConfig,
        source: Source,
        sink: AlarmSink,
        *,
        clock: Callable[[], datetime] = utc_now,
        backpressure: bool = False,
    ) -> None:
        self.cfg = cfg
        self.backpressure = backpressure
        self.source = source
        self.sink = sink
        self.clock = clock
        self.stats = RunStats()
        self.pipeline: EcgPipeline | None = None
        self._wave = FrameQueue(WAVE_QUEUE_CHUNKS)
        self._rr_mode = False
        self._last_rr: tuple[float, int] | None = None  # (stream t_s, arrival monotonic ns)
        self._extra: dict[str, Any] = {"beat_classifier": load_beat_classifier(cfg.inference)}
        self._acks: asyncio.Queue[AlarmAck] = asyncio.Queue()
        self._observations: asyncio.Queue[ManualObservations] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._done = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def submit_observations(self, obs: ManualObservations) -> None:
        """Queue nurse-entered observations; safe to call from any thread (paho's, say)."""
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._observations.put_nowait, obs)

    def submit_ack(self, ack: AlarmAck) -> None:
        """Queue an acknowledgement; safe to call from any thread (paho's, say)."""
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._acks.put_nowait, ack)

    async def run(self) -> RunStats:
        """Run until the source ends (replay) or the task is cancelled (live)."""
        self._loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._read())
            process = tg.create_task(self._process())
            side = [
                tg.create_task(self._vitals()),
                tg.create_task(self._status()),
                tg.create_task(self._handle_acks()),
                tg.create_task(self._handle_observations()),
            ]
            await process
            for task in side:
                task.cancel()
        return self.stats

    async def _read(self) -> None:
        ended = False
        frames = self.source.frames()
        try:
            async for frame in frames:
                if not isinstance(frame, DeviceEvent):
                    self.stats.frames_in += 1
                else:
                    self.stats.device_events += 1
                    logger.info("device event: %s %s", frame.kind.value, frame.detail)
                    if frame.kind is DeviceEventKind.END_OF_STREAM:
                        break
                if self.backpressure:
                    await self._wave.put(frame)
                else:
                    self._put_wave(frame)
            ended = True
        finally:
            # close the source now (a BLE source stops its streams and disconnects)
            aclose = getattr(frames, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
            # the end-of-stream marker is never dropped; with backpressure nothing is
            if ended and self.backpressure:
                await self._wave.put(None)
            else:
                self._put_wave(None)

    def _put_wave(self, item: Frame | None) -> None:
        self.stats.frames_dropped += self._wave.put_nowait(item)

    def _make_pipeline(self, frame: EcgChunk | RrIntervals) -> EcgPipeline:
        if isinstance(frame, EcgChunk):
            return EcgPipeline(self.cfg, frame.fs_hz, stream_start_utc=frame.t0_utc, **self._extra)
        start = self.clock() - timedelta(seconds=frame.t_s)
        return EcgPipeline(self.cfg, RR_STREAM_FS_HZ, stream_start_utc=start, **self._extra)

    async def _process(self) -> None:
        # events and vitals that come before the first ECG / RR frame (a BLE strap connects
        # before it streams) wait for the pipeline, which needs the stream's rate
        early: deque[DeviceEvent | Spo2Reading | TemperatureReading] = deque(maxlen=EARLY_MAX)
        while True:
            frame = await self._wave.get()
            if frame is None:
                break
            async with self._lock:
                if self.pipeline is None:
                    if not isinstance(frame, EcgChunk | RrIntervals):
                        early.append(frame)
                        continue
                    self.pipeline = self._make_pipeline(frame)
                    self._rr_mode = isinstance(frame, RrIntervals)
                    for item in early:
                        self._emit(self._apply_other(self.pipeline, item), item.t0_monotonic_ns)
                    early.clear()
                pipeline = self.pipeline
                try:
                    if isinstance(frame, EcgChunk):
                        if self._rr_mode:
                            self.stats.frames_ignored += 1
                            continue
                        samples = self._align(pipeline, frame)
                        out = await asyncio.to_thread(pipeline.process, samples)
                    elif isinstance(frame, RrIntervals):
                        if not self._rr_mode:  # the waveform is authoritative for beats
                            self.stats.frames_ignored += 1
                            continue
                        self._last_rr = (frame.t_s, time.monotonic_ns())
                        out = pipeline.process_rr(frame.rr_ms, frame.t_s)
                    else:
                        out = self._apply_other(pipeline, frame)
                except Exception:
                    # Never let one frame stop the bedside loop: count it, log it, go on.
                    self.stats.pipeline_errors += 1
                    logger.exception("pipeline failed on a frame; frame dropped")
                    continue
            self._emit(out, frame.t0_monotonic_ns)
        if self.pipeline is not None:
            async with self._lock:
                out = await asyncio.to_thread(self.pipeline.finish)
            self._emit(out, time.monotonic_ns())
        self._done.set()

    @staticmethod
    def _apply_other(
        pipeline: EcgPipeline, frame: DeviceEvent | Spo2Reading | TemperatureReading
    ) -> StepOutput:
        if isinstance(frame, DeviceEvent):
            return pipeline.device_event(frame)
        return pipeline.observe(frame)

    async def _tick_rr(self) -> None:
        """RR-only streams: advance stream time between notifications (asystole needs it)."""
        if not self._rr_mode or self.pipeline is None or self._last_rr is None:
            return
        t_s, arrival_ns = self._last_rr
        speed = self.cfg.source.speed if self.backpressure else 1.0
        now_s = t_s + (time.monotonic_ns() - arrival_ns) / 1e9 * speed - RR_TICK_MARGIN_S
        async with self._lock:
            out = self.pipeline.tick(now_s)
        self._emit(out, time.monotonic_ns())

    def _align(self, pipeline: EcgPipeline, chunk: EcgChunk) -> NDArray[np.float32]:
        """Return the chunk's samples, preceded by NaN for any gap since the last one."""
        gap = chunk.first_sample_idx - pipeline.samples_in
        if gap == 0:
            return chunk.samples_uv
        if 0 < gap <= MAX_GAP_FILL_S * chunk.fs_hz:
            self.stats.samples_gap_filled += gap
            filler = np.full(gap, np.nan, dtype=np.float32)
            return np.concatenate([filler, chunk.samples_uv])
        if gap < 0:  # overlap with what was already processed
            return chunk.samples_uv[-gap:]
        logger.warning("stream jumped %.1f s ahead; not filled", gap / chunk.fs_hz)
        return chunk.samples_uv

    def _emit(self, out: StepOutput, arrival_ns: int) -> None:
        self.stats.beats += len(out.beats)
        for event in out.events:
            self.stats.alarm_events += 1
            logger.info(
                "alarm %s %s %s onset %.1f s",
                event.lifecycle.value,
                event.priority.value,
                event.condition.value,
                event.onset_s,
            )
            self.sink.publish_alarm(event)
            if event.lifecycle == "raised":
                self.stats.publish_latency_ms.append((time.monotonic_ns() - arrival_ns) / 1e6)

    async def _vitals(self) -> None:
        period = self.cfg.mqtt.vitals_period_s
        while True:
            await asyncio.sleep(period)
            await self._tick_rr()
            if self.pipeline is not None:
                self.sink.publish_vitals(self.pipeline.vitals(self.cfg.bed.device_id, self.clock()))

    async def _status(self) -> None:
        while True:
            await asyncio.sleep(STATUS_PERIOD_S)
            self.sink.publish_status(self.counters())

    def counters(self) -> dict[str, int]:
        """Every counter: the runtime's, plus the source's (``ble_*`` per wearable, summed)."""
        if self.pipeline is not None:
            self.stats.samples_implausible = self.pipeline.samples_implausible
        out = self.stats.counters()
        stats = getattr(self.source, "stats", None)
        if isinstance(stats, dict):
            for device_stats in stats.values():
                if is_dataclass(device_stats) and not isinstance(device_stats, type):
                    for name, value in asdict(device_stats).items():
                        if isinstance(value, int):
                            out[f"ble_{name}"] = out.get(f"ble_{name}", 0) + value
        return out

    async def _handle_acks(self) -> None:
        while True:
            ack = await self._acks.get()
            self.stats.acks += 1
            if self.pipeline is None:
                continue
            async with self._lock:
                events = self.pipeline.acknowledge(ack.alarm_id)
            if not events:
                logger.info("ack for unknown or inactive alarm %s", ack.alarm_id)
            for event in events:
                self.sink.publish_alarm(event)

    async def _handle_observations(self) -> None:
        while True:
            obs = await self._observations.get()
            if self.pipeline is None:
                logger.info("observations before the stream started: ignored")
                continue
            async with self._lock:
                try:
                    out = self.pipeline.add_manual(obs)
                except (ValueError, TypeError) as err:
                    logger.warning("observations rejected: %s", err)
                    continue
            self._emit(out, time.monotonic_ns())


async def run_until_done(runtime: AgentRuntime, stop: asyncio.Event | None = None) -> RunStats:
    """Run ``runtime`` until its source ends or ``stop`` is set."""
    task = asyncio.create_task(runtime.run())
    if stop is None:
        return await task
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if task not in done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    stopper.cancel()
    return runtime.stats
