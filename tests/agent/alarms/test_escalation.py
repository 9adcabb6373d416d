"""Escalation and "ended unacknowledged" in the alarm engine (issue 14, Build 7)."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.alarms.engine import AlarmEngine, ConditionSpec, Finding
from agent.messages import AlarmCode, AlarmCondition, AlarmPhase, AlarmPriority, AlarmState

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
PHYS = AlarmCondition.PHYSIOLOGICAL


def engine(**escalation_s: float) -> AlarmEngine:
    return AlarmEngine(
        [
            ConditionSpec(AlarmCode.VTACH, AlarmPriority.HIGH, PHYS),
            ConditionSpec(AlarmCode.AFIB, AlarmPriority.MEDIUM, PHYS),
        ],
        device_id="d",
        stream_start_utc=T0,
        clock=lambda: T0,
        escalation_s={AlarmPriority[k.upper()]: v for k, v in escalation_s.items()},
    )


def on(code: AlarmCode) -> Finding:
    return Finding(code, active=True)


def test_unacknowledged_alarms_escalate_per_priority_until_acknowledged() -> None:
    eng = engine(high=30.0, medium=120.0)
    raised = eng.update(10.0, [on(AlarmCode.VTACH), on(AlarmCode.AFIB)])
    assert [e.phase for e in raised] == [AlarmPhase.START, AlarmPhase.START]
    assert eng.update(39.9, [on(AlarmCode.VTACH), on(AlarmCode.AFIB)]) == []
    [first] = eng.update(40.0, [on(AlarmCode.VTACH), on(AlarmCode.AFIB)])
    assert (first.condition, first.phase, first.escalation_level) == ("vtach", "escalate", 1)
    assert first.lifecycle == "updated"
    [second] = eng.update(70.0, [on(AlarmCode.VTACH), on(AlarmCode.AFIB)])
    assert (second.condition, second.escalation_level) == ("vtach", 2)
    vtach_id = raised[0].alarm_id
    [ack] = eng.acknowledge(vtach_id, 75.0, by="nurse1", at_utc=T0)
    assert (ack.acknowledged_by, ack.escalation_level, ack.phase) == ("nurse1", 2, "update")
    # acknowledged: no more escalation; medium escalates at 10 + 120 s
    events = eng.update(130.0, [on(AlarmCode.VTACH), on(AlarmCode.AFIB)])
    assert [(e.condition, e.escalation_level) for e in events] == [("afib", 1)]


def test_no_escalation_by_default_and_clear_marks_unacknowledged() -> None:
    eng = engine()
    eng.update(0.0, [on(AlarmCode.VTACH), on(AlarmCode.AFIB)])
    assert eng.update(1000.0, [on(AlarmCode.VTACH), on(AlarmCode.AFIB)]) == []
    afib_id = next(e.alarm_id for e in eng.active if e.condition == "afib")
    eng.acknowledge(afib_id, 1001.0, by="nurse2")
    off = [Finding(AlarmCode.VTACH, active=False), Finding(AlarmCode.AFIB, active=False)]
    ended = {e.condition: e for e in eng.update(1010.0, off)}
    assert ended[AlarmCode.VTACH].ended_unacknowledged
    assert not ended[AlarmCode.AFIB].ended_unacknowledged
    assert ended[AlarmCode.AFIB].acknowledged_by == "nurse2"
    assert {(e.phase, e.state) for e in ended.values()} == {(AlarmPhase.END, AlarmState.INACTIVE)}
