"""The synchronous core of one monitored stream: front end → timeline → consumers → one engine.

One :class:`MonitorCore` per stream, built from the stream's first frame:
a waveform stream (ECG chunks) gets a :class:`~agent.core.streams.WaveformMonitor`, an
RR-only stream (a Heart Rate Service strap) an :class:`~agent.core.streams.RrMonitor`
(:func:`agent.core.streams.build_core`). Both take every kind of frame through
:meth:`MonitorCore.step`. The core does no I/O and no waiting: the live agent runs it in a
worker thread and ``bedside analyze`` runs it as fast as the CPU allows, through the same
driver (:mod:`agent.core.driver`), so offline numbers *are* the live agent's numbers.

Each step: the front end turns the frame into items; immediate items (VF/VFL decisions, link
loss) are judged at once; the others wait on the :class:`~agent.core.items.Timeline` for the
commit horizon and are then applied in stream-time order: the open RR interval is judged just
before each beat, each QRS goes to the timing rules, the
:class:`~agent.core.finaliser.BeatFinaliser` turns it into a final classified beat (one beat
late) for the class consumers, and the one
:class:`~agent.alarms.engine.AlarmEngine` turns every finding into alarm events.
"""

from __future__ import annotations

import logging
import math
import statistics
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final

from agent.alarms.ectopy import PACED_PREMATURE_FRACTION
from agent.alarms.engine import AlarmEngine, Finding
from agent.alarms.rules import EcgRules, StripProvider
from agent.beats import Beat
from agent.config import AgentConfig
from agent.core.consumers import (
    AfConsumer,
    Consumer,
    LinkConsumer,
    VfConsumer,
    VitalsConsumer,
)
from agent.core.finaliser import BeatFinaliser
from agent.core.frontends import MAX_STEP_S
from agent.core.items import (
    JUST_BEFORE_S,
    Commit,
    Qrs,
    Signal,
    StateChange,
    Timeline,
    TimelineItem,
)
from agent.core.timing import StageTimes, timed
from agent.core.vitals import vitals_message
from agent.dsp.rpeaks import RPeak
from agent.inference.beat_classifier import MODEL_NAME as BEAT_MODEL_NAME
from agent.inference.beat_classifier import SegmentGetter
from agent.inference.bundle import ModelBundle
from agent.messages import (
    AamiClass,
    AlarmCode,
    AlarmEvent,
    ManualObservations,
    VitalsMessage,
)
from agent.rhythm.af import AfDetector
from agent.rhythm.af_wave import FusedAfDetector, PWaveVetoAfDetector
from agent.rhythm.ventricular import EctopyBeatRuns, VentricularConsumer
from agent.vitals.observations import stream_time_s
from firmware_bridge.frames import (
    DeviceEvent,
    DeviceEventKind,
    EcgChunk,
    Frame,
    RrIntervals,
    Spo2Reading,
    TemperatureReading,
)

logger = logging.getLogger(__name__)

RELABEL_BASELINE_BEATS: Final = 8
"""The S and V relabels compare a beat's RR with the conducted beats among the last 8 beats."""

RELABEL_BASELINE_MIN: Final = 4
"""... and need at least 4 of them (after the start, or in runs of ectopy, the label stands)."""

_DEVICE_SIGNALS: Final = {
    DeviceEventKind.DISCONNECTED: (Signal.LINK, True),
    DeviceEventKind.CONNECTED: (Signal.LINK, False),
    DeviceEventKind.CONTACT_LOST: (Signal.CONTACT, True),
    DeviceEventKind.CONTACT_RESTORED: (Signal.CONTACT, False),
    DeviceEventKind.BATTERY: (Signal.BATTERY, True),
}


@dataclass(frozen=True, slots=True)
class StepOutput:
    """What one step of the core produced.

    Attributes
    ----------
    beats : list[Beat]
        Beats made final by this step (classified, one beat late), in order.
    events : list[AlarmEvent]
        Alarm events to publish, in order.
    committed_s : float
        Stream time up to which everything has been decided, s.
    """

    beats: list[Beat] = field(default_factory=list)
    events: list[AlarmEvent] = field(default_factory=list)
    committed_s: float = 0.0


def _closed(
    episodes: Sequence[tuple[float, float | None]], now_s: float
) -> list[tuple[float, float]]:
    """Return ``(start_s, end_s)`` episodes, an open one (``end_s`` None) ended at ``now_s``."""
    return [(a, now_s if b is None else b) for a, b in episodes]


class MonitorCore(ABC):
    """What both kinds of stream share: timeline walk, consumers, the engine, vitals.

    Parameters
    ----------
    cfg
        Agent configuration.
    fs_hz
        Rate of the stream's sample indices, Hz.
    models
        The loaded models (:func:`agent.inference.bundle.load_models`).
    stream_start_utc
        Wall-clock time of stream time 0 (maps ``onset_s`` to ``onset_utc``).
    finaliser, strip, segment, vf
        Set by the subclass for its input kind.
    stage_times
        Collects the CPU time of the timeline walk (``timeline``) when given.
    """

    def __init__(
        self,
        cfg: AgentConfig,
        fs_hz: float,
        models: ModelBundle,
        *,
        stream_start_utc: datetime,
        finaliser: BeatFinaliser,
        strip: StripProvider | None,
        segment: SegmentGetter | None,
        vf: VfConsumer | None = None,
        stage_times: StageTimes | None = None,
    ) -> None:
        self._times = stage_times
        self.cfg, self.fs_hz = cfg, fs_hz
        self._finaliser = finaliser
        # (class, RR ms) of the last beats as labelled before the S and V relabels
        self._recent_labels: deque[tuple[AamiClass | None, float | None]] = deque(
            maxlen=RELABEL_BASELINE_BEATS
        )
        # the last two beats as reported (after the relabels), newest last
        self._reported: deque[Beat] = deque(maxlen=2)
        self.rules = EcgRules(cfg.alarms, strip=strip, beats=finaliser.recent)
        versions: dict[str, str] = {}
        self.timeline: list[Consumer] = [self.rules]
        self.af: AfConsumer | None = None
        if models.af is not None:
            detector: AfDetector
            if segment is not None and models.af_wave is not None:
                # ECG streams: RR LSTM fused with the waveform AF path
                detector = FusedAfDetector(models.af, fs_hz, segment, models.af_wave)
            elif segment is not None and cfg.inference.af_p_wave_veto:
                detector = PWaveVetoAfDetector(models.af, fs_hz, segment)
            else:
                detector = AfDetector(model=models.af)
            self.af = AfConsumer(
                detector,
                cfg.alarms.ectopy.min_confidence,
                self.rules.evidence,
                cfg.alarms.afib_min_duration_s,
                cfg.alarms.afib_clear_after_s,
            )
            versions[models.af.card.name] = models.af.card.version
            self.timeline.append(self.af)
        beat_runs: EctopyBeatRuns | None = None
        if finaliser.classifier is not None:
            versions[BEAT_MODEL_NAME] = finaliser.classifier.version
            # the ectopy rules without vtach: their beat-run V-tach is one input of the one
            # ventricular decision (agent.rhythm.ventricular), which owns the vtach alarm
            beat_runs = EctopyBeatRuns(
                cfg.alarms.ectopy,
                strip=strip,
                strip_s=cfg.alarms.strip_s,
                paced=cfg.patient.paced,  # paced beats never count as PVCs (bedside run too)
            )
            self.timeline.append(beat_runs)
        self.vitals_in = VitalsConsumer(
            cfg.vitals, fs_hz, segment, lambda: self.rules.hr_bpm, self._asystole
        )
        self.timeline.append(self.vitals_in)
        self.vf, self.link = vf, LinkConsumer()
        self.ventricular = (
            VentricularConsumer(fs_hz, self.rules.evidence, beat_runs)
            if segment is not None
            else None
        )
        self.immediate: list[Consumer] = [
            c for c in (vf, self.ventricular, self.link) if c is not None
        ]
        if beat_runs is not None:  # the ectopy alarms' chain ends under vtach and vfib
            beat_runs.lethal = self._lethal_now
        self.engine = AlarmEngine(
            [s for c in self.timeline + self.immediate for s in c.specs],
            device_id=cfg.bed.device_id,
            stream_start_utc=stream_start_utc,
            clear_delay_s=cfg.alarms.clear_delay_s,
            model_versions=versions,
        )
        self.committed_s = 0.0
        self._tick_k = 0  # the timeline was judged at grid times up to _tick_k * TICK_S
        self._advance_to_s = 0.0  # the horizon of the walk in progress
        self.reach_s = 0.0
        """When the timeline item being applied reached the timeline (the newest sample's
        stream time then, s): how far back a consumer may ask for raw ECG is measured from
        it (:meth:`agent.core.streams.WaveformMonitor.segment`), not from the chunk's end."""
        self.beats_total = 0
        self.values_rejected = 0
        """Vital-sign values rejected as implausible."""
        self._prev_beat_s: float | None = None  # the last beat; None at the start or a gap
        self.pending = Timeline()
        """State changes waiting for the commit horizon."""

    def _lethal_now(self) -> bool:
        """Whether ``vtach`` or ``vfib`` is true now (the immediate decisions applied so far).

        The top of the ventricular ectopy alarms' chain (:mod:`agent.alarms.ectopy`, "Alarm
        chain under V-tach and VF"); asked when a beat pattern is decided.
        """
        vf = self.vf is not None and self.vf.active
        return vf or (self.ventricular is not None and self.ventricular.active)

    # -- what subclasses provide -------------------------------------------------------------

    def clock_s(self) -> float:
        """Return the newest stream time known (at or past the commit horizon), s."""
        return self.committed_s

    def counters(self) -> dict[str, int]:
        """Integer counters of this stream (published in ``status``)."""
        return {"values_rejected": self.values_rejected}

    def sqi(self) -> float | None:
        """Return the latest signal-quality index, or None."""
        return None

    @abstractmethod
    def _ecg_chunk(self, chunk: EcgChunk) -> StepOutput:
        """Apply an ECG chunk."""

    @abstractmethod
    def _rr(self, frame: RrIntervals) -> StepOutput:
        """Apply an RR notification."""

    @abstractmethod
    def _device(self, event: DeviceEvent) -> StepOutput:
        """Apply a device event (link, contact, battery), on this stream's clock."""

    @abstractmethod
    def _vitals_time_s(self, reading: Spo2Reading | TemperatureReading) -> float:
        """Stream time at which a reading from another device is placed, s."""

    @abstractmethod
    def _after_vitals_input(self) -> StepOutput:
        """Re-judge after a vital-sign input (at once, or at the next chunk)."""

    def tick(self, t_s: float) -> StepOutput:
        """Advance stream time with no new data (RR-only streams: asystole needs a clock)."""
        return StepOutput(committed_s=self.committed_s)

    def _flush_front(self) -> StepOutput:
        return self._advance([], self.committed_s)

    # -- the one entry point ---------------------------------------------------------------

    def step(self, frame: Frame) -> StepOutput:
        """Apply one frame of any kind; return the beats and alarm events it completed.

        A chunk of the wrong kind for this stream (ECG on an RR-only stream, RR
        notifications beside a waveform, which is authoritative for beats) is ignored:
        see :meth:`accepts`.
        """
        if isinstance(frame, EcgChunk):
            return self._ecg_pieces(frame)
        if isinstance(frame, RrIntervals):
            return self._rr(frame)
        if isinstance(frame, DeviceEvent):
            if frame.kind is DeviceEventKind.END_OF_STREAM:
                return StepOutput(committed_s=self.committed_s)
            return self._device(frame)
        return self.observe(frame)

    def _ecg_pieces(self, chunk: EcgChunk) -> StepOutput:
        """Step an ECG chunk, in pieces of at most ``MAX_STEP_S`` when it is longer."""
        max_n = max(1, round(MAX_STEP_S * chunk.fs_hz))
        if len(chunk.samples_uv) <= max_n:
            return self._ecg_chunk(chunk)
        beats: list[Beat] = []
        events: list[AlarmEvent] = []
        committed_s = self.committed_s
        rest: EcgChunk | None = chunk
        while rest is not None:
            piece, rest = rest.split(max_n) if len(rest.samples_uv) > max_n else (rest, None)
            part = self._ecg_chunk(piece)
            beats += part.beats
            events += part.events
            committed_s = part.committed_s
        return StepOutput(beats, events, committed_s)

    @abstractmethod
    def accepts(self, frame: Frame) -> bool:
        """Whether this stream uses ``frame`` (False: count it as ignored)."""

    def observe(self, reading: Spo2Reading | TemperatureReading) -> StepOutput:
        """Record a vital sign from another device (oximeter, thermometer).

        An implausible value (SpO2 > 100 %, say) is counted in ``values_rejected`` and
        dropped; it never stops the stream.
        """
        t_s = self._vitals_time_s(reading)
        store = self.vitals_in.store
        try:
            if isinstance(reading, Spo2Reading):
                store.put_spo2(reading.spo2_pct, source=f"ble:{reading.device}", t_s=t_s)
            else:
                store.put_temperature(
                    reading.temperature_c, source=f"ble:{reading.device}", t_s=t_s
                )
        except (ValueError, TypeError) as err:
            self.values_rejected += 1
            logger.warning("vital sign rejected: %s", err)
        return self._after_vitals_input()

    def add_manual(self, obs: ManualObservations, ts_utc: datetime | None = None) -> StepOutput:
        """Record a nurse-station observation message (BP, consciousness, oxygen, ...).

        Raises
        ------
        ValueError, TypeError
            If a value is implausible (nothing is stored then).
        """
        t_s = stream_time_s(ts_utc or obs.ts_utc, self.engine.stream_start_utc)
        self.vitals_in.store.add_manual(obs, t_s=min(t_s, self.committed_s))
        return self._after_vitals_input()

    def finish(self) -> StepOutput:
        """End of stream: commit what is left, then clear every active alarm."""
        out = self._flush_front()
        events = out.events
        if self.af is not None and self.af.episodes and self.af.episodes[-1][1] is None:
            self.af.episodes[-1] = (self.af.episodes[-1][0], self.committed_s)
        if self.ventricular is not None:
            self.ventricular.close(self.clock_s())
        events += self.engine.clear_all(self.clock_s(), immediate=True)
        beats = out.beats
        n_before = len(beats)
        self._finalise(self._finaliser.flush(), beats)
        self.beats_total += len(beats) - n_before
        events += self.engine.update(self.committed_s, self._findings(self.committed_s))
        events += self.engine.clear_all(self.committed_s, immediate=False)
        return StepOutput(beats, events, self.committed_s)

    def acknowledge(self, alarm_id: str) -> list[AlarmEvent]:
        """Apply a nurse-station acknowledgement; return the events to publish."""
        return self.engine.acknowledge(alarm_id, self.committed_s, self.clock_s())

    def rhythm_episodes(self) -> dict[str, list[tuple[float, float]]]:
        """Return the rhythm episodes so far, ``{"VF": [(onset_s, end_s), ...], "AFIB": ...}``."""
        now = self.clock_s()
        out: dict[str, list[tuple[float, float]]] = {}
        vf = self.vf.episodes if self.vf is not None else []
        af = self.af.episodes if self.af is not None else []
        vt = self.ventricular.episodes if self.ventricular is not None else []
        for code, episodes in (("VF", vf), ("AFIB", af), ("VT", vt)):
            out[code] = _closed(episodes, now)
        return out

    def lead_reversed_episodes(self) -> list[tuple[float, float]]:
        """Return ``(start_s, end_s)`` of the stretches where the ECG lead looked reversed.

        Judged by the beat classifier's :class:`~agent.inference.beat_features.LeadPolarityMonitor`
        (QRS and T wave both upside down); empty without a classifier.
        """
        lead = self._finaliser.lead
        if lead is None:
            return []
        return _closed(lead.episodes, self.clock_s())

    def current_rhythm(self) -> str | None:
        """Return the rhythm the detectors see now (``VF``, ``VT``, ``AFIB``), or None."""
        if self.vf is not None and self.vf.active:
            return "VF"
        if self.ventricular is not None and self.ventricular.active:
            return "VT"
        if self.af is not None and self.af.onset_s is not None:
            return "AFIB"
        return None

    def vitals(self, device_id: str, ts_utc: datetime) -> VitalsMessage:
        """Return the current vitals (HR per IEC averaging, last RR, leads-off, alarms, NEWS2)."""
        return vitals_message(self, device_id, ts_utc)

    # -- the timeline walk -----------------------------------------------------------------

    def _asystole(self) -> bool:
        return self.engine.is_active(AlarmCode.ASYSTOLE)

    def _findings(self, t_s: float) -> list[Finding]:
        return [f for c in self.timeline for f in c.findings(t_s)]

    def judge(self, t_s: float, *, raised_s: float | None = None) -> list[AlarmEvent]:
        """Judge the timeline's consumers at stream time ``t_s``; return the alarm events.

        Skipped, with the same result, when the engine is idle (no alarm active or waiting
        on its onset delay) and every timeline consumer says its findings stay false past
        ``t_s`` (:meth:`agent.core.consumers.Consumer.idle_until_s`): the engine given only
        false findings does nothing. Most judgements are such (issue 11: over the 48 mitdb
        records 35 % of the judgements are made, ``python -m tools.judgements``). ``raised_s``
        as in :meth:`agent.alarms.engine.AlarmEngine.update`.
        """
        if self._idle(t_s, self.timeline):
            return []
        return self.engine.update(t_s, self._findings(t_s), raised_s=raised_s)

    def _idle(self, t_s: float, consumers: list[Consumer]) -> bool:
        if not self.engine.idle:
            return False
        limit_s = t_s + IDLE_MARGIN_S
        return all(consumer.idle_until_s(t_s) > limit_s for consumer in consumers)

    def _judge_immediate(self, t_s: float, consumers: list[Consumer]) -> list[AlarmEvent]:
        """Judge immediate consumers at ``t_s`` (skipped when idle, as :meth:`judge`)."""
        if self._idle(t_s, consumers):
            return []
        return self.engine.update(t_s, [f for c in consumers for f in c.findings(t_s)])

    def _feed(self, item: TimelineItem) -> None:
        for consumer in self.timeline:
            consumer.feed(item)

    def _finalise(self, beats: list[Beat], out: list[Beat]) -> None:
        for beat in beats:
            beat = self._s_in_af(beat)
            labelled = (beat.aami_class, beat.rr_ms)
            beat = self._s_not_premature(beat)
            beat = self._v_dominant(beat)
            self._recent_labels.append(labelled)
            self._reported.append(beat)
            self._feed(beat)
            out.append(beat)

    def _v_dominant(self, beat: Beat) -> Beat:
        """Report a V-labelled beat N when it is the patient's own beat (``v_dominant_as_n``).

        The ectopy rules' dominant-beat test (:mod:`agent.alarms.ectopy`, "the patient's own
        beat") applied to the label itself: a beat the CNN calls V whose QRS matches the
        patient's dominant-beat template (``inference.dominant_template``; ``template_corr >=
        alarms.ectopy.v_template_match``, 0.95) and that is not premature (RR at least
        :data:`~agent.alarms.ectopy.PACED_PREMATURE_FRACTION`, 0.8, of the median RR of the
        N- or S-labelled beats among the last 8, at least 4 of them) is a conducted beat the
        cross-patient CNN read as ventricular, e.g. a bundle-branch-block QRS (AAMI EC57 maps
        L and R beats to N). The same two thresholds were chosen for the alarms on DS1 + svdb
        out of fold; applied to the labels, out of fold: V Se / +P DS1 88.83 / 74.63 -> 88.60 /
        81.61, svdb 86.43 / 84.17 -> 85.97 / 85.99 (``docs/beat_classifier.md``, session 14).
        A template-matching beat whose own RR is short because it follows a single V beat
        unlike the template (an extra detection) is judged from the conducted beat before
        that V (:meth:`_on_time_after_one_v`). The confidence stays the classifier's.
        """
        limit = self.cfg.alarms.ectopy.v_template_match
        corr, rr = beat.template_corr, beat.rr_ms
        if (
            beat.aami_class is not AamiClass.V
            or not self.cfg.inference.v_dominant_as_n
            or limit is None
            or corr is None
            or not math.isfinite(corr)
            or corr < limit
            or rr is None
        ):
            return beat
        base = self._baseline_ms((AamiClass.N, AamiClass.S))
        if base is None:
            return beat  # no conducted baseline yet (the start, a run of ectopy): the label stands
        if rr >= PACED_PREMATURE_FRACTION * base or self._on_time_after_one_v(rr, limit, base):
            return self._relabel(beat, AamiClass.N)
        return self._premature_match_as_s(beat, corr)

    def _premature_match_as_s(self, beat: Beat, corr: float) -> Beat:
        """Report a premature V-labelled beat with the conducted QRS S (``v_premature_match_as_s``).

        A premature complex whose QRS matches the patient's on-time template (``corr`` at
        least the setting) was conducted through the ventricles the normal way: a premature
        supraventricular beat (AAMI EC57 class S), not a PVC, which is both early and unlike
        the conducted QRS (module :mod:`agent.alarms.ectopy`, "the patient's own beat").
        Called by :meth:`_v_dominant` for a beat it found premature: RR below
        :data:`~agent.alarms.ectopy.PACED_PREMATURE_FRACTION` (80 %) of the median RR of the
        N- or S-labelled beats among the last 8 (at least 4 of them; in a run of V beats there
        are none, so a ventricular rhythm keeps its labels).
        Measured out of fold on DS1 + svdb (``docs/beat_classifier.md``, session 28).
        """
        limit = self.cfg.inference.v_premature_match_as_s
        if limit is None or corr < limit:
            return beat
        return self._relabel(beat, AamiClass.S)

    def _on_time_after_one_v(self, rr_ms: float, limit: float, base_ms: float) -> bool:
        """Say whether a beat is on time counted from the conducted beat before one V beat.

        The ectopy rules' test of the same name (:meth:`agent.alarms.ectopy.EctopyRules.
        _on_time_after_one_v`) applied to the label: when the beat reported before this one is
        a single V beat (the one before it reported N or S) that does not match the patient's
        template (``template_corr`` below ``limit``, or none), that V is an extra detection
        (a noise spike, a tall T wave) or an interpolated PVC, neither of which resets the
        patient's rhythm; this beat is then on time when its RR and the V beat's together lie
        within 80 % (:data:`~agent.alarms.ectopy.PACED_PREMATURE_FRACTION`) and 120 % of the
        median RR of the N- or S-labelled beats among the last 8 (``base_ms``).
        Measured out of fold on svdb and DS1 (``docs/beat_classifier.md``, session 28).
        """
        if len(self._reported) < 2:
            return False
        before, between = self._reported
        if between.aami_class is not AamiClass.V or before.aami_class not in (
            AamiClass.N,
            AamiClass.S,
        ):
            return False
        corr, rr_between = between.template_corr, between.rr_ms
        if corr is not None and math.isfinite(corr) and corr >= limit:
            return False  # a template-matching premature pair stays one (as the ectopy rules)
        if rr_between is None or not math.isfinite(rr_between):
            return False
        low = PACED_PREMATURE_FRACTION
        return low * base_ms <= rr_between + rr_ms < (2.0 - low) * base_ms

    def _s_not_premature(self, beat: Beat) -> Beat:
        """Report an S-labelled beat N when it is not premature (``inference.s_premature``).

        Every beat of AAMI class S is a *premature* supraventricular beat (AAMI EC57:2012
        Table 1: atrial, aberrated atrial, nodal and supraventricular premature beats; escape
        beats are class N). A beat the classifier calls S whose RR interval is at least
        ``s_premature`` (0.9) of the median RR of the N-labelled beats among the last
        :data:`RELABEL_BASELINE_BEATS` (8; at least :data:`RELABEL_BASELINE_MIN` of them, else
        the label stands) is therefore reported N. Chosen on DS1 + svdb out of fold (each record's
        labels from the beat fold model that never saw it, ``tools/beats/folds``), from off,
        0.95, 0.9 and 0.85: S Se / +P DS1 59.75 / 44.24 -> 58.16 / 46.56, svdb 66.07 / 56.12
        -> 65.77 / 62.48 at 0.9 (0.85: 55.72 / 47.43 and 64.89 / 64.49). The confidence stays
        the classifier's.
        """
        frac = self.cfg.inference.s_premature
        rr = beat.rr_ms
        if beat.aami_class is not AamiClass.S or frac is None or rr is None:
            return beat
        if not self._on_time(rr, (AamiClass.N,), frac):
            return beat
        return self._relabel(beat, AamiClass.N)

    def _on_time(self, rr_ms: float, classes: tuple[AamiClass, ...], fraction: float) -> bool:
        """Say whether a beat is on time against the recent beats labelled one of ``classes``.

        True when ``rr_ms`` is at least ``fraction`` of the median RR of those among the last
        :data:`RELABEL_BASELINE_BEATS`; False without at least :data:`RELABEL_BASELINE_MIN` of
        them.
        """
        base = self._baseline_ms(classes)
        return base is not None and rr_ms >= fraction * base

    def _baseline_ms(self, classes: tuple[AamiClass, ...]) -> float | None:
        """Median RR, ms, of the recent beats labelled one of ``classes``; None with too few.

        Over the last :data:`RELABEL_BASELINE_BEATS` as the classifier labelled them; None
        without at least :data:`RELABEL_BASELINE_MIN` of them.
        """
        base = [
            r for c, r in self._recent_labels if c in classes and r is not None and math.isfinite(r)
        ]
        return statistics.median(base) if len(base) >= RELABEL_BASELINE_MIN else None

    def _relabel(self, beat: Beat, aami_class: AamiClass) -> Beat:
        """Return the beat relabelled (confidence kept), amended in the finaliser's history."""
        beat = replace(beat, aami_class=aami_class)
        self._finaliser.amend(beat)
        return beat

    def _s_in_af(self, beat: Beat) -> Beat:
        """Report an S-labelled beat N while AF is called (``inference.s_in_af_as_n``).

        A premature supraventricular beat (AAMI class S) is premature against a regular atrial
        rhythm; in atrial fibrillation or flutter there is none, and the MIT-BIH annotators
        label conducted beats in AF ``N`` (AAMI EC57 maps them to class N). The RR features
        that make a beat S are what AF does to every beat, so the classifier calls many AF
        beats S. Causal: the AF state is the one decided before this beat reached the timeline
        (the RR model confirms AF some 30-60 s after its onset, and S labels stay until then).
        The confidence stays the classifier's (how sure it was of a supraventricular beat).
        Measured on MIT-BIH DS2 (``reports/beats.md``, a column with the rule off) and svdb
        (``docs/beat_classifier.md``).
        """
        if (
            beat.aami_class is not AamiClass.S
            or self.af is None
            or self.af.onset_s is None
            or not self.cfg.inference.s_in_af_as_n
        ):
            return beat
        return self._relabel(beat, AamiClass.N)

    def _advance(
        self,
        beats: Sequence[tuple[float, RPeak | Qrs]],
        committed_s: float,
        *,
        judge_now: bool = False,
    ) -> StepOutput:
        """Apply beats and waiting state changes in stream-time order up to ``committed_s``.

        Between items the timeline is judged on a fixed grid (:data:`TICK_S`), not at the
        horizon a chunk happened to end on; ``judge_now`` judges at ``committed_s`` as well
        (a vital sign that just came in).
        """
        return timed(self._times, "timeline", self._walk, beats, committed_s, judge_now)

    def _ticks(self, until_s: float, *, inclusive: bool) -> list[AlarmEvent]:
        """Commit and judge the timeline at the grid times up to ``until_s``."""
        events: list[AlarmEvent] = []
        while True:
            t = (self._tick_k + 1) * TICK_S
            if t > until_s or (not inclusive and t >= until_s):
                return events
            self._tick_k += 1
            self.reach_s = self._decided_at(t)
            events += self._before_tick(self.reach_s)
            if self._tick_k % COMMIT_EVERY_TICKS == 0:
                self._feed(Commit(t))  # vitals, EDR and NEWS2 refresh once a second
            events += self.judge(t, raised_s=self.reach_s)

    def _walk(
        self, beats: Sequence[tuple[float, RPeak | Qrs]], committed_s: float, judge_now: bool
    ) -> StepOutput:
        final: list[Beat] = []
        events: list[AlarmEvent] = []
        self._advance_to_s = max(self.committed_s, committed_s)
        for t, item in self.pending.drain(beats, committed_s):
            events += self._ticks(t, inclusive=False)
            decided_s = self._item_decided_s(item, t)
            self.reach_s = decided_s
            if isinstance(item, StateChange):
                events += self._before_tick(decided_s)
                if item.unusable:  # a gap: the waiting beat goes unclassified, RR restarts
                    self._prev_beat_s = None
                    self._finalise(self._finaliser.flush(), final)
                self._feed(item)
            else:
                events += self._before_beat(item)
                before = t - JUST_BEFORE_S
                events += self.judge(before, raised_s=decided_s)
                qrs = item if isinstance(item, Qrs) else self._qrs(item, t)
                self._prev_beat_s = t
                self._feed(qrs)
                self._finalise(self._finaliser.push(qrs), final)
            events += self.judge(t, raised_s=decided_s)
            if not isinstance(item, StateChange):
                events += self._after_beat(item)
        self.committed_s = max(self.committed_s, committed_s)
        events += self._ticks(self.committed_s, inclusive=True)
        if judge_now:
            now = self.committed_s
            self.reach_s = self._decided_at(now)
            self._feed(Commit(now))
            events += self.judge(now, raised_s=self.reach_s)
        events += self._after_commit()
        self.beats_total += len(final)
        return StepOutput(final, events, self.committed_s)

    def _after_commit(self) -> list[AlarmEvent]:
        return []

    def _decided_at(self, t_s: float) -> float:
        """Stream time of the newest sample when the timeline is judged at ``t_s``.

        Here (RR-only streams) the horizon the walk advances to: the notification that
        carried the beats, or the clock tick. The waveform stream dates it by when every
        bound on its horizon reached ``t_s``.
        """
        return max(t_s, self._advance_to_s)

    def _item_decided_s(self, item: RPeak | Qrs | StateChange, t_s: float) -> float:
        """Stream time of the newest sample when ``item`` (at ``t_s``) reached the timeline."""
        return self._decided_at(t_s)

    def _before_beat(self, item: RPeak | Qrs) -> list[AlarmEvent]:
        """Judge what was decided outside the timeline before this beat reached it (none)."""
        return []

    def _before_tick(self, decided_s: float) -> list[AlarmEvent]:
        """Judge what was decided outside the timeline before ``decided_s`` (none here).

        Called before the timeline is judged at a grid time or a state change that reached
        it at ``decided_s`` (the newest sample's stream time then).
        """
        return []

    def _after_beat(self, item: RPeak | Qrs) -> list[AlarmEvent]:
        """Judge what a beat just put on the timeline decided outside it (none here)."""
        return []

    def _qrs(self, peak: RPeak, t_s: float) -> Qrs:
        rr = None if self._prev_beat_s is None else (t_s - self._prev_beat_s) * 1000.0
        return Qrs(peak.r_peak_idx, t_s, rr, peak.amplitude_uv)


IDLE_MARGIN_S: Final = 1e-6
"""A consumer idle until ``T`` is judged anyway from ``T - IDLE_MARGIN_S`` on (its findings
compare ``t_s - since_s`` with a limit, which rounds differently from ``t_s`` with
``since_s + limit``)."""

TICK_S: Final = 0.25
"""Between beats the timeline is committed and judged every ``TICK_S`` of stream time, on a
fixed grid: a condition that becomes true between beats (asystole, a pause, an HR limit's
delay running out) is raised at the first grid time after it, whatever the chunk size (the
live agent's 0.25 s chunks, ``bedside analyze``'s 30 s ones)."""
COMMIT_EVERY_TICKS: Final = 4
"""Every 4th grid time (once a second) the timeline's consumers also get a ``Commit``: the
vitals store takes the heart rate, EDR and NEWS2 (``NEWS2_PERIOD_S`` = 1 s) refresh."""


def device_change(event: DeviceEvent, t_s: float) -> StateChange:
    """Return the timeline item of a device event, placed at stream time ``t_s``."""
    signal, active = _DEVICE_SIGNALS[event.kind]
    return StateChange(signal, active, t_s, event.battery_pct)


__all__ = ["MonitorCore", "StepOutput", "device_change"]
