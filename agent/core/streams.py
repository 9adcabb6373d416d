"""The two kinds of stream: a waveform, or RR intervals only. Each places time its own way.

- :class:`WaveformMonitor`: the ECG's samples are the clock. Device events and vital signs
  from other devices are placed at the newest sample; a reconnection takes effect where real
  samples resume after the NaN the transport fills the gap with (so the gap reads as
  "disconnected", not as leads-off). Nothing but ECG chunks moves the commit horizon.
- :class:`RrMonitor`: no samples; each notification, device event and tick moves stream time
  to its own time, and everything is judged there.

:func:`build_core` picks one from the stream's first ECG or RR frame.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Final

import numpy as np
from numpy.typing import NDArray

from agent.config import AgentConfig
from agent.core.consumers import VfConsumer
from agent.core.finaliser import BeatFinaliser
from agent.core.frontends import RING_S, RrFrontEnd, WaveformFrontEnd
from agent.core.items import Qrs, Signal, StateChange
from agent.core.monitor import TICK_S, MonitorCore, StepOutput, device_change
from agent.core.timing import StageTimes, timed
from agent.dsp.rpeaks import RPeak
from agent.inference.beat_features import segment_bounds
from agent.inference.bundle import ModelBundle
from agent.messages import AlarmCode, AlarmEvent, utc_now
from agent.rhythm.ventricular import VtChange, VtDetector
from agent.rhythm.vf import MAX_FS_HZ as VF_MAX_FS_HZ
from agent.rhythm.vf import MIN_FS_HZ as VF_MIN_FS_HZ
from agent.rhythm.vf import VfChange
from firmware_bridge.frames import (
    DeviceEvent,
    DeviceEventKind,
    EcgChunk,
    Frame,
    RrIntervals,
    Spo2Reading,
    TemperatureReading,
)

RR_STREAM_FS_HZ: Final = 1000.0
"""Beat sample indices of live RR-only streams are counted in ms."""


class WaveformMonitor(MonitorCore):
    """The core of an ECG waveform stream (see the module docstring).

    Parameters
    ----------
    cfg
        Agent configuration.
    fs_hz
        Sampling rate of the ECG, Hz.
    models
        The loaded models (beat classes, AF, VF).
    stream_start_utc
        Wall-clock time of sample 0.
    stage_times
        Collects the CPU time of each stage when given (``tools.bench``).
    """

    def __init__(
        self,
        cfg: AgentConfig,
        fs_hz: float,
        models: ModelBundle,
        *,
        stream_start_utc: datetime,
        stage_times: StageTimes | None = None,
    ) -> None:
        vf_ok = models.vf is not None and VF_MIN_FS_HZ <= fs_hz <= VF_MAX_FS_HZ
        lookahead_n = segment_bounds(0, fs_hz)[1] if models.beat_classifier is not None else 0
        self.front = WaveformFrontEnd(
            fs_hz, cfg.dsp, models.vf if vf_ok else None, stage_times, lookahead_n
        )
        front = self.front
        finaliser = BeatFinaliser(
            models.beat_classifier,
            fs_hz,
            self.segment,
            stage_times=stage_times,
            prev_beat_corr=(
                cfg.alarms.ectopy.run_min_beat_corr is not None
                or cfg.alarms.ectopy.run_closer_to_dominant is not None
            ),
            dominant=cfg.inference.dominant_template,
        )
        super().__init__(
            cfg,
            fs_hz,
            models,
            stream_start_utc=stream_start_utc,
            finaliser=finaliser,
            strip=front.strip,
            segment=self.segment,
            vf=VfConsumer(fs_hz, lambda t: self.rules.evidence(t)) if vf_ok else None,
            stage_times=stage_times,
        )
        self._reconnect_pending = False
        self._decided_s: dict[int, float] = {}  # R-peak index -> when it reached the timeline
        self._decisions: list[tuple[float, VfChange | VtChange]] = []  # not yet judged
        self._itick_k = 0  # immediate conditions judged at grid times up to this * TICK_S
        self._vt = VtDetector(fs_hz, models.vt) if vf_ok and models.vt is not None else None

    def segment(self, start_idx: int, stop_idx: int) -> NDArray[np.float32] | None:
        """Raw µV samples ``[start, stop)`` for a consumer, or None (the getter consumers get).

        None when not all are held, and when ``start_idx`` is more than
        :data:`agent.core.frontends.RING_S` (40 s) before :attr:`reach_s`, the moment the item
        being applied reached the timeline: what a consumer gets then does not depend on how
        far past that moment the chunk went (the front end holds ``RING_S + MAX_STEP_S``).
        An AF-waveform window judged when its last beat becomes final, one beat late, is
        not judged when the next beat took so long (a VF episode without R-peaks) that its
        first beat lies beyond that reach.
        """
        if start_idx < round((self.reach_s - RING_S) * self.fs_hz):
            return None
        return self.front.segment(start_idx, stop_idx)

    def clock_s(self) -> float:
        """Return the newest sample's stream time, s."""
        return max(self.front.now_s, self.committed_s)

    def sqi(self) -> float | None:
        """Return the latest signal-quality index (0..1), or None before the first window."""
        return self.front.sqi

    def counters(self) -> dict[str, int]:
        """Counters: values rejected, samples implausible or gap-filled."""
        return {
            **super().counters(),
            "samples_implausible": self.front.samples_implausible,
            "samples_gap_filled": self.front.samples_gap_filled,
        }

    def accepts(self, frame: Frame) -> bool:
        """Everything but RR notifications (the waveform is authoritative for beats)."""
        return not isinstance(frame, RrIntervals)

    def _ecg_chunk(self, chunk: EcgChunk) -> StepOutput:
        step = self.front.push(self.front.align(chunk))
        events: list[AlarmEvent] = []
        if self._reconnect_pending:
            events += self._resume_link(step.samples_uv, step.first_idx)
        self.pending.add(step.changes)
        # VF/VFL and waveform-VT decisions are judged at once, never at the commit horizon,
        # in the order they were decided, interleaved with the beats reaching the timeline
        # (the beat-run V-tach), so what is raised first does not depend on chunk sizes
        decisions: list[tuple[int, int, VfChange | VtChange]] = [
            (c.decided_idx, 0, c) for c in step.rhythm
        ]
        if self._vt is not None and self.ventricular is not None:
            vts = timed(self._times, "vt", self._vt.push, step.samples_uv)
            decisions += [(c.decided_idx, 1, c) for c in vts]
        decisions.sort(key=lambda d: (d[0], d[1]))
        self._decisions = [(idx / self.fs_hz, change) for idx, _, change in decisions]
        decided = zip(step.peaks, step.decided_s, strict=True)
        self._decided_s = {peak.r_peak_idx: d for (_, peak), d in decided}
        out = self._advance(step.peaks, step.committed_s)
        self._decided_s = {}
        # no judgement comes before the horizon again (one second of margin)
        self.front.forget_before(round((self.committed_s - 1.0) * self.fs_hz))
        tail = self._judge_until(self.front.now_s)
        return StepOutput(out.beats, events + out.events + tail, out.committed_s)

    def _judge_until(self, until_s: float) -> list[AlarmEvent]:
        """Judge the immediate conditions up to ``until_s`` on the newest sample's clock.

        In stream-time order: each waiting VF/VT decision at the time it was made, and the
        fixed grid (:data:`agent.core.monitor.TICK_S`) for clears, the link and the rate gate;
        a decision comes first at equal times.
        """
        events: list[AlarmEvent] = []
        while True:
            tick_s = (self._itick_k + 1) * TICK_S
            decision_s = self._decisions[0][0] if self._decisions else math.inf
            if min(tick_s, decision_s) > until_s:
                return events
            if decision_s <= tick_s:
                t_s, change = self._decisions.pop(0)
                if isinstance(change, VtChange):
                    if self.ventricular is not None:
                        self.ventricular.feed(change)
                else:
                    for consumer in self.immediate:
                        consumer.feed(change)
            else:
                t_s = tick_s
                self._itick_k += 1
            events += self._judge_immediate(t_s, self.immediate)

    def _decided_at(self, t_s: float) -> float:
        """When the commit horizon reached ``t_s``: the newest sample's time then, s.

        Chunk-independent (:meth:`agent.core.frontends.WaveformFrontEnd.decided_idx_at`):
        the timeline trails the newest sample by the R-peak detector's commitment and the
        classifier's look-ahead, 1.5-3 s, and an alarm it raises is dated by this.
        """
        idx = math.ceil(t_s * self.fs_hz - 1e-6)
        return max(t_s, self.front.decided_idx_at(idx) / self.fs_hz)

    def _item_decided_s(self, item: RPeak | Qrs | StateChange, t_s: float) -> float:
        decided = self._decided_s.get(item.r_peak_idx) if isinstance(item, RPeak) else None
        return self._decided_at(t_s) if decided is None else max(t_s, decided)

    def _beat_decided_s(self, item: RPeak | Qrs) -> float:
        if isinstance(item, RPeak):
            return self._decided_s.get(item.r_peak_idx, self.front.now_s)
        return self.front.now_s

    def _before_beat(self, item: RPeak | Qrs) -> list[AlarmEvent]:
        """Judge what was decided off the timeline before this beat reached it."""
        return self._judge_until(self._beat_decided_s(item))

    def _before_tick(self, decided_s: float) -> list[AlarmEvent]:
        """Judge what was decided off the timeline up to ``decided_s``.

        As before a beat: the VF/VT decisions and the immediate grid up to the moment the
        timeline reached this grid time or state change, so the events come out in the order
        a live agent fed short chunks raises them, whatever the chunk size (session 23: in 30 s
        chunks a ``vfib`` came out before an ``asystole`` raised 21 s earlier).
        """
        return self._judge_until(decided_s)

    def _after_beat(self, item: RPeak | Qrs) -> list[AlarmEvent]:
        """Raise ``vtach`` the moment a beat-run V-tach is decided.

        The beat completing the run reaches the timeline at its ``decided_s``
        (:class:`agent.core.frontends.WaveStep`): that is when a live agent, fed short
        chunks, raises the alarm, whatever the chunk size (offline chunks are 30 s).
        """
        vent = self.ventricular
        if vent is None or self.engine.is_active(AlarmCode.VTACH) or not vent.active:
            return []
        return self._judge_immediate(self._beat_decided_s(item), [vent])

    def _rr(self, frame: RrIntervals) -> StepOutput:
        return StepOutput(committed_s=self.committed_s)

    def _resume_link(self, samples: NDArray[np.float32], first_idx: int) -> list[AlarmEvent]:
        """Apply a pending reconnection at the first real sample of ``samples``."""
        finite = np.flatnonzero(np.isfinite(samples))
        if len(finite) == 0:
            return []
        t = (first_idx + int(finite[0])) / self.fs_hz
        # the link is judged down on the grid through the gap first, as when the gap came in
        # frames of its own: the engine's clear delay runs from the first real sample
        events = self._judge_until(t)
        self._reconnect_pending = False
        change = StateChange(Signal.LINK, False, t)
        self.link.feed(change)
        self.pending.add([change])
        return events + self._judge_immediate(t, [self.link])

    def _device(self, event: DeviceEvent) -> StepOutput:
        now = self.front.now_s
        out = StepOutput(committed_s=self.committed_s)
        if event.kind is DeviceEventKind.CONNECTED:
            if self.link.disconnected:
                self._reconnect_pending = True  # resolved by the next chunk
            return out
        change = device_change(event, now)
        self.pending.add([change])
        if event.kind is DeviceEventKind.DISCONNECTED and not self.link.disconnected:
            self.link.feed(change)
            out.events.extend(self._judge_immediate(now, [self.link]))
        return out

    def _vitals_time_s(self, reading: Spo2Reading | TemperatureReading) -> float:
        return self.front.now_s  # the reading arrived with the newest sample

    def _after_vitals_input(self) -> StepOutput:
        return StepOutput(committed_s=self.committed_s)  # the next chunk re-scores

    def _flush_front(self) -> StepOutput:
        peaks, end_s = self.front.flush()
        out = self._advance(peaks, end_s)
        if self.vf is not None and self.vf.episodes and self.vf.episodes[-1][1] is None:
            self.vf.episodes[-1] = (self.vf.episodes[-1][0], self.front.now_s)
        return out


class RrMonitor(MonitorCore):
    """The core of an RR-only stream (see the module docstring).

    Parameters
    ----------
    cfg
        Agent configuration.
    fs_hz
        Rate at which beat sample indices are counted, Hz.
    models
        The loaded models (AF; the beat classifier and VF need a waveform).
    stream_start_utc
        Wall-clock time of stream time 0.
    """

    def __init__(
        self, cfg: AgentConfig, fs_hz: float, models: ModelBundle, *, stream_start_utc: datetime
    ) -> None:
        self.front = RrFrontEnd(fs_hz)
        finaliser = BeatFinaliser(None, fs_hz, lambda start, stop: None)
        super().__init__(
            cfg,
            fs_hz,
            models,
            stream_start_utc=stream_start_utc,
            finaliser=finaliser,
            strip=None,
            segment=None,
        )

    def accepts(self, frame: Frame) -> bool:
        """Everything but ECG chunks (the stream started without a waveform)."""
        return not isinstance(frame, EcgChunk)

    def _ecg_chunk(self, chunk: EcgChunk) -> StepOutput:
        return StepOutput(committed_s=self.committed_s)

    def _rr(self, frame: RrIntervals) -> StepOutput:
        beats = self.front.beats(
            frame.rr_ms,
            frame.t_s,
            last_beat_s=self.rules.last_beat_s,
            after_gap=self._prev_beat_s is None,
        )
        return self._advance(list(beats), max(frame.t_s, self.committed_s))

    def _device(self, event: DeviceEvent) -> StepOutput:
        now = max(event.t_s, self.committed_s)
        change = device_change(event, now)
        self.pending.add([change])
        events: list[AlarmEvent] = []
        link_change = event.kind is DeviceEventKind.CONNECTED or not self.link.disconnected
        if change.signal is Signal.LINK and link_change:
            self.link.feed(change)
            events += self._judge_immediate(now, [self.link])
        rest = self._advance([], now)
        return StepOutput(rest.beats, events + rest.events, rest.committed_s)

    def tick(self, t_s: float) -> StepOutput:
        """Advance stream time to ``t_s`` with no new beat (asystole needs a clock)."""
        if t_s <= self.committed_s:
            return StepOutput(committed_s=self.committed_s)
        return self._advance([], t_s)

    def _vitals_time_s(self, reading: Spo2Reading | TemperatureReading) -> float:
        return reading.t_s

    def _after_vitals_input(self) -> StepOutput:
        self.vitals_in.rescore()
        return self._advance([], self.committed_s, judge_now=True)

    def _after_commit(self) -> list[AlarmEvent]:
        # no samples move the immediate conditions' clock: the commit horizon does
        return self._judge_immediate(self.committed_s, [self.link])


def build_core(
    cfg: AgentConfig,
    models: ModelBundle,
    first: EcgChunk | RrIntervals,
    *,
    rr_fs_hz: float = RR_STREAM_FS_HZ,
    clock_utc: datetime | None = None,
    stage_times: StageTimes | None = None,
) -> MonitorCore:
    """Build the core for a stream from its first ECG or RR frame.

    Parameters
    ----------
    cfg
        Agent configuration.
    models
        The loaded models.
    first
        The stream's first ECG chunk (waveform) or RR notification (RR only).
    rr_fs_hz
        Rate at which an RR-only stream counts beat sample indices, Hz (an annotation
        file's rate offline, ms live).
    clock_utc
        Wall-clock time now (an RR stream's start is ``clock_utc - first.t_s``).
    stage_times
        Collects the CPU time of each stage when given (``tools.bench``).
    """
    if isinstance(first, EcgChunk):
        return WaveformMonitor(
            cfg, first.fs_hz, models, stream_start_utc=first.t0_utc, stage_times=stage_times
        )
    start = (clock_utc or utc_now()) - timedelta(seconds=first.t_s)
    return RrMonitor(cfg, rr_fs_hz, models, stream_start_utc=start)


__all__ = ["RR_STREAM_FS_HZ", "RrMonitor", "WaveformMonitor", "build_core"]
