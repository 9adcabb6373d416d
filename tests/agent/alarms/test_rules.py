from datetime import UTC, datetime

import pytest

from agent.alarms.engine import AlarmEngine
from agent.alarms.rules import EcgRules, ecg_condition_specs
from agent.config import AlarmConfig
from agent.messages import AlarmCode, AlarmEvent, AlarmLifecycle, AlarmPriority

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Harness:
    """Drives rules + engine the way the pipeline does: judge just before and at each beat."""

    def __init__(self, cfg: AlarmConfig | None = None) -> None:
        self.cfg = cfg or AlarmConfig()
        self.rules = EcgRules(self.cfg)
        self.engine = AlarmEngine(
            ecg_condition_specs(self.cfg), device_id="d", stream_start_utc=T0, clear_delay_s=3.0
        )
        self.events: list[AlarmEvent] = []
        self.prev: float | None = None

    def beat(self, t: float) -> None:
        self.events += self.engine.update(t - 1e-6, self.rules.findings(t - 1e-6))
        rr = None if self.prev is None else (t - self.prev) * 1000
        self.prev = t
        self.rules.add_qrs(t, rr)
        self.events += self.engine.update(t, self.rules.findings(t))

    def tick(self, t: float) -> None:
        self.events += self.engine.update(t, self.rules.findings(t))

    def raised(self, code: AlarmCode) -> list[AlarmEvent]:
        return [
            e for e in self.events if e.condition is code and e.lifecycle is AlarmLifecycle.RAISED
        ]


def _beats(h: Harness, start: float, stop: float, rr_s: float) -> float:
    t = start
    while t < stop:
        h.beat(t)
        h.tick(t + rr_s / 2)
        t += rr_s
    return t


def test_regular_rhythm_raises_nothing() -> None:
    h = Harness()
    _beats(h, 0.5, 120, 0.8)
    assert h.events == []
    assert h.rules.hr_bpm == pytest.approx(75.0)


def test_asystole_and_pause_onsets_are_exact() -> None:
    h = Harness()
    last = _beats(h, 0.5, 20, 0.8) - 0.8  # last beat time
    h.tick(last + 2.9)
    assert h.raised(AlarmCode.PAUSE) == []
    h.tick(last + 5.0)
    (pause,) = h.raised(AlarmCode.PAUSE)
    (asys,) = h.raised(AlarmCode.ASYSTOLE)
    assert pause.onset_s == pytest.approx(last + 3.0)
    assert asys.onset_s == pytest.approx(last + 4.0)
    assert asys.priority is AlarmPriority.HIGH
    assert pause.priority is AlarmPriority.MEDIUM
    assert asys.evidence.rr_ms[-1] == pytest.approx(800.0)
    # beats resume; after the clear delay both clear
    _beats(h, last + 6.0, last + 12.0, 0.8)
    cleared = {e.condition for e in h.events if e.lifecycle is AlarmLifecycle.CLEARED}
    assert cleared == {AlarmCode.PAUSE, AlarmCode.ASYSTOLE}


def test_pause_completed_between_ticks_still_raised() -> None:
    """A 3.5 s pause seen only as one long RR (no tick inside) is still raised."""
    h = Harness()
    h_last = _beats(h, 0.5, 10, 0.8) - 0.8
    h.beat(h_last + 3.5)
    (pause,) = h.raised(AlarmCode.PAUSE)
    assert pause.onset_s == pytest.approx(h_last + 3.0)
    assert h.raised(AlarmCode.ASYSTOLE) == []


@pytest.mark.parametrize(
    ("rr_s", "code"),
    [
        (60 / 175, AlarmCode.EXTREME_TACHY),
        (60 / 130, AlarmCode.HR_HIGH),
        (60 / 45, AlarmCode.HR_LOW),
        (60 / 35, AlarmCode.EXTREME_BRADY),
    ],
)
def test_hr_limits_raise_only_the_most_severe(rr_s: float, code: AlarmCode) -> None:
    h = Harness()
    t = _beats(h, 0.5, 30, 0.8)
    _beats(h, t, t + 40, rr_s)
    raised = {e.condition for e in h.events if e.lifecycle is AlarmLifecycle.RAISED}
    assert raised == {code}
    (ev,) = h.raised(code)
    # delay: the HR crosses within a few beats of the change, then 5 s of confirmation
    assert t <= ev.onset_s <= t + 13 * rr_s
    assert ev.raised_s - ev.onset_s == pytest.approx(5.0, abs=rr_s + 0.01)


def test_leads_off_suppresses_asystole_and_restarts_clock() -> None:
    h = Harness()
    last = _beats(h, 0.5, 10, 0.8) - 0.8
    h.rules.set_leads_off(True, last + 0.5)
    h.tick(last + 0.5)
    h.tick(last + 20)
    assert h.raised(AlarmCode.ASYSTOLE) == []
    assert h.raised(AlarmCode.PAUSE) == []
    (lo,) = h.raised(AlarmCode.LEADS_OFF)
    assert lo.onset_s == pytest.approx(last + 0.5)
    h.rules.set_leads_off(False, last + 20)
    h.tick(last + 22)  # 2 s after the signal returned: no asystole yet
    assert h.raised(AlarmCode.ASYSTOLE) == []
    h.tick(last + 24.5)  # 4.5 s with signal and no QRS: asystole
    (asys,) = h.raised(AlarmCode.ASYSTOLE)
    assert asys.onset_s == pytest.approx(last + 24.0)


def test_signal_poor_suppresses_physiological_alarms() -> None:
    h = Harness()
    last = _beats(h, 0.5, 10, 0.8) - 0.8
    h.rules.set_signal_poor(True, last + 0.3)
    h.tick(last + 0.3)
    # noise "beats" at 200 bpm while the signal is poor: no tachy, no pause, no asystole
    t = last + 0.5
    while t < last + 30:
        h.beat(t)
        t += 0.3
    h.tick(last + 40)
    physio = {e.condition for e in h.events if e.kind == "physiological"}
    assert physio == set()
    (poor,) = h.raised(AlarmCode.SIGNAL_POOR)
    assert poor.onset_s == pytest.approx(last + 0.3)
    assert poor.kind == "technical"
    # recovery restarts the asystole clock and the HR history
    h.rules.set_signal_poor(False, last + 40)
    assert h.rules.hr_bpm is None
    h.tick(last + 43)
    assert h.raised(AlarmCode.ASYSTOLE) == []
    h.tick(last + 44.5)
    assert len(h.raised(AlarmCode.ASYSTOLE)) == 1
