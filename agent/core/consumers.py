"""Consumers: the rules and detectors that read the timeline and say what is true.

Every consumer speaks one small protocol (:class:`Consumer`): it declares the alarm conditions
it judges (``specs``), is fed items in stream-time order (``feed``), and gives its verdicts at
any stream time (``findings``). The core (:mod:`agent.core.monitor`) feeds them and hands every
finding to the one alarm engine.

A consumer is either on the *timeline* (fed at the commit horizon, in order with the beats:
ECG rules, ectopy, AF, vitals/NEWS2) or *immediate* (fed the moment its input is decided:
VF/VFL, the sensor link); its conditions carry ``ConditionSpec.immediate``. The ECG rules
(:class:`agent.alarms.rules.EcgRules`) and ectopy rules (:class:`agent.alarms.ectopy.EctopyRules`)
live with the other alarm rules; the consumers here wrap the detectors that are not rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Final, Protocol

import numpy as np

from agent.alarms.engine import ConditionSpec, Finding, inactive
from agent.beats import Beat
from agent.config import VitalsConfig
from agent.core.items import Commit, Signal, StateChange, TimelineItem
from agent.inference.beat_classifier import SegmentGetter
from agent.messages import (
    AamiClass,
    AlarmCode,
    AlarmCondition,
    AlarmEvidence,
    AlarmPriority,
)
from agent.rhythm.af import AfChange, AfDetector
from agent.rhythm.vf import VF_DETECTOR_NAME, VF_DETECTOR_VERSION, VfChange
from agent.vitals.alarms import News2Rules
from agent.vitals.edr import EdrRespirationEstimator, qrs_peak_to_peak_uv
from agent.vitals.news2 import News2Result, Param
from agent.vitals.observations import VitalsStore
from firmware_bridge.limits import PULSE_MAX_PLAUSIBLE_BPM

EvidenceAt = Callable[[float], AlarmEvidence]
"""Evidence at a stream time (recent RR, labelled beats, the strip ending there)."""

EDR_FRESH_S: Final = 60.0
"""An EDR respiration estimate is shown for this long, s."""

NEWS2_PERIOD_S: Final = 1.0
"""NEWS2 is re-scored at most this often (stream time), s."""
NON_PULSE_PARAMS: Final = tuple(p for p in Param if p is not Param.PULSE)
"""The NEWS2 parameters besides the pulse: NEWS2 is scored once one of them is held."""

_PHYSIO: Final = AlarmCondition.PHYSIOLOGICAL


class Consumer(Protocol):
    """One reader of the timeline (see the module docstring)."""

    @property
    def specs(self) -> Sequence[ConditionSpec]:
        """The alarm conditions this consumer judges (may be empty)."""
        ...

    def feed(self, item: TimelineItem) -> None:
        """Take the next item in stream-time order (ignore kinds it does not use)."""
        ...

    def findings(self, t_s: float) -> list[Finding]:
        """Judge every condition of :attr:`specs` at stream time ``t_s``."""
        ...

    def idle_until_s(self, t_s: float) -> float:
        """Return how long, with nothing more fed, every finding stays inactive, s of stream time.

        A time ``T`` such that :meth:`findings` at any time in ``[t_s, T)`` would find every
        condition false and change nothing a later call or another consumer reads; ``t_s`` or
        less when that is not so (a condition is true, or asking would change state). The core
        skips judging an idle engine while every consumer is idle (issue 11: most judgements
        find nothing).
        """
        ...


def is_ectopic(
    aami_class: AamiClass | None, confidence: float | None, min_confidence: float
) -> bool:
    """Whether a beat counts as ectopic for AF: called V with at least ``min_confidence``.

    A beat without a confidence (``None``) counts as fully confident. Used by
    :class:`AfConsumer` (both RR intervals around such a beat leave the RR path; the waveform
    path's ectopy veto counts them) and by :mod:`tools.af.wave`, which tunes on the same rule.
    """
    return aami_class is AamiClass.V and (confidence if confidence is not None else 1.0) >= (
        min_confidence
    )


class AfConsumer:
    """AF from RR intervals (:class:`agent.rhythm.af.AfDetector`) → the ``afib`` alarm.

    Fed final beats. Both RR intervals around a beat called V with at least
    ``min_confidence`` are left out: a premature ventricular beat makes a short-long pair that,
    repeated (bigeminy, frequent PVCs), reads as irregularly irregular, and AF is a
    supraventricular rhythm. S beats are not left out (the classifier calls many AF beats S).

    Parameters
    ----------
    detector
        A fresh detector for this stream.
    min_confidence
        V beats at or above this confidence are ectopic (the ectopy rules' threshold).
    evidence
        Evidence for the alarm.
    min_duration_s
        The ``afib`` alarm is active only once the open episode has been seen for at least
        this long, s (``alarms.afib_min_duration_s``): from the first window of the run that
        confirmed it (:attr:`agent.rhythm.af.AfChange.confirmed_s`: its estimated onset unless
        the card dates onsets where P(AF) rose, ``onset_from_p_off``) to the moment the
        detector's latest evidence still calling AF describes
        (:attr:`agent.rhythm.af.AfDetector.af_seen_until_s`; the RR model's window describes
        its centre, half a window back, the clock the onset is dated on; an episode the
        detector is already ending, inside its offset hysteresis, is not seen at all); the
        episode itself (the rhythm row, the vitals' rhythm) starts when AF is called, and the
        alarm reports the episode's onset.
    clear_after_s
        Once active, the ``afib`` finding stays active until AF has been gone this long, s
        (``alarms.afib_clear_after_s``): AF that stops and comes back within it continues the
        same alarm, whatever the new episode's age. A restart after a signal loss ends it at
        once.
    """

    def __init__(
        self,
        detector: AfDetector,
        min_confidence: float,
        evidence: EvidenceAt,
        min_duration_s: float = 0.0,
        clear_after_s: float = 0.0,
    ) -> None:
        self.detector = detector
        self._min_confidence = min_confidence
        self._evidence = evidence
        self._min_duration_s = min_duration_s
        self._clear_after_s = clear_after_s
        self._alarm_onset_s: float | None = None  # the afib finding is active since this onset
        self._ended_s = 0.0  # estimated end of the latest episode
        self._skip_next = False  # the next beat's RR follows a PVC
        self.onset_s: float | None = None
        self._confirmed_s = 0.0  # the open episode's age is counted from here
        self.episodes: list[tuple[float, float | None]] = []
        """``(onset_s, end_s)`` of AF episodes (``end_s`` None while ongoing)."""
        self.specs: Sequence[ConditionSpec] = (
            ConditionSpec(AlarmCode.AFIB, AlarmPriority.MEDIUM, _PHYSIO),
        )

    def feed(self, item: TimelineItem) -> None:
        """Feed final beats to the detector; restart it at a gap."""
        if isinstance(item, Beat):
            ectopic = is_ectopic(item.aami_class, item.confidence, self._min_confidence)
            self._apply(self.detector.observe_beat(item.r_peak_time_s, ectopic))
            if item.rr_ms is not None and not ectopic and not self._skip_next:
                self._apply(self.detector.push(item.rr_ms, item.r_peak_time_s))
            self._skip_next = ectopic
        elif isinstance(item, StateChange) and item.unusable:
            self._apply(self.detector.reset())
            self._alarm_onset_s = None  # a signal loss is not AF that stopped: no hold

    def _apply(self, changes: list[AfChange]) -> None:
        for change in changes:
            if change.af:
                self.onset_s = change.onset_s
                self._confirmed_s = (
                    change.onset_s if change.confirmed_s is None else change.confirmed_s
                )
                self.episodes.append((change.onset_s, None))
            else:
                self.onset_s = None
                self._ended_s = change.onset_s
                if self.episodes and self.episodes[-1][1] is None:
                    self.episodes[-1] = (self.episodes[-1][0], change.onset_s)

    def findings(self, t_s: float) -> list[Finding]:
        """Return the ``afib`` finding (see ``min_duration_s`` and ``clear_after_s``)."""
        if self.onset_s is not None:
            if self._alarm_onset_s is None:
                seen_s = self.detector.af_seen_until_s
                if seen_s is None or seen_s - self._confirmed_s < self._min_duration_s:
                    return [inactive(AlarmCode.AFIB)]
                self._alarm_onset_s = self.onset_s
        elif self._alarm_onset_s is None or t_s - self._ended_s >= self._clear_after_s:
            self._alarm_onset_s = None
            return [inactive(AlarmCode.AFIB)]
        p = self.detector.probability
        text = "Atrial fibrillation" + (f" (p={p:.2f})" if p is not None else "")
        evidence = partial(self._evidence, t_s)
        return [Finding(AlarmCode.AFIB, True, self._alarm_onset_s, text, evidence)]

    def idle_until_s(self, t_s: float) -> float:
        """Idle for good while no episode is open, or the open one is too young to alarm.

        How long an episode has been seen changes only with the beats fed; a held finding
        (active, or clearing on time) is not idle.
        """
        if self._alarm_onset_s is not None:
            return -math.inf
        if self.onset_s is None:
            return math.inf
        seen_s = self.detector.af_seen_until_s
        if seen_s is None or seen_s - self._confirmed_s < self._min_duration_s:
            return math.inf
        return -math.inf


class VfConsumer:
    """VF/VFL decisions → the ``vfib`` alarm: high priority, latched, immediate.

    The decisions come from :class:`agent.rhythm.vf.VfDetector`, run by the waveform front
    end; signal quality never suppresses them.
    """

    def __init__(self, fs_hz: float, evidence: EvidenceAt) -> None:
        self._fs_hz = fs_hz
        self._evidence = evidence
        self.active = False
        self._onset_s = 0.0
        self._probability = 0.0
        self._decided_s = -math.inf
        self.episodes: list[tuple[float, float | None]] = []
        """``(onset_s, end_s)`` of VF/VFL episodes (``end_s`` None while ongoing)."""
        self.specs: Sequence[ConditionSpec] = (
            ConditionSpec(
                AlarmCode.VFIB,
                AlarmPriority.HIGH,
                _PHYSIO,
                latched=True,
                immediate=True,
                model_versions={VF_DETECTOR_NAME: VF_DETECTOR_VERSION},
            ),
        )

    def feed(self, item: TimelineItem) -> None:
        """Take a VF state change (other items are ignored)."""
        if not isinstance(item, VfChange):
            return
        self._probability = item.probability
        self._decided_s = item.decided_idx / self._fs_hz
        if item.rhythm == "VF":
            self.active, self._onset_s = True, item.onset_idx / self._fs_hz
            self.episodes.append((self._onset_s, None))
        else:
            self.active = False
            if self.episodes and self.episodes[-1][1] is None:
                self.episodes[-1] = (self.episodes[-1][0], item.onset_idx / self._fs_hz)

    def findings(self, t_s: float) -> list[Finding]:
        """Return the ``vfib`` finding; at the moment of a decision it quotes P(VF)."""
        if not self.active:
            return [inactive(AlarmCode.VFIB)]
        text = "Ventricular fibrillation / flutter"
        if t_s == self._decided_s:
            text += f" (p={self._probability:.2f})"
        evidence = partial(self._evidence, t_s)
        return [Finding(AlarmCode.VFIB, True, self._onset_s, text, evidence)]

    def idle_until_s(self, t_s: float) -> float:
        """Idle for good while no VF/VFL is decided (only a decision fed changes it)."""
        return -math.inf if self.active else math.inf


class LinkConsumer:
    """The sensor's radio link → ``sensor_disconnected`` (medium, technical), immediate."""

    def __init__(self) -> None:
        self.since_s: float | None = None
        self.specs: Sequence[ConditionSpec] = (
            ConditionSpec(
                AlarmCode.SENSOR_DISCONNECTED,
                AlarmPriority.MEDIUM,
                AlarmCondition.TECHNICAL,
                immediate=True,
            ),
        )

    @property
    def disconnected(self) -> bool:
        """Whether the link is down now."""
        return self.since_s is not None

    def feed(self, item: TimelineItem) -> None:
        """Take a link change (other items are ignored)."""
        if isinstance(item, StateChange) and item.signal is Signal.LINK:
            if not item.active:
                self.since_s = None
            elif self.since_s is None:
                self.since_s = item.t_s

    def findings(self, t_s: float) -> list[Finding]:
        """Return the ``sensor_disconnected`` finding."""
        if self.since_s is None:
            return [inactive(AlarmCode.SENSOR_DISCONNECTED)]
        return [
            Finding(
                AlarmCode.SENSOR_DISCONNECTED,
                True,
                self.since_s,
                "ECG sensor disconnected: reconnecting, ECG alarms suspended",
            )
        ]

    def idle_until_s(self, t_s: float) -> float:
        """Idle for good while the link is up (only a link change fed changes it)."""
        return -math.inf if self.since_s is not None else math.inf


class VitalsConsumer:
    """Vital signs for display and NEWS2: ECG pulse, EDR respiration, other devices, nurses.

    Fed final beats (EDR), gaps (EDR restarts) and commits (the store is refreshed and NEWS2
    re-scored at most every :data:`NEWS2_PERIOD_S`). Judges ``news2_urgent`` and
    ``news2_emergency`` (:class:`agent.vitals.alarms.News2Rules`) when NEWS2 is on.

    Parameters
    ----------
    cfg
        Vitals settings.
    fs_hz
        Stream rate (for the QRS segment EDR measures), Hz.
    segment
        Raw ECG around a beat, for EDR (None on RR-only streams).
    hr_bpm
        The monitor-averaged heart rate now, bpm, or None.
    asystole
        Whether an asystole alarm is active (the pulse is then not reported).
    """

    def __init__(
        self,
        cfg: VitalsConfig,
        fs_hz: float,
        segment: SegmentGetter | None,
        hr_bpm: Callable[[], float | None],
        asystole: Callable[[], bool],
    ) -> None:
        self._cfg = cfg
        self._fs_hz = fs_hz
        self._segment = segment
        self._hr_bpm = hr_bpm
        self._asystole = asystole
        self.store = VitalsStore()
        self.edr = EdrRespirationEstimator() if cfg.edr else None
        self._edr_last_s = -math.inf
        self.edr_rate: tuple[float, float] | None = None  # (breaths/min, t_s)
        self._rules = (
            News2Rules(onset_delay_s=cfg.news2_onset_delay_s, clear_after_s=cfg.news2_clear_after_s)
            if cfg.news2
            else None
        )
        self.news2: News2Result | None = None
        self._news2_last_s = -math.inf
        self._judged_s = -math.inf
        self._findings: list[Finding] = []
        self.specs: Sequence[ConditionSpec] = [] if self._rules is None else self._rules.specs()

    def rescore(self) -> None:
        """Re-score NEWS2 at the next commit, however recent the last score."""
        self._news2_last_s = -math.inf

    def feed(self, item: TimelineItem) -> None:
        """Feed final beats to EDR, restart it at gaps, refresh the store and NEWS2 at commits."""
        if isinstance(item, Beat):
            self._add_beat(item)
        elif isinstance(item, StateChange) and item.unusable:
            if self.edr is not None:
                self.edr.reset()
        elif isinstance(item, Commit):
            self._commit(item.t_s)

    def _add_beat(self, beat: Beat) -> None:
        if self.edr is None or not np.isfinite(beat.amplitude_uv) or self._segment is None:
            return
        half = int(np.ceil(0.08 * self._fs_hz))
        seg = self._segment(beat.r_peak_idx - half, beat.r_peak_idx + half + 1)
        amp = None if seg is None else qrs_peak_to_peak_uv(seg, half, self._fs_hz)
        self.edr.add(beat, amp)

    def _commit(self, t_s: float) -> None:
        store = self.store
        hr = self._hr_bpm()
        if hr is not None and not self._asystole():
            store.put_pulse(min(hr, PULSE_MAX_PLAUSIBLE_BPM), source="ecg", t_s=t_s)
        if self.edr is not None and t_s - self._edr_last_s >= self._cfg.edr_period_s:
            self._edr_last_s = t_s
            rate = self.edr.rate_per_min(t_s)
            self.edr_rate = (rate, t_s) if rate is not None else self.edr_rate
            if rate is not None and self._cfg.edr_in_news2:
                store.put_respiration_rate(rate, source="edr", t_s=t_s)
        if self._rules is not None and t_s - self._news2_last_s >= NEWS2_PERIOD_S:
            self._news2_last_s = t_s
            # NEWS2 is a multi-parameter score: from the ECG pulse alone it would only repeat
            # the heart-rate alarms, so it is published and judged once another vital is known
            # (and not scored at all before one ever was: most of an ECG-only stream's cost)
            if store.holds_any(NON_PULSE_PARAMS):
                result = store.news2(t_s)
                others = [
                    p for p in result.parameters if p.param is not Param.PULSE and not p.stale
                ]
                self.news2 = result if result.total is not None and others else None
            else:
                self.news2 = None

    def findings(self, t_s: float) -> list[Finding]:
        """NEWS2 findings, judged once per stream time (repeated asks reuse the verdict)."""
        if self._rules is None:
            return []
        if t_s >= self._judged_s:
            self._judged_s = t_s
            self._findings = self._rules.findings(self.news2, t_s)
        return self._findings

    def idle_until_s(self, t_s: float) -> float:
        """Idle for good while NEWS2 is off, or no episode is open and the score alarms nothing.

        The score changes only at a commit (fed); an open episode (a condition true, or held
        for ``news2_clear_after_s``) runs on time: not idle.
        """
        rules, news2 = self._rules, self.news2
        if rules is None:
            return math.inf
        if rules.idle and (news2 is None or not (news2.emergency or news2.urgent)):
            return math.inf
        return -math.inf

    def respiration(self, now_s: float) -> tuple[float | None, str | None]:
        """Respiration rate for display: a scored one, else a fresh EDR estimate."""
        scored = self.latest(Param.RESPIRATION_RATE)
        if scored is not None:
            obs = self.store.latest(Param.RESPIRATION_RATE)
            return scored, None if obs is None else obs.source
        if self.edr_rate is not None and now_s - self.edr_rate[1] <= EDR_FRESH_S:
            return round(self.edr_rate[0], 1), "edr"
        return None, None

    def latest(self, param: Param) -> float | None:
        """Return the latest numeric value of ``param``, rounded to 0.1, or None."""
        obs = self.store.latest(param)
        if obs is None or isinstance(obs.value, bool) or not isinstance(obs.value, int | float):
            return None
        return round(float(obs.value), 1)
