"""NEWS2 alarm rules: ``news2_urgent`` and ``news2_emergency`` findings for the alarm engine.

Conditions (RCP 2017, chart 2 thresholds and chart 3 clinical response):

- **news2_emergency**: aggregate NEWS2 >= 7. RCP: "emergency response threshold": emergency
  assessment by a team with critical-care competencies, continuous monitoring. Priority
  **high**: IEC 60601-1-8:2006, 6.1.2, Table 1 gives high priority to a condition needing
  *immediate* response where death or irreversible injury may follow.
- **news2_urgent**: aggregate >= 5 or any single parameter scoring 3 (a "red score"). RCP:
  "urgent response threshold" (urgent assessment by a clinician, within the hour, hourly
  observations). Priority **medium**: Table 1's *prompt* response. Only the more severe of
  the two is active at a time (as for the HR alarms in :mod:`agent.alarms.rules`), so one
  deterioration is one alarm at the nurse station, escalated, not two.

NEWS2 is designed for intermittent observations; computed continuously, one noisy value
(a motion artefact on SpO2, a short tachycardia) could flip it. So a condition must hold for
``onset_delay_s`` (default 60 s, via the engine's onset delay) before it is raised, and
once raised it is reported gone only after ``clear_after_s`` (default 60 s) below its
threshold (hysteresis in time; the engine then applies its own ``clear_delay_s``). Both are
our choices, stated: they are much shorter than the RCP's observation interval at NEWS >= 5
(hourly, chart 3), and longer than the alarm-condition delays of SpO2 and HR alarms of
bedside monitors (about 10-15 s), so NEWS2 follows the physiological alarms and does not
duplicate their transients.

A partial score (parameters missing or stale) can raise these alarms: a partial total is a
lower bound of the complete one (every score is >= 0). The message names what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Final

from agent.alarms.engine import ConditionSpec, Finding, inactive
from agent.messages import AlarmCode, AlarmCondition, AlarmEvidence, AlarmPriority, Consciousness
from agent.vitals.news2 import News2Result, Param

__all__ = [
    "DEFAULT_NEWS2_CLEAR_AFTER_S",
    "DEFAULT_NEWS2_ONSET_DELAY_S",
    "News2Rules",
    "news2_condition_specs",
    "news2_summary",
]

DEFAULT_NEWS2_ONSET_DELAY_S: Final = 60.0
"""A NEWS2 condition must hold this long before its alarm is raised, s (see module notes)."""

DEFAULT_NEWS2_CLEAR_AFTER_S: Final = 60.0
"""A NEWS2 condition must be absent this long before the rule reports it gone, s."""

_LABELS: Final[dict[Param, str]] = {
    Param.RESPIRATION_RATE: "RR",
    Param.SPO2: "SpO2",
    Param.AIR_OR_OXYGEN: "O2",
    Param.SYSTOLIC_BP: "SBP",
    Param.PULSE: "pulse",
    Param.CONSCIOUSNESS: "ACVPU",
    Param.TEMPERATURE: "temp",
}


def news2_condition_specs(
    onset_delay_s: float = DEFAULT_NEWS2_ONSET_DELAY_S,
) -> list[ConditionSpec]:
    """Return the specs of the NEWS2 alarms (emergency high, urgent medium; not latched).

    Parameters
    ----------
    onset_delay_s
        Alarm-condition delay (IEC 60601-1-8, 6.4.1) for both, s.
    """
    physio = AlarmCondition.PHYSIOLOGICAL
    return [
        ConditionSpec(AlarmCode.NEWS2_EMERGENCY, AlarmPriority.HIGH, physio, onset_delay_s),
        ConditionSpec(AlarmCode.NEWS2_URGENT, AlarmPriority.MEDIUM, physio, onset_delay_s),
    ]


def news2_summary(result: News2Result) -> str:
    """Return a one-line description: total, each scored parameter, what is missing or stale.

    Example: ``NEWS2 7 (partial): RR 26/min (3), SpO2 93 % (2), O2 on (2); missing SBP, ACVPU``.
    """
    parts: list[str] = []
    for p in result.parameters:
        if p.score is None:
            continue
        label = _LABELS[p.param]
        if p.param is Param.AIR_OR_OXYGEN:
            shown = "on" if p.value else "air"
        elif p.param is Param.CONSCIOUSNESS and isinstance(p.value, Consciousness):
            shown = p.value.value
        elif p.param is Param.TEMPERATURE:
            shown = f"{float(p.value):.1f} °C"
        elif p.param is Param.SPO2:
            shown = f"{float(p.value):.0f} %"
        elif p.param is Param.SYSTOLIC_BP:
            shown = f"{float(p.value):.0f} mmHg"
        else:
            shown = f"{float(p.value):.0f}/min"
        parts.append(f"{label} {shown} ({p.score})")
    head = f"NEWS2 {result.total if result.total is not None else '-'}"
    if not result.complete:
        head += " (partial)"
    text = head + ": " + ", ".join(parts) if parts else head
    absent = [*result.missing, *result.unscored]
    if absent:
        text += "; missing " + ", ".join(_LABELS[p] for p in absent)
    if result.stale:
        text += "; stale " + ", ".join(_LABELS[p] for p in result.stale)
    return text


@dataclass(slots=True)
class _Episode:
    start_s: float
    last_true_s: float
    confirmed: bool = False


@dataclass
class News2Rules:
    """Turn NEWS2 results into findings for :class:`~agent.alarms.engine.AlarmEngine`.

    Call :meth:`findings` with each new result (e.g. every second, with the vitals message),
    in stream order, and pass the findings to an engine built with :meth:`specs`.

    A condition true for ``onset_delay_s`` is *confirmed* (the engine raises it then); a
    confirmed condition is still reported for ``clear_after_s`` after it was last true, so
    a score wavering at a threshold does not raise and clear repeatedly. An unconfirmed
    episode is not held (a 30 s spike raises nothing). While the emergency condition is
    confirmed, urgent is reported absent (one alarm, escalated); until then urgent stays, so
    a worsening patient is never without an alarm while the emergency one waits its delay.

    Parameters
    ----------
    onset_delay_s
        Alarm-condition delay of both conditions, s (the engine applies it; the rule uses it
        to know when an episode is confirmed).
    clear_after_s
        A confirmed condition is reported gone only after it has been absent this long, s.

    Raises
    ------
    ValueError
        If a delay is negative.
    """

    onset_delay_s: float = DEFAULT_NEWS2_ONSET_DELAY_S
    clear_after_s: float = DEFAULT_NEWS2_CLEAR_AFTER_S
    _episodes: dict[AlarmCode, _Episode] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if not (self.onset_delay_s >= 0 and self.clear_after_s >= 0):
            msg = (
                "onset_delay_s and clear_after_s must be >= 0 s, got "
                f"{self.onset_delay_s!r}, {self.clear_after_s!r}"
            )
            raise ValueError(msg)

    def specs(self) -> list[ConditionSpec]:
        """Return :func:`news2_condition_specs` with this rule's onset delay."""
        return news2_condition_specs(self.onset_delay_s)

    @property
    def idle(self) -> bool:
        """Whether no condition has an open episode (true now, or confirmed and held)."""
        return not self._episodes

    def _update(self, code: AlarmCode, true_now: bool, t_s: float) -> tuple[bool, bool]:
        """Return (reported active, confirmed) for one condition at ``t_s``."""
        ep = self._episodes.get(code)
        if true_now:
            if ep is None:
                ep = self._episodes[code] = _Episode(start_s=t_s, last_true_s=t_s)
            ep.last_true_s = t_s
            if t_s - ep.start_s + 1e-9 >= self.onset_delay_s:
                ep.confirmed = True
            return True, ep.confirmed
        if ep is not None and ep.confirmed and t_s - ep.last_true_s < self.clear_after_s - 1e-9:
            return True, True
        self._episodes.pop(code, None)
        return False, False

    def findings(self, result: News2Result | None, t_s: float) -> list[Finding]:
        """Judge both NEWS2 conditions at stream time ``t_s``.

        Parameters
        ----------
        result
            The latest NEWS2 (None when none could be computed: both are judged absent).
        t_s
            Stream time, s.

        Returns
        -------
        list[Finding]
            One finding each for ``news2_emergency`` and ``news2_urgent``.
        """
        emergency, emergency_confirmed = self._update(
            AlarmCode.NEWS2_EMERGENCY, result is not None and result.emergency, t_s
        )
        urgent, _ = self._update(AlarmCode.NEWS2_URGENT, result is not None and result.urgent, t_s)
        urgent = urgent and not emergency_confirmed
        text = news2_summary(result) if result is not None else "NEWS2 -"
        return [
            self._finding(AlarmCode.NEWS2_EMERGENCY, emergency, "Emergency", text, result),
            self._finding(AlarmCode.NEWS2_URGENT, urgent, "Urgent", text, result),
        ]

    @staticmethod
    def _finding(
        code: AlarmCode, active: bool, level: str, text: str, result: News2Result | None
    ) -> Finding:
        if not active:
            return inactive(code)
        return Finding(
            code,
            True,
            None,
            f"{level} response (NEWS2, RCP 2017): {text}",
            partial(_evidence, result),
        )


def _evidence(result: News2Result | None) -> AlarmEvidence:
    """Evidence: the pulse the score used as ``hr_bpm`` (the parameters are in the message)."""
    if result is None:
        return AlarmEvidence()
    pulse = next(
        (p for p in result.parameters if p.param is Param.PULSE and p.score is not None), None
    )
    hr = float(pulse.value) if pulse is not None else None
    return AlarmEvidence(hr_bpm=None if hr is None else round(hr, 1))
