"""NEWS2 alarm rules driven through the real alarm engine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.alarms.engine import AlarmEngine
from agent.messages import AlarmCode, AlarmLifecycle, AlarmPriority
from agent.vitals import (
    Consciousness,
    News2Rules,
    Observation,
    Observations,
    news2,
    news2_condition_specs,
    news2_summary,
)
from agent.vitals.news2 import News2Result

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def _result(t_s: float, *, pulse: float = 70, rr: float = 16, acvpu: str = "A") -> News2Result:
    obs = Observations(
        pulse_bpm=Observation(float(pulse), "ecg", t_s),
        respiration_rate_per_min=Observation(float(rr), "edr", t_s),
        consciousness=Observation(Consciousness(acvpu), "manual", t_s),
    )
    return news2(obs, now_s=t_s)


def _engine() -> AlarmEngine:
    return AlarmEngine(
        News2Rules().specs(),
        device_id="bed-test",
        stream_start_utc=T0,
        clock=lambda: T0,
    )


def test_specs_priorities() -> None:
    specs = {s.code: s for s in news2_condition_specs()}
    assert specs[AlarmCode.NEWS2_EMERGENCY].priority is AlarmPriority.HIGH
    assert specs[AlarmCode.NEWS2_URGENT].priority is AlarmPriority.MEDIUM
    assert specs[AlarmCode.NEWS2_URGENT].onset_delay_s == 60.0
    assert not specs[AlarmCode.NEWS2_URGENT].latched


def test_urgent_raised_after_onset_delay_then_escalated_and_cleared() -> None:
    rules, engine = News2Rules(clear_after_s=60.0), _engine()
    events = []
    # 0-99 s: RR 26 (3) -> red score, urgent; 100-299 s: + pulse 135 (3), total 6 + ... ;
    # 300+: normal again.
    for t in range(400):
        if t < 100:
            r = _result(t, rr=26)
        elif t < 300:
            r = _result(t, rr=26, pulse=135, acvpu="V")  # 3 + 3 + 3 = 9: emergency
        else:
            r = _result(t)
        events += engine.update(float(t), rules.findings(r, float(t)))
    summary = [(e.condition, e.lifecycle, e.raised_s, e.cleared_s) for e in events]
    assert summary[0] == (AlarmCode.NEWS2_URGENT, AlarmLifecycle.RAISED, 60.0, None)
    # emergency true from 100 s, raised at 160 s; urgent stays until then (never without an
    # alarm), is reported gone from 160 s and cleared by the engine 3 s after its last true
    # report (159 s).
    assert (AlarmCode.NEWS2_EMERGENCY, AlarmLifecycle.RAISED, 160.0, None) in summary
    assert (AlarmCode.NEWS2_URGENT, AlarmLifecycle.CLEARED, 60.0, 162.0) in summary
    # normal from 300 s: last true at 299 s, held until 359 s (clear_after_s = 60 s), then the
    # engine's 3 s clear delay from its last true report (358 s).
    cleared = [e for e in events if e.lifecycle is AlarmLifecycle.CLEARED]
    assert cleared[-1].condition is AlarmCode.NEWS2_EMERGENCY
    assert cleared[-1].cleared_s == 361.0
    assert len(events) == 4
    # after the emergency clears, urgent does not come back (it was not true either)
    assert not engine.active
    raised = next(e for e in events if e.condition is AlarmCode.NEWS2_EMERGENCY)
    assert raised.onset_s == 100.0
    assert "Emergency response" in raised.message
    assert "NEWS2 9 (partial)" in raised.message
    assert raised.evidence.hr_bpm == 135.0


def test_short_spike_raises_nothing() -> None:
    rules, engine = News2Rules(), _engine()
    events = []
    for t in range(300):
        r = _result(t, pulse=135 if 100 <= t < 130 else 70)  # 30 s red score
        events += engine.update(float(t), rules.findings(r, float(t)))
    assert events == []


def test_no_result_is_no_condition() -> None:
    rules = News2Rules(clear_after_s=0.0)
    findings = rules.findings(None, 0.0)
    assert [f.code for f in findings] == [AlarmCode.NEWS2_EMERGENCY, AlarmCode.NEWS2_URGENT]
    assert not any(f.active for f in findings)


def test_summary_names_scores_and_missing() -> None:
    text = news2_summary(_result(0.0, rr=26, pulse=95))
    assert text == (
        "NEWS2 4 (partial): RR 26/min (3), pulse 95/min (1), ACVPU A (0);"
        " missing SpO2, O2, SBP, temp"
    )


def test_negative_clear_after_rejected() -> None:
    with pytest.raises(ValueError, match="clear_after_s"):
        News2Rules(clear_after_s=-1.0)


def test_wavering_score_raises_once() -> None:
    rules, engine = News2Rules(), _engine()
    events = []
    for t in range(600):
        # red score for 70 s, then alternating 20 s off / 20 s on until 390 s (last true at
        # 389 s): one alarm, held through the gaps, gone at 449 s, cleared at 451 s.
        on = t < 70 or (t >= 70 and ((t - 70) // 20) % 2 == 1 and t < 400)
        r = _result(t, pulse=135 if on else 70)
        events += engine.update(float(t), rules.findings(r, float(t)))
    assert [(e.lifecycle, e.raised_s, e.cleared_s) for e in events] == [
        (AlarmLifecycle.RAISED, 60.0, None),
        (AlarmLifecycle.CLEARED, 60.0, 451.0),
    ]
