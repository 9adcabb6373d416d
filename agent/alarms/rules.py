"""ECG alarm rules: asystole, pause, heart-rate limits and leads-off, evaluated in stream time.

Definitions and defaults (all configurable in :class:`agent.config.AlarmConfig`):

- **asystole** (high): no QRS for ``asystole_s`` (4 s). IEC 60601-2-27:2011, 201.12.1.101.3
  tests asystole alarm delay against records with 4 s of no QRS; 4 s is also the usual
  monitor default (GE EK-Pro, Philips ST/AR).
- **pause** (medium): an RR interval of at least ``pause_s`` (3 s, the Philips default pause
  threshold). Raised as soon as the open interval reaches ``pause_s``, without waiting for
  the next beat.
- **extreme_tachy / extreme_brady** (high), **hr_high / hr_low** (medium): the monitor-averaged
  heart rate (:func:`agent.dsp.heart_rate.hr_bpm_monitor`) beyond the limits for
  ``hr_alarm_delay_s``. Only the most severe of the HR alarms is active at a time.
- **leads_off** (medium, technical): flat, stuck or invalid ECG (:mod:`agent.dsp.flatline`).
  While it is active no ECG-derived physiological alarm is raised (a flat line is not an
  asystole), and the asystole clock restarts when the signal comes back.
- **signal_poor** (medium, technical): the signal-quality index says the ECG is unusable
  (:mod:`agent.dsp.quality`). Same suppression as leads-off: noise must not raise asystole,
  pause, brady or tachy; RR history is dropped when the signal recovers, so HR restarts from
  clean beats. Leads-off takes precedence (one technical alarm for one cause).
- **sensor disconnected**: while the wearable's link is down or silent (the BLE transport's
  watchdog), ECG alarms are suppressed as for leads-off, and leads-off and signal_poor are
  not raised (the NaN the transport fills the gap with would read as a flat line). The
  ``sensor_disconnected`` alarm itself is raised at once by an immediate consumer
  (:class:`agent.core.consumers.LinkConsumer`), without waiting for the commit horizon.
- **battery_low** (low, technical): the sensor reports a battery level at or below
  ``battery_low_pct``. IEC 60601-1-8, 6.1.2: low priority = operator awareness.

Priorities follow IEC 60601-1-8:2006, 6.1.2, Table 1 (high: death or irreversible injury
possible within minutes; medium: prompt response needed).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import Final

from agent.alarms.engine import ConditionSpec, Finding, inactive
from agent.beats import Beat
from agent.config import AlarmConfig
from agent.core.items import Qrs, Signal, StateChange, TimelineItem
from agent.dsp.heart_rate import HR_AVERAGE_BEATS, hr_bpm_monitor
from agent.messages import (
    AlarmCode,
    AlarmCondition,
    AlarmEvidence,
    AlarmPriority,
    BeatEvidence,
    EcgStrip,
)

_HR_CODES: Final = (
    AlarmCode.EXTREME_TACHY,
    AlarmCode.HR_HIGH,
    AlarmCode.EXTREME_BRADY,
    AlarmCode.HR_LOW,
)
"""The heart-rate conditions, in the order :meth:`EcgRules.findings` judges them."""

LINK_SETTLE_S: Final = 6.0
"""After a sensor reconnects, a flat or poor signal must persist this long to raise leads_off
or signal_poor: the NaN-filled gap is the disconnection, already alarmed as
sensor_disconnected, and the signal-quality monitor needs its 2 s window plus 3 s of good
windows (:mod:`agent.dsp.quality`) to call the returning signal good. ECG alarms stay
suppressed meanwhile."""

EVIDENCE_BEATS: Final = 12
"""Labelled beats attached to an alarm as evidence (the last 12, as for HR averaging)."""

StripProvider = Callable[[float, float], EcgStrip | None]
"""``(end_s, duration_s) -> EcgStrip | None``: the ECG that ended at ``end_s``."""

BeatsProvider = Callable[[int], list[Beat]]
"""``(n) -> beats``: the last ``n`` beats in stream order, for evidence (the newest may still
await its class: :meth:`agent.core.finaliser.BeatFinaliser.recent`)."""

_P = AlarmCondition.PHYSIOLOGICAL
_T = AlarmCondition.TECHNICAL


def ecg_condition_specs(cfg: AlarmConfig) -> list[ConditionSpec]:
    """Return the specs of the ECG alarms handled by :class:`EcgRules`."""
    hr_delay = cfg.hr_alarm_delay_s
    return [
        ConditionSpec(AlarmCode.ASYSTOLE, AlarmPriority.HIGH, _P),
        ConditionSpec(AlarmCode.PAUSE, AlarmPriority.MEDIUM, _P),
        ConditionSpec(AlarmCode.EXTREME_TACHY, AlarmPriority.HIGH, _P, hr_delay),
        ConditionSpec(AlarmCode.EXTREME_BRADY, AlarmPriority.HIGH, _P, hr_delay),
        ConditionSpec(AlarmCode.HR_HIGH, AlarmPriority.MEDIUM, _P, hr_delay),
        ConditionSpec(AlarmCode.HR_LOW, AlarmPriority.MEDIUM, _P, hr_delay),
        ConditionSpec(AlarmCode.LEADS_OFF, AlarmPriority.MEDIUM, _T),
        ConditionSpec(AlarmCode.SIGNAL_POOR, AlarmPriority.MEDIUM, _T),
        ConditionSpec(AlarmCode.BATTERY_LOW, AlarmPriority.LOW, _T),
    ]


class EcgRules:
    """Beat-and-time state behind the ECG alarms.

    A timeline consumer (:class:`agent.core.consumers.Consumer`): feed it committed QRS
    complexes and state changes in stream order, and ask :meth:`findings` at any stream time
    at or after the last input. It reads beat *timing* only, the moment a QRS is committed
    (waiting a beat for the class would delay asystole by a beat); the beats shown as
    evidence come, with their classes, from ``beats``.

    Parameters
    ----------
    cfg
        Limits and delays.
    strip
        Gives the ECG strip for evidence, or None for no strips.
    beats
        Gives the recent beats for evidence, or None for none.
    """

    def __init__(
        self,
        cfg: AlarmConfig,
        strip: StripProvider | None = None,
        beats: BeatsProvider | None = None,
    ) -> None:
        self._cfg = cfg
        self._strip = strip
        self._beats = beats
        self.specs: Sequence[ConditionSpec] = ecg_condition_specs(cfg)
        self._rr_ms: deque[float] = deque(maxlen=HR_AVERAGE_BEATS)
        self._last_beat_s: float | None = None
        self._reference_s = 0.0  # time since which we would have seen a beat
        self._leads_off = False
        self._leads_off_since_s = 0.0
        self._signal_poor = False
        self._signal_poor_since_s = 0.0
        self._disconnected = False
        self._disconnected_since_s = 0.0
        self._reconnected_s = -LINK_SETTLE_S  # when the link last came back
        self._battery_pct: int | None = None
        self._battery_since_s = 0.0
        self.hr_bpm: float | None = None

    @property
    def last_beat_s(self) -> float | None:
        """Stream time of the last R-peak, s (None before the first)."""
        return self._last_beat_s

    @property
    def leads_off(self) -> bool:
        """Whether the signal is currently flat, stuck or invalid."""
        return self._leads_off

    @property
    def rr_ms(self) -> list[float]:
        """The last (up to 12) RR intervals, ms, oldest first."""
        return list(self._rr_ms)

    def feed(self, item: TimelineItem) -> None:
        """Take the next timeline item: QRS timing and state changes (classes are not used)."""
        if isinstance(item, Qrs):
            self.add_qrs(item.t_s, item.rr_ms)
        elif isinstance(item, StateChange):
            if item.signal is Signal.FLAT:
                self.set_leads_off(item.active, item.t_s)
            elif item.signal is Signal.POOR:
                self.set_signal_poor(item.active, item.t_s)
            elif item.signal is Signal.LINK:
                self.set_sensor_disconnected(item.active, item.t_s)
            elif item.signal is Signal.CONTACT:
                self.set_leads_off(item.active, item.t_s)
            elif item.battery_pct is not None:
                self.set_battery(item.battery_pct, item.t_s)

    def add_qrs(self, t_s: float, rr_ms: float | None) -> None:
        """Record a committed QRS at stream time ``t_s`` with the RR interval ending there, ms."""
        if rr_ms is not None:
            self._rr_ms.append(rr_ms)
        self._last_beat_s = t_s
        self._reference_s = max(self._reference_s, t_s)
        self.hr_bpm = hr_bpm_monitor(list(self._rr_ms))

    def set_leads_off(self, leads_off: bool, t_s: float) -> None:
        """Record a leads-off change at stream time ``t_s``.

        When the signal returns, RR history is dropped (the interval across the gap is not a
        real RR) and the asystole clock restarts at ``t_s``.
        """
        if leads_off == self._leads_off:
            return
        self._leads_off = leads_off
        if leads_off:
            self._leads_off_since_s = t_s
        else:
            self._restart_beats(t_s)

    @property
    def signal_poor(self) -> bool:
        """Whether the signal-quality index currently says the ECG is unusable."""
        return self._signal_poor

    def set_signal_poor(self, poor: bool, t_s: float) -> None:
        """Record a signal-quality change at stream time ``t_s`` (see :meth:`set_leads_off`)."""
        if poor == self._signal_poor:
            return
        self._signal_poor = poor
        if poor:
            self._signal_poor_since_s = t_s
        else:
            self._restart_beats(t_s)

    @property
    def sensor_disconnected(self) -> bool:
        """Whether the sensor link is currently down or silent."""
        return self._disconnected

    def set_sensor_disconnected(self, disconnected: bool, t_s: float) -> None:
        """Record a link change at stream time ``t_s`` (see :meth:`set_leads_off`)."""
        if disconnected == self._disconnected:
            return
        self._disconnected = disconnected
        if disconnected:
            self._disconnected_since_s = t_s
        else:
            self._reconnected_s = t_s
            self._restart_beats(t_s)

    @property
    def battery_pct(self) -> int | None:
        """The sensor's last reported battery level, %, or None."""
        return self._battery_pct

    def set_battery(self, battery_pct: int, t_s: float) -> None:
        """Record a battery level report at stream time ``t_s``."""
        was_low = self._battery_pct is not None and self._battery_pct <= self._cfg.battery_low_pct
        self._battery_pct = battery_pct
        if battery_pct <= self._cfg.battery_low_pct and not was_low:
            self._battery_since_s = t_s

    def _restart_beats(self, t_s: float) -> None:
        """Restart beat tracking at ``t_s``, where the signal is usable again.

        The asystole clock restarts there and RR history is dropped (the interval across the
        gap is not a real RR).
        """
        self._reference_s = max(self._reference_s, t_s)
        self._rr_ms.clear()
        self.hr_bpm = None

    def gap_s(self, t_s: float) -> float:
        """Seconds since the last QRS (or since the signal became analysable)."""
        return t_s - self._reference_s

    def findings(self, t_s: float) -> list[Finding]:
        """Judge every ECG condition at stream time ``t_s``."""
        cfg = self._cfg
        gap = self.gap_s(t_s)
        ecg_ok = not self._leads_off and not self._signal_poor and not self._disconnected
        # a flat or poor signal that began while the link was down is the gap the transport
        # filled with NaN; it counts as leads-off / poor only if it outlasts LINK_SETTLE_S
        # after the link is back (its onset then moves to the reconnection)
        settled = not self._disconnected and t_s - self._reconnected_s >= LINK_SETTLE_S
        after_link = max(self._reconnected_s, 0.0)
        asystole = ecg_ok and gap >= cfg.asystole_s
        pause = ecg_ok and gap >= cfg.pause_s
        hr = self.hr_bpm if ecg_ok and not asystole else None
        battery = self._battery_pct
        # messages are written only for the conditions that are true (judged ~7 times a second)
        out = [
            self._finding(
                AlarmCode.ASYSTOLE,
                asystole,
                t_s,
                self._reference_s + cfg.asystole_s,
                lambda: f"Asystole: no QRS for {gap:.1f} s",
            ),
            self._finding(
                AlarmCode.PAUSE,
                pause,
                t_s,
                self._reference_s + cfg.pause_s,
                lambda: f"Pause: no QRS for {gap:.1f} s",
            ),
            self._finding(
                AlarmCode.LEADS_OFF,
                self._leads_off and settled,
                t_s,
                max(self._leads_off_since_s, after_link),
                lambda: "ECG leads off / flat line: ECG alarms suspended",
            ),
            self._finding(
                AlarmCode.SIGNAL_POOR,
                self._signal_poor and not self._leads_off and settled,
                t_s,
                max(self._signal_poor_since_s, after_link),
                lambda: "ECG signal too poor to analyse: ECG alarms suspended",
            ),
            self._finding(
                AlarmCode.BATTERY_LOW,
                battery is not None and battery <= cfg.battery_low_pct,
                t_s,
                self._battery_since_s,
                lambda: f"Sensor battery low: {battery} %",
            ),
        ]
        if hr is None:
            out += [inactive(code) for code in _HR_CODES]
            return out
        rate: float = hr  # bound for the messages below (a closure does not narrow ``hr``)
        tachy, high, brady, low = self._hr_limits(hr)
        out += [
            self._finding(
                AlarmCode.EXTREME_TACHY,
                tachy,
                t_s,
                None,
                lambda: f"Extreme tachycardia: HR {rate:.0f} bpm",
            ),
            self._finding(
                AlarmCode.HR_HIGH,
                high,
                t_s,
                None,
                lambda: f"HR high: {rate:.0f} bpm > {cfg.hr_high_bpm:.0f}",
            ),
            self._finding(
                AlarmCode.EXTREME_BRADY,
                brady,
                t_s,
                None,
                lambda: f"Extreme bradycardia: HR {rate:.0f} bpm",
            ),
            self._finding(
                AlarmCode.HR_LOW,
                low,
                t_s,
                None,
                lambda: f"HR low: {rate:.0f} bpm < {cfg.hr_low_bpm:.0f}",
            ),
        ]
        return out

    def _hr_limits(self, hr_bpm: float) -> tuple[bool, bool, bool, bool]:
        """Which HR condition ``hr_bpm`` meets: extreme tachy, HR high, extreme brady, HR low."""
        cfg = self._cfg
        return (
            hr_bpm > cfg.extreme_tachy_bpm,
            cfg.hr_high_bpm < hr_bpm <= cfg.extreme_tachy_bpm,
            hr_bpm < cfg.extreme_brady_bpm,
            cfg.extreme_brady_bpm <= hr_bpm < cfg.hr_low_bpm,
        )

    def idle_until_s(self, t_s: float) -> float:
        """Return until when, with no QRS or state change fed, every ECG finding stays false, s.

        With an analysable ECG, the open RR interval reaching ``pause_s`` (or ``asystole_s``);
        with leads off or a poor signal after a reconnection, the end of ``LINK_SETTLE_S``;
        while disconnected, for good. ``-inf`` while a condition is true (battery low, an HR
        limit, a suspension already settled). Findings read no clock but ``t_s``, so this
        bound is exact; the core keeps a microsecond's margin against rounding.
        """
        cfg = self._cfg
        battery = self._battery_pct
        if battery is not None and battery <= cfg.battery_low_pct:
            return -math.inf
        if self._disconnected:
            return math.inf
        if self._leads_off or self._signal_poor:
            settle_s = self._reconnected_s + LINK_SETTLE_S
            return settle_s if t_s < settle_s else -math.inf
        until_s = self._reference_s + min(cfg.pause_s, cfg.asystole_s)
        if t_s >= until_s or (self.hr_bpm is not None and any(self._hr_limits(self.hr_bpm))):
            return -math.inf
        return until_s

    def _finding(
        self,
        code: AlarmCode,
        active: bool,
        t_s: float,
        onset_s: float | None,
        message: Callable[[], str],
    ) -> Finding:
        if not active:
            return inactive(code)
        return Finding(code, True, onset_s, message(), partial(self.evidence, t_s))

    def evidence(self, t_s: float) -> AlarmEvidence:
        """Evidence at stream time ``t_s``: recent RR, labelled beats, the strip ending at t_s."""
        strip = self._strip(t_s, self._cfg.strip_s) if self._strip is not None else None
        beats = [
            BeatEvidence(
                t_s=round(b.r_peak_time_s, 3),
                rr_ms=None if b.rr_ms is None else round(b.rr_ms, 1),
                aami_class=b.aami_class,
                confidence=b.confidence,
            )
            for b in (self._beats(EVIDENCE_BEATS) if self._beats is not None else [])
        ]
        return AlarmEvidence(
            rr_ms=[round(rr, 1) for rr in self._rr_ms],
            beats=beats,
            strip=strip,
            hr_bpm=None if self.hr_bpm is None else round(self.hr_bpm, 1),
        )
