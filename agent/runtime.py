"""The live agent: source → bounded queue → the core's driver (off the event loop) → publisher.

Stages run in one :class:`asyncio.TaskGroup` and are joined by queues with stated overflow
policies (STYLE.md, "The pipeline is stages joined by bounded queues"):

- waveform chunks: bounded (``WAVE_QUEUE_CHUNKS``); when the pipeline falls behind, the
  *oldest* chunk is dropped and ``frames_dropped`` counts it (published in ``status``);
- device events and acknowledgements: never dropped.

With ``dsp.step_s`` > 0 (off by default) contiguous ECG chunks (a strap's notifications, about
0.56 s each) are joined into one step per ``dsp.step_s``: each step of the core has a fixed
cost, and the outputs do not depend on how the stream is cut, but a decision waits for the
rest of the step. What is held is stepped after ``dsp.step_s`` of wall time without the next
chunk (a strap gone quiet), and before any other frame, so frames stay in stream order.

The core is stepped by :class:`agent.core.driver.CoreDriver`, the same driver as
``bedside analyze``: every call into the core (frames, vitals, acknowledgements,
observations, RR ticks) runs in a worker thread under the driver's lock, so the event loop
keeps serving MQTT and the source while a window is analysed, and nothing reads the core's
state while it changes.

The periodic jobs (vital signs every ``mqtt.vitals_period_s``, the watchdog every second,
the status every 10 s) run just after a step when they are due, on the wake-up the stream has
already made, and on timers of their own only when no step comes (:mod:`agent.cadence`).

Nothing goes quiet without an alarm (issue 14). A watchdog raises the runtime's own technical
alarms, from its own :class:`~agent.alarms.engine.AlarmEngine` on the runtime's clock:

- ``sensor_disconnected``: no ECG / RR frame from the source within ``alarms.no_data_s`` of
  start, or for that long since the last one (a sensor that never connects is not silent);
- ``pipeline_stalled``: frames wait but the core has not finished a step for
  ``PIPELINE_STALL_S``;
- ``delivery_refused`` / ``outbox_failed``: reported by the publisher (``report_problem``).

Failures are loud: any exception in a stage ends :meth:`AgentRuntime.run` with that exception
(:func:`run_until_done` re-raises it, the CLI exits non-zero with one line), and an outbox that
cannot be written is unrecoverable (:class:`AgentFailureError`). Acknowledgements are confirmed
by the engine's ``updated`` event carrying ``acknowledged_by``; escalation is turned on here,
for live runs only, from ``alarms.escalation_*_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final, Protocol, runtime_checkable

from agent.alarms.engine import AlarmEngine, ConditionSpec, Finding
from agent.cadence import GRACE_FRACTION, Cadence
from agent.config import AgentConfig
from agent.core.driver import CoreDriver, OutputHandler
from agent.core.monitor import MonitorCore, StepOutput
from agent.core.timing import StageTimes
from agent.errors import BedsideError
from agent.inference.bundle import ModelBundle
from agent.messages import (
    AlarmAck,
    AlarmCode,
    AlarmCondition,
    AlarmEvent,
    AlarmPriority,
    VitalsMessage,
    utc_now,
)
from agent.queues import FrameQueue, StationInbox
from firmware_bridge.frames import DeviceEvent, DeviceEventKind, EcgChunk, Frame, RrIntervals
from firmware_bridge.transports import Source

logger = logging.getLogger(__name__)

WAVE_QUEUE_CHUNKS: Final = 120
"""Waveform chunks buffered before the oldest is dropped (60 s of the default 0.5 s chunks)."""

STATUS_PERIOD_S: Final = 10.0
"""Status (with counters) is republished this often, s."""

WATCHDOG_PERIOD_S: Final = 1.0
"""How often the watchdog judges the runtime's technical conditions, s."""

PIPELINE_STALL_S: Final = 15.0
"""Frames waiting and no core step finished for this long raises ``pipeline_stalled``, s.
A 10 s window takes well under 1 s on a Pi 4 (tools.bench), so 15 s is a hang, not load."""

TECHNICAL_SPECS: Final = (
    # IEC 60601-1-8:2006+A1:2012, 6.1.2: a monitor that can no longer see the patient or
    # deliver its alarms needs a prompt response (medium); an alarm that cannot be stored or
    # is refused by the broker may be lost, which the ward must know at once (high).
    ConditionSpec(AlarmCode.SENSOR_DISCONNECTED, AlarmPriority.MEDIUM, AlarmCondition.TECHNICAL),
    ConditionSpec(AlarmCode.PIPELINE_STALLED, AlarmPriority.HIGH, AlarmCondition.TECHNICAL),
    ConditionSpec(AlarmCode.DELIVERY_REFUSED, AlarmPriority.HIGH, AlarmCondition.TECHNICAL),
    ConditionSpec(AlarmCode.OUTBOX_FAILED, AlarmPriority.HIGH, AlarmCondition.TECHNICAL),
)
"""The runtime's own technical alarms (the core raises the others)."""


class AgentFailureError(BedsideError):
    """The agent cannot go on (outbox unwritable, a stage failed); the CLI exits non-zero."""


class UnsupportedRateError(BedsideError):
    """An ECG stream's sampling rate is outside what every stage of the core analyses."""


def supported_ecg_rate_hz() -> tuple[float, float]:
    """Return the ECG sampling rates every stage of the core analyses, ``(lowest, highest)`` Hz.

    The intersection of the stages' own limits, read from them so that it cannot drift:
    R-peaks (:data:`agent.dsp.rpeaks.MIN_FS_HZ`, 100 Hz: its 5-15 Hz band and mains filter),
    the beat classifier's window (:data:`agent.inference.beat_features.MIN_FS_HZ` ..
    ``MAX_FS_HZ``, 100-1000 Hz) and the VF/VT detector (:data:`agent.rhythm.vf.MIN_FS_HZ` ..
    ``MAX_FS_HZ``, 100-1000 Hz). Outside it a stage would be skipped (the VF detector) or
    fail beat after beat (the classifier): a monitor must never run without VF detection.
    """
    from agent.dsp import rpeaks
    from agent.inference import beat_features
    from agent.rhythm import vf

    low = max(rpeaks.MIN_FS_HZ, beat_features.MIN_FS_HZ, vf.MIN_FS_HZ)
    high = min(beat_features.MAX_FS_HZ, vf.MAX_FS_HZ)
    return low, high


def check_ecg_rate(fs_hz: float) -> None:
    """Refuse an ECG stream the core cannot fully analyse.

    Parameters
    ----------
    fs_hz
        The stream's sampling rate, Hz.

    Raises
    ------
    UnsupportedRateError
        If ``fs_hz`` is outside :func:`supported_ecg_rate_hz` (100-1000 Hz). Above it the
        message suggests ``--fs 500`` (a recording can be resampled down; 500 Hz is the
        diagnostic ECG rate of the AHA recommendations, Kligfield et al., Circulation 2007);
        below it nothing can restore the QRS, so no resampling is suggested.
    """
    low, high = supported_ecg_rate_hz()
    if not low <= fs_hz <= high:
        what = (
            f"record it at {low:g} Hz or more"
            if fs_hz < low
            else f"a recording can be resampled: --fs {min(500, high):g}"
        )
        msg = (
            f"ECG at {fs_hz:g} Hz is not supported: R-peaks, the beat classifier and the VF"
            f" detector need {low:g}-{high:g} Hz ({what})"
        )
        raise UnsupportedRateError(msg)


RR_TICK_MARGIN_S: Final = 2.0
"""RR-only streams: stream time is advanced between notifications to this much behind the
estimated present, so that a late notification's beats still fall after it."""


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


@runtime_checkable
class LiveEcgSink(Protocol):
    """A sink that can also stream the live ECG (the MQTT publisher: ``.../ecg`` while leased)."""

    def offer_ecg(self, chunk: EcgChunk) -> None:
        """Take one chunk as the source delivered it; must return at once (drop, never wait)."""
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
    """Run the core over a live source and hand results to a sink.

    Parameters
    ----------
    cfg
        Agent configuration.
    source
        Where frames come from.
    sink
        Where alarms, vitals and status go; a :class:`LiveEcgSink` (the MQTT publisher) is
        also offered every ECG chunk as it arrives, before the core's queue.
    models
        The loaded models (:func:`agent.inference.bundle.load_models`, once per process).
    inbox
        Acknowledgements and observations from the station (a fresh, empty one by default).
    clock
        UTC clock for message timestamps.
    backpressure
        When True the reader waits for room in the waveform queue instead of dropping the
        oldest chunk: right for recordings (a file can wait), wrong for live sensors (they
        cannot), which keep the drop-oldest policy.
    on_output
        Observer called with every step's output and the arrival time (``monotonic_ns``) of
        the frame that produced it, before its events go to the sink (``tools.bench`` pairs
        alarms with the chunk that decided them).
    stage_times
        When given, the core adds the CPU time of each stage to it.
    """

    def __init__(
        self,
        cfg: AgentConfig,
        source: Source,
        sink: AlarmSink,
        models: ModelBundle,
        *,
        inbox: StationInbox | None = None,
        clock: Callable[[], datetime] = utc_now,
        backpressure: bool = False,
        on_output: OutputHandler | None = None,
        stage_times: StageTimes | None = None,
    ) -> None:
        self.cfg = cfg
        self.backpressure = backpressure
        self.source = source
        self.sink = sink
        self.clock = clock
        self.inbox = inbox if inbox is not None else StationInbox()
        self.stats = RunStats()
        self._observer = on_output
        # the live ECG path: each chunk goes to the sink before the core's queue; the sink drops
        # it unless a station watches, and never blocks (it must not slow the core)
        self._offer_ecg = sink.offer_ecg if isinstance(sink, LiveEcgSink) else None
        self.driver = CoreDriver(cfg, models, self._emit, clock=clock, stage_times=stage_times)
        self._wave = FrameQueue(WAVE_QUEUE_CHUNKS)
        self._last_rr: tuple[float, int] | None = None  # (stream t_s, arrival monotonic ns)
        self._t0_ns = time.monotonic_ns()
        self._last_data_ns: int | None = None  # arrival of the last ECG / RR frame
        self._last_progress_ns = self._t0_ns  # the last finished core step
        self._queued = 0  # frames handed to the queue and not yet stepped
        self._escalation_on = False
        self._problems: dict[AlarmCode, str] = {}
        self._fatal: BedsideError | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # the periodic jobs run just after a step when they are due (agent.cadence); with
        # dsp.step_s a step comes once per step_s, so a job waits that long for one
        self._watchdog_due = self._cadence(WATCHDOG_PERIOD_S)
        self._vitals_due = self._cadence(cfg.mqtt.vitals_period_s)
        self._status_due = self._cadence(STATUS_PERIOD_S)
        self.technical = AlarmEngine(
            TECHNICAL_SPECS,
            device_id=cfg.bed.device_id,
            stream_start_utc=clock(),
            clear_delay_s=0.0,
            clock=clock,
            escalation_s=self._escalation_delays(),
        )
        """The runtime's own technical alarms; stream time is seconds since this runtime began."""

    def _cadence(self, period_s: float) -> Cadence:
        step_s = self.cfg.dsp.step_s
        return Cadence(period_s, grace_s=max(GRACE_FRACTION * period_s, step_s))

    def _escalation_delays(self) -> dict[AlarmPriority, float]:
        alarms = self.cfg.alarms
        return {
            AlarmPriority.HIGH: alarms.escalation_high_s,
            AlarmPriority.MEDIUM: alarms.escalation_medium_s,
            AlarmPriority.LOW: alarms.escalation_low_s,
        }

    def report_problem(self, code: AlarmCode, detail: str, *, fatal: bool = False) -> None:
        """Raise a runtime technical alarm (thread-safe; the publisher calls it from its threads).

        ``fatal`` also ends :meth:`run` with :class:`AgentFailureError` (after the alarm is
        handed to the sink).
        """
        loop = self._loop
        if loop is None:
            self._note_problem(code, detail, fatal=fatal)
        else:
            loop.call_soon_threadsafe(self._note_problem, code, detail, fatal)

    def _note_problem(self, code: AlarmCode, detail: str, fatal: bool = False) -> None:
        self._problems[code] = detail
        if fatal and self._fatal is None:
            self._fatal = AgentFailureError(detail)
            self._watchdog_due.kick()  # end now, not at the next period

    def _elapsed_s(self) -> float:
        return (time.monotonic_ns() - self._t0_ns) / 1e9

    @property
    def core(self) -> MonitorCore | None:
        """The stream's core, once its first ECG / RR frame has come."""
        return self.driver.core

    async def run(self) -> RunStats:
        """Run until the source ends (replay) or the task is cancelled (live).

        Raises
        ------
        AgentFailureError
            If the outbox cannot be written, or a stage failed (the cause is chained).
        """
        self._loop = asyncio.get_running_loop()
        self.inbox.bind(self._loop)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._read())
                process = tg.create_task(self._process())
                side = [
                    tg.create_task(self._vitals()),
                    tg.create_task(self._status()),
                    tg.create_task(self._handle_acks()),
                    tg.create_task(self._handle_observations()),
                    tg.create_task(self._watchdog()),
                ]
                await process
                for task in side:
                    task.cancel()
        except* AgentFailureError as group:
            raise group.exceptions[0] from None
        except* BedsideError as group:
            known = group.exceptions[0]
            raise AgentFailureError(str(known)) from known
        except* Exception as group:
            bug = group.exceptions[0]
            msg = f"a stage of the agent failed: {type(bug).__name__}: {bug}"
            raise AgentFailureError(msg) from bug
        finally:
            self.driver.close()  # the core's thread (finish has closed it on a normal end)
        self._sync_stats()
        return self.stats

    async def _watchdog(self) -> None:
        while True:
            await self._watchdog_due.wait()
            self._judge_technical()
            if self._fatal is not None:
                raise self._fatal

    def _judge_technical(self) -> None:
        """Raise / clear the runtime's technical alarms and enable escalation in the core."""
        now_ns = time.monotonic_ns()
        t_s = self._elapsed_s()
        no_data_s = self.cfg.alarms.no_data_s
        since_ns = self._last_data_ns if self._last_data_ns is not None else self._t0_ns
        silent_s = (now_ns - since_ns) / 1e9
        what = "since start" if self._last_data_ns is None else "for"
        stalled_s = (now_ns - self._last_progress_ns) / 1e9
        findings = [
            Finding(
                AlarmCode.SENSOR_DISCONNECTED,
                silent_s >= no_data_s,
                message=f"no ECG / RR data from the sensor {what} {silent_s:.0f} s",
            ),
            Finding(
                AlarmCode.PIPELINE_STALLED,
                self._queued > 0 and stalled_s >= PIPELINE_STALL_S,
                message=f"analysis stalled: no frame processed for {stalled_s:.0f} s",
            ),
        ]
        for code in (AlarmCode.DELIVERY_REFUSED, AlarmCode.OUTBOX_FAILED):
            detail = self._problems.get(code)
            findings.append(Finding(code, detail is not None, message=detail or ""))
        self._publish(self.technical.update(t_s, findings))
        core = self.driver.core
        if core is not None and not self._escalation_on:
            self._escalation_on = True
            core.engine.escalation_s = self._escalation_delays()

    def _publish(self, events: list[AlarmEvent]) -> None:
        for event in events:
            self.stats.alarm_events += 1
            logger.info(
                "alarm %s %s %s (%s)",
                event.lifecycle.value,
                event.priority.value,
                event.condition.value,
                event.phase.value,
            )
            self.sink.publish_alarm(event)

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
                if isinstance(frame, EcgChunk | RrIntervals):
                    self._last_data_ns = time.monotonic_ns()
                if self._offer_ecg is not None and isinstance(frame, EcgChunk):
                    # the station's live view shows the lead as the agent analyses it
                    shown = frame
                    if self.cfg.dsp.invert_ecg:
                        shown = replace(frame, samples_uv=-frame.samples_uv)
                    self._offer_ecg(shown)
                self._queued += 1
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
        dropped = self._wave.put_nowait(item)
        self.stats.frames_dropped += dropped
        self._queued -= dropped

    async def _process(self) -> None:
        step_s = self.cfg.dsp.step_s
        held: list[EcgChunk] = []  # contiguous ECG not stepped yet (``dsp.step_s``)
        while True:
            if not held:
                frame = await self._wave.get()
            else:
                try:
                    async with asyncio.timeout(step_s):
                        frame = await self._wave.get()
                except TimeoutError:  # the strap went quiet: step what is held
                    await self._step_held(held)
                    continue
            if isinstance(frame, EcgChunk) and step_s > 0.0:
                if held and not frame.follows(held[-1]):
                    await self._step_held(held)  # a gap (a dropped chunk, a reconnection)
                held.append(frame)
                if sum(c.duration_s for c in held) >= step_s - 0.5 / frame.fs_hz:
                    await self._step_held(held)
                continue
            if held:  # everything stays in stream order
                await self._step_held(held)
            if frame is None:
                break
            if isinstance(frame, RrIntervals):
                self._last_rr = (frame.t_s, time.monotonic_ns())
            await self._step(frame, 1)
        await self.driver.finish()
        # end of stream: the runtime's own alarms end too
        self._publish(self.technical.clear_all(self._elapsed_s()))

    async def _step_held(self, held: list[EcgChunk]) -> None:
        """Step the held contiguous chunks as one (:meth:`EcgChunk.join`), then forget them."""
        await self._step(functools.reduce(EcgChunk.join, held), len(held))
        held.clear()

    async def _step(self, frame: Frame, frames: int) -> None:
        """Feed one frame (``frames`` queued frames joined into it) to the core's driver."""
        if isinstance(frame, EcgChunk) and self.driver.core is None:
            check_ecg_rate(frame.fs_hz)  # before the core is built for it
        self._last_progress_ns = time.monotonic_ns()
        await self.driver.feed(frame)
        self._queued = max(0, self._queued - frames)
        self._last_progress_ns = time.monotonic_ns()
        for job in (self._watchdog_due, self._vitals_due, self._status_due):
            job.nudge()

    async def _tick_rr(self) -> None:
        """RR-only streams: advance stream time between notifications (asystole needs it)."""
        core = self.driver.core
        if core is None or self._last_rr is None:
            return
        t_s, arrival_ns = self._last_rr
        speed = self.cfg.source.speed if self.backpressure else 1.0
        now_s = t_s + (time.monotonic_ns() - arrival_ns) / 1e9 * speed - RR_TICK_MARGIN_S
        out = await self.driver.call(core.tick, now_s)
        self._emit(out, time.monotonic_ns())

    def _emit(self, out: StepOutput, arrival_ns: int) -> None:
        if self._observer is not None:
            self._observer(out, arrival_ns)
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
        while True:
            await self._vitals_due.wait()
            await self._tick_rr()
            core = self.driver.core
            if core is not None:
                msg = await self.driver.call(core.vitals, self.cfg.bed.device_id, self.clock())
                self.sink.publish_vitals(msg)

    async def _status(self) -> None:
        while True:
            await self._status_due.wait()
            self.sink.publish_status(self.counters())

    def counters(self) -> dict[str, int]:
        """Every counter: the runtime's, the core's and the source's (``ble_*``, summed)."""
        self._sync_stats()
        out = self.stats.counters()
        out.update(self.source.counters())
        return out

    def _sync_stats(self) -> None:
        """Copy the driver's and the core's counters into :attr:`stats`."""
        self.stats.pipeline_errors = self.driver.pipeline_errors
        self.stats.frames_ignored = self.driver.frames_ignored
        core = self.driver.core
        if core is not None:
            core_counters = core.counters()
            self.stats.samples_implausible = core_counters.get("samples_implausible", 0)
            self.stats.samples_gap_filled = core_counters.get("samples_gap_filled", 0)

    async def _handle_acks(self) -> None:
        while True:
            ack = await self.inbox.acks.get()
            self.stats.acks += 1
            # the runtime's own technical alarms first, then the core's
            events = self.technical.acknowledge(
                ack.alarm_id, self._elapsed_s(), by=ack.station_id, at_utc=self.clock()
            )
            core = self.driver.core
            if not events and core is not None:
                events = await self.driver.call(self._acknowledge_in_core, core, ack)
            if not events:
                # no confirmation is published: the station's ack times out (non-zero exit)
                logger.warning(
                    "ack from %s for unknown or inactive alarm %s ignored",
                    ack.station_id,
                    ack.alarm_id,
                )
            for event in events:
                self.sink.publish_alarm(event)

    def _acknowledge_in_core(self, core: MonitorCore, ack: AlarmAck) -> list[AlarmEvent]:
        """Acknowledge in the core's engine, recording who (runs under the driver's lock)."""
        core.engine.ack_source = (ack.station_id, self.clock())
        try:
            return core.acknowledge(ack.alarm_id)
        finally:
            core.engine.ack_source = None

    async def _handle_observations(self) -> None:
        while True:
            obs = await self.inbox.observations.get()
            core = self.driver.core
            if core is None:
                logger.info("observations before the stream started: ignored")
                continue
            try:
                out = await self.driver.call(core.add_manual, obs)
            except (ValueError, TypeError) as err:
                logger.warning("observations rejected: %s", err)
                continue
            self._emit(out, time.monotonic_ns())


async def run_until_done(runtime: AgentRuntime, stop: asyncio.Event | None = None) -> RunStats:
    """Run ``runtime`` until its source ends or ``stop`` is set.

    Raises
    ------
    AgentFailureError
        If the runtime failed (its exception is re-raised, never swallowed).
    """
    task = asyncio.create_task(runtime.run())
    if stop is None:
        return await task
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task in done:
        return task.result()  # re-raises the runtime's failure
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return runtime.stats
