"""The pipeline core that the live agent and ``bedside analyze`` share.

One :class:`EcgPipeline` per stream: chunks of ECG go in, detected beats and alarm events come
out. It is synchronous and does no I/O, so the live agent runs it off the event loop
(``asyncio.to_thread``) and offline analysis calls it directly: offline numbers *are* the
live agent's numbers (DESIGN.md, "Data flow").

Ordering: the R-peak detector commits beats up to ``committed_until_idx``, a little behind
the newest sample. Beats and flat-line changes are applied to the alarm rules in stream-time
order up to that point, and time-driven conditions (asystole, pause) are judged just before
each beat and at the committed time, so an alarm's ``onset_s`` is exact to the sample and
does not depend on chunk sizes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Final

import numpy as np
from numpy.typing import NDArray

from agent.alarms.ectopy import EctopyRules, ectopy_condition_specs
from agent.alarms.engine import AlarmEngine, ConditionSpec, Finding
from agent.alarms.rules import EcgRules, ecg_condition_specs
from agent.beats import Beat
from agent.config import AgentConfig
from agent.dsp.flatline import FlatlineChange, FlatlineDetector
from agent.dsp.quality import QualityChange, SignalQualityMonitor
from agent.dsp.rpeaks import RPeak, StreamingRPeakDetector
from agent.inference.beat_classifier import MODEL_NAME as BEAT_MODEL_NAME
from agent.inference.beat_classifier import BeatClassifier, StreamingBeatClassifier
from agent.inference.factory import load_af_detector
from agent.messages import (
    AamiClass,
    AlarmCode,
    AlarmCondition,
    AlarmEvent,
    AlarmPriority,
    EcgStrip,
    News2Parameter,
    News2Summary,
    VitalsMessage,
    utc_now,
)
from agent.rhythm.af import AfChange
from agent.rhythm.vf import MIN_FS_HZ as VF_MIN_FS_HZ
from agent.rhythm.vf import VfDetector
from agent.vitals.alarms import News2Rules
from agent.vitals.edr import EdrRespirationEstimator, qrs_peak_to_peak_uv
from agent.vitals.news2 import News2Result, Param
from agent.vitals.observations import ManualObservations, VitalsStore, stream_time_s
from firmware_bridge.frames import DeviceEvent, DeviceEventKind, Spo2Reading, TemperatureReading

logger = logging.getLogger(__name__)

RING_S: Final = 40.0
"""ECG kept for evidence strips, s: the strip (<= 30 s) plus the detector's commit lag."""

_JUST_BEFORE_S: Final = 1e-6
_PHYSIO: Final = AlarmCondition.PHYSIOLOGICAL

VF_DETECTOR_NAME: Final = "vf_features"
VF_DETECTOR_VERSION: Final = "1"
"""Name/version of the VF detector in alarms' ``model_versions`` (agent.rhythm.vf)."""

EDR_FRESH_S: Final = 60.0
"""An EDR respiration estimate is shown for this long, s."""

NEWS2_PERIOD_S: Final = 1.0
"""NEWS2 is re-scored at most this often (stream time), s."""

MAX_PLAUSIBLE_UV: Final = 50_000.0
"""Samples beyond ±50 mV are not ECG (surface ECG is a few mV; clinical front ends clip
at ±5-10 mV): they are treated as invalid (NaN, i.e. lead-off) and counted."""


@dataclass(frozen=True, slots=True)
class StepOutput:
    """What one call to the pipeline produced.

    Attributes
    ----------
    beats : list[Beat]
        Newly committed beats, in order.
    events : list[AlarmEvent]
        Alarm events to publish, in order.
    committed_s : float
        Stream time up to which everything has been decided, s.
    """

    beats: list[Beat] = field(default_factory=list)
    events: list[AlarmEvent] = field(default_factory=list)
    committed_s: float = 0.0


@dataclass(frozen=True, slots=True)
class DeviceChange:
    """A device event waiting for its place on the stream timeline.

    Attributes
    ----------
    kind : DeviceEventKind
        What happened (link, skin contact, battery).
    t_s : float
        Stream time, s.
    battery_pct : int | None
        Battery level for ``BATTERY`` events, %.
    """

    kind: DeviceEventKind
    t_s: float
    battery_pct: int | None = None


_Pending = FlatlineChange | QualityChange | DeviceChange
_TimelineObj = RPeak | Beat | _Pending
_TimelineItem = tuple[float, RPeak | Beat]


def _news2_summary(result: News2Result) -> News2Summary:
    return News2Summary(
        total=result.total,
        complete=result.complete,
        risk=None if result.risk is None else str(result.risk),
        urgent=result.urgent,
        emergency=result.emergency,
        spo2_scale=int(result.spo2_scale),
        missing=[str(p) for p in result.missing],
        stale=[str(p) for p in result.stale],
        parameters=[
            News2Parameter(
                param=str(ps.param),
                value=ps.value if isinstance(ps.value, bool | int | float) else str(ps.value),
                score=ps.score,
                source=ps.source,
                age_s=round(max(ps.age_s, 0.0), 1),
                stale=ps.stale,
            )
            for ps in result.parameters
        ],
    )


class _Ring:
    """The last ``capacity`` samples of the stream, for ECG strips."""

    def __init__(self, capacity: int) -> None:
        self._buf = np.zeros(capacity, dtype=np.float32)
        self._end = 0  # stream index one past the newest sample

    def push(self, samples: NDArray[np.float32]) -> None:
        n = len(samples)
        cap = len(self._buf)
        if n == 0:
            return
        if n >= cap:
            self._buf[:] = samples[-cap:]
        else:
            self._buf = np.roll(self._buf, -n)
            self._buf[-n:] = samples
        self._end += n

    def window(self, start_idx: int, stop_idx: int) -> tuple[int, NDArray[np.float32]]:
        first = max(start_idx, self._end - len(self._buf), 0)
        stop = min(stop_idx, self._end)
        if stop <= first:
            return first, np.empty(0, dtype=np.float32)
        off = len(self._buf) - self._end
        return first, self._buf[first + off : stop + off]


class EcgPipeline:
    """Conditioner → R-peaks → alarm rules → alarm engine for one ECG stream.

    Parameters
    ----------
    cfg
        The agent configuration (DSP and alarm sections are used).
    fs_hz
        Sampling rate of the samples that will be pushed, Hz.
    stream_start_utc
        Wall-clock time of stream sample 0 (maps ``onset_s`` to ``onset_utc``).
    model_versions
        Name → version of the models that decide, copied into every alarm.
    """

    def __init__(
        self,
        cfg: AgentConfig,
        fs_hz: float,
        *,
        stream_start_utc: datetime | None = None,
        model_versions: dict[str, str] | None = None,
        beat_classifier: BeatClassifier | None = None,
    ) -> None:
        self.cfg = cfg
        self.fs_hz = fs_hz
        self._detector = StreamingRPeakDetector(
            fs_hz, cfg.dsp.powerline_hz, window_s=cfg.dsp.window_s, hop_s=cfg.dsp.hop_s
        )
        self._flat = FlatlineDetector(
            fs_hz, ptp_uv=cfg.dsp.flatline_ptp_uv, min_s=cfg.dsp.flatline_s
        )
        self._quality = SignalQualityMonitor(fs_hz)
        self._ring = _Ring(round(RING_S * fs_hz))
        start_utc = stream_start_utc or utc_now()
        self.rules = EcgRules(cfg.alarms, strip=self._strip)
        self.ectopy = EctopyRules(cfg.alarms.ectopy, strip=self._strip, strip_s=cfg.alarms.strip_s)
        self._labeller = (
            None
            if beat_classifier is None
            else StreamingBeatClassifier(beat_classifier, fs_hz, self._raw_segment)
        )
        self._unlabelled: Beat | None = None  # the newest beat, waiting for its class
        versions = dict(model_versions or {})
        if beat_classifier is not None:
            versions.setdefault(BEAT_MODEL_NAME, beat_classifier.version)
        specs = ecg_condition_specs(cfg.alarms)
        if beat_classifier is not None:
            specs += ectopy_condition_specs(cfg.alarms.ectopy)
        self.vitals_store = VitalsStore()
        self.edr = EdrRespirationEstimator() if cfg.vitals.edr else None
        self._edr_last_s = -math.inf
        self._edr_rate: tuple[float, float] | None = None  # (breaths/min, t_s)
        self.news2_rules = (
            News2Rules(
                onset_delay_s=cfg.vitals.news2_onset_delay_s,
                clear_after_s=cfg.vitals.news2_clear_after_s,
            )
            if cfg.vitals.news2
            else None
        )
        if self.news2_rules is not None:
            specs += self.news2_rules.specs()
        self._af = load_af_detector(cfg.inference)
        self._af_onset_s: float | None = None
        self._af_skip_next = False  # the next beat's RR follows a PVC
        if self._af is not None:
            versions.setdefault(self._af.card.name, self._af.version)
            specs.append(ConditionSpec(AlarmCode.AFIB, AlarmPriority.MEDIUM, _PHYSIO))
        # VF/VFL and a lost sensor link are judged as they happen, not at the R-peak
        # detector's commit horizon (seconds behind; and no samples come while the link is
        # down): they have their own engine, so their alarms are raised at once, and signal
        # quality never suppresses vfib.
        self._vf = VfDetector(fs_hz) if cfg.inference.vf and fs_hz >= VF_MIN_FS_HZ else None
        self._vf_onset_s = 0.0
        self._vf_active = False
        self._disconnected_since_s: float | None = None
        self._reconnect_pending = False
        self.vf_episodes: list[tuple[float, float | None]] = []
        """``(onset_s, end_s)`` of VF/VFL episodes (``end_s`` None while ongoing)."""
        self.af_episodes: list[tuple[float, float | None]] = []
        """``(onset_s, end_s)`` of AF episodes (``end_s`` None while ongoing)."""
        self.fast_engine = AlarmEngine(
            [
                ConditionSpec(
                    AlarmCode.VFIB, AlarmPriority.HIGH, AlarmCondition.PHYSIOLOGICAL, latched=True
                ),
                ConditionSpec(
                    AlarmCode.SENSOR_DISCONNECTED, AlarmPriority.MEDIUM, AlarmCondition.TECHNICAL
                ),
            ],
            device_id=cfg.bed.device_id,
            stream_start_utc=start_utc,
            clear_delay_s=cfg.alarms.clear_delay_s,
            model_versions={VF_DETECTOR_NAME: VF_DETECTOR_VERSION},
        )
        self._news2: News2Result | None = None
        self._news2_last_s = -math.inf
        self._news2_judged_s = -math.inf
        self._news2_findings: list[Finding] = []
        self.engine = AlarmEngine(
            specs,
            device_id=cfg.bed.device_id,
            stream_start_utc=start_utc,
            clear_delay_s=cfg.alarms.clear_delay_s,
            model_versions=versions,
        )
        self._pending: list[_Pending] = []
        self._prev_beat_s: float | None = None
        self.samples_in = 0
        self.samples_implausible = 0
        """Samples rejected by the plausibility gate (non-finite or beyond ±50 mV)."""
        self.beats_total = 0
        self.committed_s = 0.0
        self.values_rejected = 0
        """Vital-sign values rejected as implausible."""

    def process(self, samples_uv: NDArray[np.float32]) -> StepOutput:
        """Push a chunk of ECG; return the beats and alarm events it completed.

        Parameters
        ----------
        samples_uv
            Shape ``(n_samples,)``, float32 ECG in µV at ``fs_hz``, contiguous with the
            previous chunk; NaN marks invalid samples.
        """
        samples = np.asarray(samples_uv, dtype=np.float32)
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(samples) <= MAX_PLAUSIBLE_UV) & ~np.isnan(samples)
        if bad.any():
            samples = np.where(bad, np.float32(np.nan), samples)
            self.samples_implausible += int(bad.sum())
        first_idx = self.samples_in
        self._ring.push(samples)
        self.samples_in += len(samples)
        link_events = self._resume_link(samples, first_idx) if self._reconnect_pending else []
        self._pending.extend(self._flat.push(samples))
        self._pending.extend(self._quality.push(samples))
        vf_events = self._judge_vf(samples)
        step = self._detector.push(samples)
        fs = self.fs_hz
        items: list[_TimelineItem] = [(p.r_peak_idx / fs, p) for p in step.r_peaks]
        out = self._run_timeline(items, step.committed_until_idx / fs)
        out.events[:0] = link_events + vf_events
        return out

    def _judge_vf(self, samples: NDArray[np.float32]) -> list[AlarmEvent]:
        """Run the VF detector on new samples; return the fast engine's events (at once)."""
        fs = self.fs_hz
        events: list[AlarmEvent] = []
        changes = self._vf.push(samples) if self._vf is not None else []
        for change in changes:
            t = change.decided_idx / fs
            if change.rhythm == "VF":
                self._vf_active, self._vf_onset_s = True, change.onset_idx / fs
                self.vf_episodes.append((self._vf_onset_s, None))
            else:
                self._vf_active = False
                if self.vf_episodes and self.vf_episodes[-1][1] is None:
                    self.vf_episodes[-1] = (self.vf_episodes[-1][0], change.onset_idx / fs)
            findings = [self._vf_finding(t, change.probability), self._link_finding(t)]
            events += self.fast_engine.update(t, findings)
        now = self.samples_in / fs
        events += self.fast_engine.update(
            now, [self._vf_finding(now, None), self._link_finding(now)]
        )
        return events

    def _vf_finding(self, t_s: float, probability: float | None) -> Finding:
        if not self._vf_active:
            return Finding(AlarmCode.VFIB, active=False)
        text = "Ventricular fibrillation / flutter"
        if probability is not None:
            text += f" (p={probability:.2f})"
        return Finding(
            AlarmCode.VFIB, True, self._vf_onset_s, text, partial(self.rules.evidence, t_s)
        )

    def process_rr(self, rr_ms: Sequence[float], t_s: float) -> StepOutput:
        """Push RR intervals from a strap with no waveform (BLE Heart Rate Service).

        Parameters
        ----------
        rr_ms
            RR intervals in ms, oldest first, as one notification carries them.
        t_s
            Stream time of the R-peak that ends the last interval, s.

        Notes
        -----
        Beat times are reconstructed backwards from ``t_s``; the beat that starts the first
        interval of a stream (or after a gap) is added without an RR. Beats at or before the
        last beat already applied are ignored (a repeated notification).
        """
        items: list[_TimelineItem] = []
        t = t_s
        times: list[tuple[float, float]] = []
        for rr in reversed(rr_ms):
            times.append((t, float(rr)))
            t -= float(rr) / 1000.0
        times.reverse()
        if times and self._prev_beat_s is None:
            start = times[0][0] - times[0][1] / 1000.0
            if start >= 0.0 and (self.rules.last_beat_s is None or start > self.rules.last_beat_s):
                items.append((start, self._rr_beat(start, None)))
        last = self.rules.last_beat_s
        for t_beat, rr in times:
            if last is None or t_beat > last + 1e-6:
                items.append((t_beat, self._rr_beat(t_beat, rr)))
        return self._run_timeline(items, max(t_s, self.committed_s))

    def device_event(self, event: DeviceEvent) -> StepOutput:
        """Apply a device event (link, skin contact, battery).

        With a waveform, events are placed on the ECG's own time axis: at the newest sample
        received, except a reconnection, which takes effect where real samples resume after
        the NaN the transport fills the gap with (so the gap reads as "disconnected", not as
        leads-off). State changes then wait for the commit horizon, to stay ordered with the
        beats, but ``sensor_disconnected`` is raised and cleared at once (``fast_engine``).
        Without a waveform (RR-only) everything applies at ``event.t_s``.
        """
        out = StepOutput(committed_s=self.committed_s)
        waveform = self.samples_in > 0
        now = self.samples_in / self.fs_hz if waveform else max(event.t_s, self.committed_s)
        if event.kind is DeviceEventKind.CONNECTED and waveform:
            if self._disconnected_since_s is not None:
                self._reconnect_pending = True  # resolved by the next chunk (process)
            return out
        self._pending.append(DeviceChange(event.kind, now, event.battery_pct))
        if event.kind is DeviceEventKind.DISCONNECTED and self._disconnected_since_s is None:
            self._disconnected_since_s = now
            out.events.extend(self.fast_engine.update(now, [self._link_finding(now)]))
        elif event.kind is DeviceEventKind.CONNECTED:
            self._disconnected_since_s = None
            out.events.extend(self.fast_engine.update(now, [self._link_finding(now)]))
        if not waveform:
            rest = self._run_timeline([], now)
            out = StepOutput(rest.beats, out.events + rest.events, rest.committed_s)
        return out

    def _link_finding(self, t_s: float) -> Finding:
        if self._disconnected_since_s is None:
            return Finding(AlarmCode.SENSOR_DISCONNECTED, active=False)
        return Finding(
            AlarmCode.SENSOR_DISCONNECTED,
            True,
            self._disconnected_since_s,
            "ECG sensor disconnected: reconnecting, ECG alarms suspended",
        )

    def _resume_link(self, samples: NDArray[np.float32], first_idx: int) -> list[AlarmEvent]:
        """Apply a pending reconnection at the first real sample of ``samples``."""
        finite = np.flatnonzero(np.isfinite(samples))
        if len(finite) == 0:
            return []
        t = (first_idx + int(finite[0])) / self.fs_hz
        self._reconnect_pending = False
        self._disconnected_since_s = None
        self._pending.append(DeviceChange(DeviceEventKind.CONNECTED, t))
        return self.fast_engine.update(t, [self._link_finding(t)])

    def observe(self, reading: Spo2Reading | TemperatureReading) -> StepOutput:
        """Record a vital sign from another device (oximeter, thermometer).

        An implausible value (SpO2 > 100 %, say) is counted in ``values_rejected`` and
        dropped; it never stops the stream.
        """
        # on the ECG's time axis when there is one: the reading arrived with the newest sample
        t_s = self.samples_in / self.fs_hz if self.samples_in else reading.t_s
        try:
            if isinstance(reading, Spo2Reading):
                self.vitals_store.put_spo2(
                    reading.spo2_pct, source=f"ble:{reading.device}", t_s=t_s
                )
            else:
                self.vitals_store.put_temperature(
                    reading.temperature_c, source=f"ble:{reading.device}", t_s=t_s
                )
        except (ValueError, TypeError) as err:
            self.values_rejected += 1
            logger.warning("vital sign rejected: %s", err)
        return self._after_vitals_input()

    def add_manual(self, obs: ManualObservations, ts_utc: datetime | None = None) -> StepOutput:
        """Record a nurse-station observation message (BP, consciousness, oxygen, ...)."""
        t_s = stream_time_s(ts_utc or obs.ts_utc, self.engine.stream_start_utc)
        self.vitals_store.add_manual(obs, t_s=min(t_s, self.committed_s))
        return self._after_vitals_input()

    def _after_vitals_input(self) -> StepOutput:
        if self.samples_in > 0:  # the waveform clock decides; the next chunk re-scores
            return StepOutput(committed_s=self.committed_s)
        self._news2_last_s = -math.inf
        return self._run_timeline([], self.committed_s)

    def tick(self, t_s: float) -> StepOutput:
        """Advance stream time with no new data (RR-only streams: asystole needs a clock)."""
        if self.samples_in > 0 or t_s <= self.committed_s:
            return StepOutput(committed_s=self.committed_s)
        return self._run_timeline([], t_s)

    def finish(self) -> StepOutput:
        """End of stream: commit what is left, then clear every active alarm."""
        if self.samples_in > 0:
            step = self._detector.flush()
            fs = self.fs_hz
            items: list[_TimelineItem] = [(p.r_peak_idx / fs, p) for p in step.r_peaks]
            end_s = max(step.committed_until_idx, self.samples_in) / fs
            out = self._run_timeline(items, end_s)
        else:
            out = self._run_timeline([], self.committed_s)
        if self.vf_episodes and self.vf_episodes[-1][1] is None:
            self.vf_episodes[-1] = (self.vf_episodes[-1][0], self.samples_in / self.fs_hz)
        if self.af_episodes and self.af_episodes[-1][1] is None:
            self.af_episodes[-1] = (self.af_episodes[-1][0], self.committed_s)
        end = max(self.samples_in / self.fs_hz, self.committed_s)
        out.events.extend(self.fast_engine.clear_all(end))
        n_before = len(out.beats)
        self._flush_unlabelled(out)
        self.beats_total += len(out.beats) - n_before
        out.events.extend(self.engine.update(self.committed_s, self._findings(self.committed_s)))
        out.events.extend(self.engine.clear_all(self.committed_s))
        return out

    def acknowledge(self, alarm_id: str) -> list[AlarmEvent]:
        """Apply a nurse-station acknowledgement; return the events to publish."""
        events = self.engine.acknowledge(alarm_id, self.committed_s)
        now = max(self.samples_in / self.fs_hz, self.committed_s)
        events += self.fast_engine.acknowledge(alarm_id, now)
        return events

    def rhythm_episodes(self) -> dict[str, list[tuple[float, float]]]:
        """Return the rhythm episodes so far, ``{"VF": [(onset_s, end_s), ...], "AFIB": ...}``."""
        now = max(self.samples_in / self.fs_hz, self.committed_s)
        out: dict[str, list[tuple[float, float]]] = {}
        for code, episodes in (("VF", self.vf_episodes), ("AFIB", self.af_episodes)):
            out[code] = [(a, now if b is None else b) for a, b in episodes]
        return out

    @property
    def active_alarms(self) -> list[AlarmEvent]:
        """The latest event of every active alarm, all engines."""
        return self.engine.active + self.fast_engine.active

    def vitals(self, device_id: str, ts_utc: datetime) -> VitalsMessage:
        """Return the current vitals (HR per IEC averaging, last RR, leads-off, alarms)."""
        asystole = self.engine.is_active(AlarmCode.ASYSTOLE)
        hr = 0.0 if asystole else self.rules.hr_bpm
        rr = self.rules.rr_ms
        resp_rate, resp_source = self._respiration()
        return VitalsMessage(
            device_id=device_id,
            ts_utc=ts_utc,
            t_s=round(self.committed_s, 3),
            hr_bpm=None if hr is None else round(hr, 1),
            rr_ms=round(rr[-1], 1) if rr else None,
            beats_total=self.beats_total,
            signal_quality=None if self._quality.sqi is None else round(self._quality.sqi, 3),
            leads_off=self.rules.leads_off,
            active_alarms=[e.condition for e in self.active_alarms],
            spo2_pct=self._latest(Param.SPO2),
            respiration_rate_per_min=resp_rate,
            respiration_source=resp_source,
            temperature_c=self._latest(Param.TEMPERATURE),
            news2=None if self._news2 is None else _news2_summary(self._news2),
            rhythm=self.current_rhythm(),
        )

    def current_rhythm(self) -> str | None:
        """Return the rhythm the detectors currently see (``VF``, ``AFIB``), or None."""
        if self._vf_active:
            return "VF"
        if self._af_onset_s is not None:
            return "AFIB"
        return None

    def _respiration(self) -> tuple[float | None, str | None]:
        """Latest respiration rate for display: a scored one, else a fresh EDR estimate."""
        scored = self._latest(Param.RESPIRATION_RATE)
        if scored is not None:
            return scored, self._source(Param.RESPIRATION_RATE)
        if self._edr_rate is not None and self.committed_s - self._edr_rate[1] <= EDR_FRESH_S:
            return round(self._edr_rate[0], 1), "edr"
        return None, None

    def _latest(self, param: Param) -> float | None:
        obs = self.vitals_store.latest(param)
        if obs is None or isinstance(obs.value, bool) or not isinstance(obs.value, int | float):
            return None
        return round(float(obs.value), 1)

    def _source(self, param: Param) -> str | None:
        obs = self.vitals_store.latest(param)
        return None if obs is None else obs.source

    # -- internals ---------------------------------------------------------------------------

    def _run_timeline(self, items: list[_TimelineItem], committed_s: float) -> StepOutput:
        """Apply beats and pending state changes in stream-time order up to ``committed_s``."""
        timeline: list[tuple[float, int, _TimelineObj]] = [(t, 1, obj) for t, obj in items]
        keep: list[_Pending] = []
        for change in self._pending:
            t = change.t_s if isinstance(change, DeviceChange) else change.onset_idx / self.fs_hz
            if t <= committed_s:
                timeline.append((t, 0, change))
            else:
                keep.append(change)
        self._pending = keep
        timeline.sort(key=lambda item: (item[0], item[1]))
        out = StepOutput()
        for t, _, item in timeline:
            if isinstance(item, RPeak | Beat):
                # a beat: judge the open interval just before it, then add it
                before = t - _JUST_BEFORE_S
                out.events.extend(self.engine.update(before, self._findings(before)))
                beat = self._beat(item, t) if isinstance(item, RPeak) else item
                self._prev_beat_s = t
                self.rules.add_beat(beat)
                if self._af is not None and self._labeller is None and beat.rr_ms is not None:
                    self._apply_af(self._af.push(beat.rr_ms, t))  # no classes: every RR
                self._label(beat, out)
            else:
                if self._apply_change(item, t):
                    self._flush_unlabelled(out)
                    if self._labeller is not None:
                        self._labeller.reset()
                    self.ectopy.reset(t)
                    if self.edr is not None:
                        self.edr.reset()
                    if self._af is not None:
                        self._apply_af(self._af.reset())
            out.events.extend(self.engine.update(t, self._findings(t)))
        if committed_s > self.committed_s:
            self.committed_s = committed_s
        self._update_vitals(self.committed_s)
        out.events.extend(self.engine.update(self.committed_s, self._findings(self.committed_s)))
        if self.samples_in == 0:  # RR-only: nothing else moves the fast engine's clock
            now = self.committed_s
            out.events.extend(self.fast_engine.update(now, [self._link_finding(now)]))
        self.beats_total += len(out.beats)
        return StepOutput(out.beats, out.events, self.committed_s)

    def _apply_af(self, changes: list[AfChange]) -> None:
        for change in changes:
            if change.af:
                self._af_onset_s = change.onset_s
                self.af_episodes.append((change.onset_s, None))
            else:
                self._af_onset_s = None
                if self.af_episodes and self.af_episodes[-1][1] is None:
                    self.af_episodes[-1] = (self.af_episodes[-1][0], change.onset_s)

    def _af_finding(self, t_s: float) -> Finding:
        if self._af_onset_s is None:
            return Finding(AlarmCode.AFIB, active=False)
        p = self._af.probability if self._af is not None else None
        text = "Atrial fibrillation" + (f" (p={p:.2f})" if p is not None else "")
        return Finding(
            AlarmCode.AFIB, True, self._af_onset_s, text, partial(self.rules.evidence, t_s)
        )

    def _findings(self, t_s: float) -> list[Finding]:
        findings = self.rules.findings(t_s)
        if self._af is not None:
            findings.append(self._af_finding(t_s))
        if self._labeller is not None:
            findings += self.ectopy.findings(t_s)
        if self.news2_rules is not None and t_s >= self._news2_judged_s:
            self._news2_judged_s = t_s
            self._news2_findings = self.news2_rules.findings(self._news2, t_s)
        findings += self._news2_findings
        return findings

    def _label(self, beat: Beat, out: StepOutput) -> None:
        """Classify the previous beat now that this one is known (its post-RR)."""
        if self._labeller is None or not np.isfinite(beat.amplitude_uv):
            self._emit_beat(beat, out)
            return
        labelled = self._labeller.push(beat.r_peak_idx, beat.r_peak_time_s)
        prev, self._unlabelled = self._unlabelled, beat
        if prev is None:
            return
        if labelled is not None and labelled.r_peak_idx == prev.r_peak_idx:
            prev = replace(prev, aami_class=labelled.aami_class, confidence=labelled.confidence)
            self.rules.relabel(prev)
        self._emit_beat(prev, out)

    def _flush_unlabelled(self, out: StepOutput) -> None:
        """Emit the beat waiting for its class without one (a gap, or the end of stream)."""
        if self._unlabelled is not None:
            self._emit_beat(self._unlabelled, out)
            self._unlabelled = None

    def _emit_beat(self, beat: Beat, out: StepOutput) -> None:
        """Hand a final beat (labelled, or never to be) to the beat-level consumers."""
        if self._labeller is not None:
            self.ectopy.add_beat(beat)
            if self._af is not None:
                self._feed_af_labelled(beat)
        if self.edr is not None and np.isfinite(beat.amplitude_uv):
            half = int(np.ceil(0.08 * self.fs_hz))
            seg = self._raw_segment(beat.r_peak_idx - half, beat.r_peak_idx + half + 1)
            amp = None if seg is None else qrs_peak_to_peak_uv(seg, half, self.fs_hz)
            self.edr.add(beat, amp)
        out.beats.append(beat)

    def _feed_af_labelled(self, beat: Beat) -> None:
        """Feed the AF detector a labelled beat's RR, leaving out both RR intervals of a PVC.

        A premature ventricular beat makes a short-long RR pair that, repeated (bigeminy,
        frequent PVCs), reads as irregularly irregular; AF is a supraventricular rhythm, so
        those intervals say nothing about it. Only V beats called with at least the ectopy
        rules' confidence are left out (S beats are not: the classifier calls many AF beats S).
        """
        assert self._af is not None  # noqa: S101  (checked by the caller)
        threshold = self.cfg.alarms.ectopy.min_confidence
        ectopic = beat.aami_class is AamiClass.V and (beat.confidence or 1.0) >= threshold
        if beat.rr_ms is not None and not ectopic and not self._af_skip_next:
            self._apply_af(self._af.push(beat.rr_ms, beat.r_peak_time_s))
        self._af_skip_next = ectopic

    def _update_vitals(self, t_s: float) -> None:
        """Refresh the vitals store from the ECG, and NEWS2, at stream time ``t_s``."""
        store = self.vitals_store
        hr = self.rules.hr_bpm
        if hr is not None and not self.engine.is_active(AlarmCode.ASYSTOLE):
            store.put_pulse(min(hr, 350.0), source="ecg", t_s=t_s)
        if self.edr is not None and t_s - self._edr_last_s >= self.cfg.vitals.edr_period_s:
            self._edr_last_s = t_s
            rate = self.edr.rate_per_min(t_s)
            self._edr_rate = (rate, t_s) if rate is not None else self._edr_rate
            if rate is not None and self.cfg.vitals.edr_in_news2:
                store.put_respiration_rate(rate, source="edr", t_s=t_s)
        if self.news2_rules is not None and t_s - self._news2_last_s >= NEWS2_PERIOD_S:
            self._news2_last_s = t_s
            result = store.news2(t_s)
            # NEWS2 is a multi-parameter score: from the ECG pulse alone it would only repeat
            # the heart-rate alarms, so it is published and judged once another vital is known
            others = [p for p in result.parameters if p.param is not Param.PULSE and not p.stale]
            self._news2 = result if result.total is not None and others else None

    def _raw_segment(self, start_idx: int, stop_idx: int) -> NDArray[np.float32] | None:
        """Raw µV samples ``[start, stop)`` of the stream, or None if not all are buffered."""
        first, samples = self._ring.window(start_idx, stop_idx)
        if first != start_idx or len(samples) != stop_idx - start_idx:
            return None
        return samples.copy()

    def _apply_change(self, item: _Pending, t: float) -> bool:
        """Apply a state change; return True when it makes the signal unusable (a gap)."""
        if isinstance(item, FlatlineChange):
            self.rules.set_leads_off(item.flat, t)
            unusable = item.flat
        elif isinstance(item, QualityChange):
            self.rules.set_signal_poor(item.poor, t)
            unusable = item.poor
        else:
            unusable = False
            kind = item.kind
            if kind in {DeviceEventKind.DISCONNECTED, DeviceEventKind.CONNECTED}:
                unusable = kind is DeviceEventKind.DISCONNECTED
                self.rules.set_sensor_disconnected(unusable, t)
            elif kind in {DeviceEventKind.CONTACT_LOST, DeviceEventKind.CONTACT_RESTORED}:
                unusable = kind is DeviceEventKind.CONTACT_LOST
                self.rules.set_leads_off(unusable, t)
            elif kind is DeviceEventKind.BATTERY and item.battery_pct is not None:
                self.rules.set_battery(item.battery_pct, t)
        if unusable:
            self._prev_beat_s = None
        return unusable

    def _beat(self, peak: RPeak, t_s: float) -> Beat:
        rr = None if self._prev_beat_s is None else (t_s - self._prev_beat_s) * 1000.0
        return Beat(
            r_peak_idx=peak.r_peak_idx,
            r_peak_time_s=t_s,
            rr_ms=rr,
            amplitude_uv=peak.amplitude_uv,
        )

    def _rr_beat(self, t_s: float, rr_ms: float | None) -> Beat:
        return Beat(
            r_peak_idx=round(t_s * self.fs_hz),
            r_peak_time_s=t_s,
            rr_ms=rr_ms,
            amplitude_uv=float("nan"),
        )

    def _strip(self, end_s: float, duration_s: float) -> EcgStrip | None:
        fs = self.fs_hz
        stop = round(end_s * fs)
        first, samples = self._ring.window(stop - round(duration_s * fs), stop)
        if len(samples) == 0:
            return None
        clean = np.nan_to_num(samples, nan=0.0)
        return EcgStrip(
            fs_hz=fs,
            t0_s=round(first / fs, 4),
            samples_uv=[int(v) for v in np.rint(clean)],
        )
