from datetime import UTC, datetime

from agent.alarms.engine import AlarmEngine, ConditionSpec, Finding
from agent.messages import AlarmCode, AlarmCondition, AlarmLifecycle, AlarmPriority

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _engine() -> AlarmEngine:
    specs = [
        ConditionSpec(AlarmCode.HR_HIGH, AlarmPriority.MEDIUM, AlarmCondition.PHYSIOLOGICAL, 5.0),
        ConditionSpec(
            AlarmCode.VFIB, AlarmPriority.HIGH, AlarmCondition.PHYSIOLOGICAL, latched=True
        ),
    ]
    return AlarmEngine(
        specs, device_id="dev", stream_start_utc=T0, clear_delay_s=3.0, clock=lambda: T0
    )


def test_onset_delay_then_raise_with_onset_at_first_true() -> None:
    eng = _engine()
    assert eng.update(10.0, [Finding(AlarmCode.HR_HIGH, True)]) == []
    assert eng.update(14.9, [Finding(AlarmCode.HR_HIGH, True)]) == []
    (ev,) = eng.update(15.0, [Finding(AlarmCode.HR_HIGH, True, message="HR high")])
    assert ev.lifecycle is AlarmLifecycle.RAISED
    assert ev.onset_s == 10.0
    assert ev.raised_s == 15.0
    assert ev.onset_utc == datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    assert ev.priority is AlarmPriority.MEDIUM


def test_interrupted_condition_restarts_delay() -> None:
    eng = _engine()
    eng.update(10.0, [Finding(AlarmCode.HR_HIGH, True)])
    eng.update(12.0, [Finding(AlarmCode.HR_HIGH, False)])
    assert eng.update(16.0, [Finding(AlarmCode.HR_HIGH, True)]) == []
    (ev,) = eng.update(21.0, [Finding(AlarmCode.HR_HIGH, True)])
    assert ev.onset_s == 16.0


def test_clear_after_clear_delay_keeps_id() -> None:
    eng = _engine()
    eng.update(0.0, [Finding(AlarmCode.HR_HIGH, True)])
    (raised,) = eng.update(5.0, [Finding(AlarmCode.HR_HIGH, True)])
    assert eng.update(6.0, [Finding(AlarmCode.HR_HIGH, False)]) == []
    # condition returns within the clear delay: same alarm, no new event
    assert eng.update(7.0, [Finding(AlarmCode.HR_HIGH, True)]) == []
    assert eng.update(9.0, [Finding(AlarmCode.HR_HIGH, False)]) == []
    (cleared,) = eng.update(10.0, [Finding(AlarmCode.HR_HIGH, False)])
    assert cleared.lifecycle is AlarmLifecycle.CLEARED
    assert cleared.alarm_id == raised.alarm_id
    assert cleared.cleared_s == 10.0
    assert not eng.is_active(AlarmCode.HR_HIGH)


def test_latched_alarm_needs_ack_to_clear() -> None:
    eng = _engine()
    (raised,) = eng.update(1.0, [Finding(AlarmCode.VFIB, True)])
    assert raised.latched
    assert eng.update(30.0, [Finding(AlarmCode.VFIB, False)]) == []
    assert eng.is_active(AlarmCode.VFIB)
    updated, cleared = eng.acknowledge(raised.alarm_id, 31.0)
    assert updated.lifecycle is AlarmLifecycle.UPDATED
    assert updated.acknowledged
    assert cleared.lifecycle is AlarmLifecycle.CLEARED
    assert eng.acknowledge(raised.alarm_id, 32.0) == []


def test_ack_of_unlatched_alarm_updates_only() -> None:
    eng = _engine()
    eng.update(0.0, [Finding(AlarmCode.HR_HIGH, True)])
    (raised,) = eng.update(5.0, [Finding(AlarmCode.HR_HIGH, True)])
    (upd,) = eng.acknowledge(raised.alarm_id, 6.0)
    assert upd.acknowledged
    assert eng.acknowledge("nope", 6.0) == []


def test_unique_ids_per_occurrence() -> None:
    eng = _engine()
    ids = set()
    t = 0.0
    for _ in range(3):
        eng.update(t, [Finding(AlarmCode.VFIB, True)])
        ids.add(eng.active[0].alarm_id)
        eng.update(t + 5, [Finding(AlarmCode.VFIB, False)])
        eng.acknowledge(eng.active[0].alarm_id, t + 6)
        t += 10
    assert len(ids) == 3
