"""The alarm lifecycle: raise, update, clear, latch and acknowledge (IEC 60601-1-8).

Rules (:mod:`agent.alarms.rules`) say, at a stream time ``t_s``, which conditions are true and
since when; this engine turns that into alarm events with unique ids:

- an alarm is **raised** once its condition has been true for the condition's onset delay
  (IEC 60601-1-8:2006, 6.4.1 "alarm condition delay"); its ``onset_s`` is when the condition
  became true, its ``raised_s`` when the agent raised it (the difference is the detection delay
  reported by ``bedside analyze``);
- it is **cleared** once the condition has been false for ``clear_delay_s`` (so one
  arrhythmia does not flicker into many alarms); a *latching* alarm (IEC 60601-1-8, 6.11.2.2)
  clears only once the condition is gone *and* a nurse acknowledged it;
- an acknowledgement publishes an **updated** event with ``acknowledged=True`` and, when the
  caller says who gave it, ``acknowledged_by`` / ``acknowledged_utc`` (the agent's end-to-end
  confirmation to the stations);
- an unacknowledged alarm is **escalated** (an ``updated`` event, phase ``escalate``,
  ``escalation_level`` + 1) every ``escalation_s[priority]`` seconds of stream time after it was
  raised, when :attr:`AlarmEngine.escalation_s` names that priority. Off by default, so offline
  analysis is unchanged; the live runtime turns it on from ``alarms.escalation_*_s``
  (IEC 60601-1-8:2006+A1:2012, 6.11 and IHE PCD ACM leave escalation delays to the site);
- a clear (phase ``end``, state ``inactive``) of an alarm nobody acknowledged carries
  ``ended_unacknowledged=True``, so a station can show that it was never seen.

The engine is pure: no I/O, no wall clock (``ts_utc`` comes from an injected clock and stream
times map to UTC through the stream's start time).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agent.messages import (
    AlarmCode,
    AlarmCondition,
    AlarmEvent,
    AlarmEvidence,
    AlarmLifecycle,
    AlarmPhase,
    AlarmPriority,
    AlarmState,
    utc_now,
)


@dataclass(frozen=True, slots=True)
class ConditionSpec:
    """Static description of one alarm condition.

    Attributes
    ----------
    code : AlarmCode
        Which alarm.
    priority : AlarmPriority
        IEC 60601-1-8 priority (Table 1: high = immediate response, death or irreversible
        injury possible; medium = prompt response; low = awareness).
    kind : AlarmCondition
        Physiological or technical.
    onset_delay_s : float
        The condition must be continuously true this long before the alarm is raised, s.
    latched : bool
        The alarm stays active until acknowledged, even after the condition ends.
    immediate : bool
        Judged the moment its input is decided (VF/VFL, link loss), on the newest sample's
        clock, not at the R-peak detector's commit horizon (seconds behind). Its clears and
        acknowledgements use that clock too.
    model_versions : Mapping[str, str] | None
        The models that decide this condition, copied into its alarms; None: the engine's.
    """

    code: AlarmCode
    priority: AlarmPriority
    kind: AlarmCondition
    onset_delay_s: float = 0.0
    latched: bool = False
    immediate: bool = False
    model_versions: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's verdict on one condition at one moment.

    Attributes
    ----------
    code : AlarmCode
        The condition judged.
    active : bool
        Whether it is true now.
    onset_s : float | None
        When it became true (stream time, s), if the rule knows better than "now" (e.g.
        asystole became true 4 s after the last QRS).
    message : str
        Text for the nurse station.
    evidence : Callable[[], AlarmEvidence] | None
        Builds the evidence to attach if this finding raises the alarm (called only then:
        an ECG strip is not cheap).
    """

    code: AlarmCode
    active: bool
    onset_s: float | None = None
    message: str = ""
    evidence: Callable[[], AlarmEvidence] | None = None


def inactive(code: AlarmCode) -> Finding:
    """Return the finding that ``code`` is not true now (one shared, immutable instance per code).

    Rules judge every condition several times a second and nearly all are false; sharing the
    frozen "false" finding saves building one per condition per judgement (issue 11).
    """
    finding = _INACTIVE.get(code)
    if finding is None:
        finding = _INACTIVE[code] = Finding(code, active=False)
    return finding


_INACTIVE: dict[AlarmCode, Finding] = {}


@dataclass(slots=True)
class _Active:
    event: AlarmEvent
    last_true_s: float
    condition_gone: bool = False
    judged_s: float = 0.0  # stream time of the judgement that raised it (escalation clock)


@dataclass(slots=True)
class _Pending:
    first_true_s: float


@dataclass
class AlarmEngine:
    """Alarm state machine over a set of condition specs.

    Parameters
    ----------
    specs
        The conditions this engine handles; a finding for any other code raises ``KeyError``.
    device_id
        Carried in every event.
    stream_start_utc
        UTC time of stream time 0, to give ``onset_utc``.
    clear_delay_s
        Condition must be false this long before the alarm clears, s.
    model_versions
        Copied into every event (which models decided).
    clock
        Returns the current UTC time for ``ts_utc`` (injected for tests).
    escalation_s
        Priority → escalation period, s of stream time; a priority not in it (or a period of
        0) never escalates. Empty by default (no escalation).

    Attributes
    ----------
    ack_source : tuple[str, datetime] | None
        ``(station identity, UTC time)`` that the next :meth:`acknowledge` records as
        ``acknowledged_by`` / ``acknowledged_utc`` when the caller cannot pass them (the core's
        ``acknowledge(alarm_id)``); consumed by that call.
    """

    specs: Iterable[ConditionSpec]
    device_id: str
    stream_start_utc: datetime
    clear_delay_s: float = 3.0
    model_versions: dict[str, str] = field(default_factory=dict)
    clock: Callable[[], datetime] = utc_now
    escalation_s: dict[AlarmPriority, float] = field(default_factory=dict)
    ack_source: tuple[str, datetime] | None = None
    _specs: dict[AlarmCode, ConditionSpec] = field(init=False)
    _active: dict[AlarmCode, _Active] = field(init=False, default_factory=dict)
    _pending: dict[AlarmCode, _Pending] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._specs = {spec.code: spec for spec in self.specs}

    @property
    def active(self) -> list[AlarmEvent]:
        """The latest event of every active (raised, not cleared) alarm."""
        return [a.event for a in self._active.values()]

    def is_active(self, code: AlarmCode) -> bool:
        """Whether an alarm of this code is active now."""
        return code in self._active

    @property
    def idle(self) -> bool:
        """Whether no alarm is active and none waits on its onset delay.

        An idle engine given only inactive findings changes nothing and returns no event:
        the core then skips the judgement (:meth:`agent.core.monitor.MonitorCore.judge`).
        """
        return not self._active and not self._pending

    def update(
        self, t_s: float, findings: Iterable[Finding], *, raised_s: float | None = None
    ) -> list[AlarmEvent]:
        """Apply the findings made at stream time ``t_s``; return the events to publish.

        ``raised_s`` is the stream time of the newest sample when this judgement was made
        (default ``t_s``): the timeline is judged behind the newest sample (R-peaks and beat
        classes need a look-ahead), and an alarm it raises carries the moment it was raised,
        so that ``raised_s - onset_s`` is the whole detection delay (DESIGN.md, "Offline
        analysis output"). Onset and clear delays run on ``t_s``.

        Raises
        ------
        KeyError
            If a finding names a condition this engine has no spec for.
        """
        events: list[AlarmEvent] = []
        for finding in findings:
            spec = self._specs[finding.code]
            active = self._active.get(finding.code)
            if finding.active:
                if active is not None:
                    active.last_true_s = t_s
                    active.condition_gone = False
                    continue
                onset_s = finding.onset_s if finding.onset_s is not None else t_s
                pending = self._pending.setdefault(finding.code, _Pending(onset_s))
                if t_s - pending.first_true_s + 1e-9 >= spec.onset_delay_s:
                    del self._pending[finding.code]
                    events.append(self._raise(spec, finding, pending.first_true_s, t_s, raised_s))
            else:
                self._pending.pop(finding.code, None)
                if active is None:
                    continue
                active.condition_gone = True
                if t_s - active.last_true_s + 1e-9 >= self.clear_delay_s and (
                    not spec.latched or active.event.acknowledged
                ):
                    events.append(self._clear(finding.code, t_s))
        events += self._escalate(t_s)
        return events

    def _escalate(self, t_s: float) -> list[AlarmEvent]:
        events: list[AlarmEvent] = []
        for active in self._active.values():
            event = active.event
            period_s = self.escalation_s.get(event.priority, 0.0)
            if event.acknowledged or period_s <= 0:
                continue
            if t_s + 1e-9 < active.judged_s + period_s * (event.escalation_level + 1):
                continue
            active.event = event.model_copy(
                update={
                    "lifecycle": AlarmLifecycle.UPDATED,
                    "phase": AlarmPhase.ESCALATE,
                    "escalation_level": event.escalation_level + 1,
                    "ts_utc": self.clock(),
                }
            )
            events.append(active.event)
        return events

    def acknowledge(
        self,
        alarm_id: str,
        t_s: float,
        immediate_t_s: float | None = None,
        *,
        by: str | None = None,
        at_utc: datetime | None = None,
    ) -> list[AlarmEvent]:
        """Record a nurse's acknowledgement; return the events to publish (none if unknown).

        A latched alarm whose condition is already gone clears at once (at ``t_s``, or at
        ``immediate_t_s`` for an immediate condition); any other active alarm is updated with
        ``acknowledged=True`` and clears by the usual rule. ``by`` / ``at_utc`` (or
        :attr:`ack_source`) become ``acknowledged_by`` / ``acknowledged_utc``.
        """
        source, self.ack_source = self.ack_source, None
        if by is None and source is not None:
            by, at_utc = source
        for code, active in self._active.items():
            if active.event.alarm_id != alarm_id:
                continue
            if active.event.acknowledged:
                return []
            spec = self._specs[code]
            now_utc = self.clock()
            active.event = active.event.model_copy(
                update={
                    "acknowledged": True,
                    "lifecycle": AlarmLifecycle.UPDATED,
                    "phase": AlarmPhase.UPDATE,
                    "state": AlarmState.LATCHED
                    if spec.latched and active.condition_gone
                    else AlarmState.ACTIVE,
                    "acknowledged_by": by,
                    "acknowledged_utc": (at_utc or now_utc) if by is not None else None,
                    "ts_utc": now_utc,
                }
            )
            events = [active.event]
            if spec.latched and active.condition_gone:
                now = t_s if immediate_t_s is None or not spec.immediate else immediate_t_s
                events.append(self._clear(code, now))
            return events
        return []

    def clear_all(self, t_s: float, *, immediate: bool | None = None) -> list[AlarmEvent]:
        """Clear every active alarm (end of stream); return the events.

        ``immediate`` True / False clears only the immediate / the other conditions.
        """
        codes = [
            code
            for code in self._active
            if immediate is None or self._specs[code].immediate is immediate
        ]
        return [self._clear(code, t_s) for code in codes]

    def _utc(self, t_s: float) -> datetime:
        return self.stream_start_utc + timedelta(seconds=t_s)

    def _raise(
        self,
        spec: ConditionSpec,
        finding: Finding,
        onset_s: float,
        t_s: float,
        raised_s: float | None = None,
    ) -> AlarmEvent:
        event = AlarmEvent(
            device_id=self.device_id,
            ts_utc=self.clock(),
            alarm_id=uuid.uuid4().hex,
            condition=spec.code,
            priority=spec.priority,
            kind=spec.kind,
            lifecycle=AlarmLifecycle.RAISED,
            onset_s=round(onset_s, 3),
            onset_utc=self._utc(onset_s),
            raised_s=round(max(t_s, raised_s) if raised_s is not None else t_s, 3),
            latched=spec.latched,
            message=finding.message or spec.code.value,
            evidence=finding.evidence() if finding.evidence else AlarmEvidence(),
            model_versions=dict(
                self.model_versions if spec.model_versions is None else spec.model_versions
            ),
        )
        self._active[spec.code] = _Active(event=event, last_true_s=t_s, judged_s=t_s)
        return event

    def _clear(self, code: AlarmCode, t_s: float) -> AlarmEvent:
        active = self._active.pop(code)
        evidence = replace_evidence_without_strip(active.event.evidence)
        return active.event.model_copy(
            update={
                "lifecycle": AlarmLifecycle.CLEARED,
                "cleared_s": round(t_s, 3),
                "phase": AlarmPhase.END,
                "state": AlarmState.INACTIVE,
                "ended_unacknowledged": not active.event.acknowledged,
                "ts_utc": self.clock(),
                "evidence": evidence,
            }
        )


def replace_evidence_without_strip(evidence: AlarmEvidence) -> AlarmEvidence:
    """Return the evidence without its ECG strip (clear events stay small)."""
    return evidence.model_copy(update={"strip": None})


__all__ = ["AlarmEngine", "ConditionSpec", "Finding", "inactive", "replace_evidence_without_strip"]
