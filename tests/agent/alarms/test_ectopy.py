"""Ectopy rules on synthetic labelled beat sequences, alone and driving the real AlarmEngine.

The sequences use one RR interval per stretch (a PVC is often on time here), so the pattern
definitions are pinned with the prematurity test of pairs and runs off
(``run_onset_premature=None``); that test is pinned in ``test_ectopy_morphology.py``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.alarms.ectopy import (
    ECTOPY_CODES,
    EctopyConfig,
    EctopyRules,
    ectopy_condition_specs,
    run_rate_bpm,
)
from agent.alarms.engine import AlarmEngine, Finding
from agent.beats import Beat
from agent.messages import (
    AamiClass,
    AlarmCode,
    AlarmEvent,
    AlarmLifecycle,
    AlarmPriority,
    EcgStrip,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FS_HZ = 250.0
RR_N_S = 0.8  # 75 bpm sinus rhythm
RR_150_S = 0.4  # 150 bpm
STRIP_S = 6.0

# label characters: N S V F Q as AAMI classes; '?' no class; 'v' a V at low confidence (0.3)
_CLASSES = {c.value: c for c in AamiClass}


class Harness:
    """Labelled beats into EctopyRules, findings into a real AlarmEngine, as the lead will."""

    def __init__(self, cfg: EctopyConfig | None = None, *, clear_delay_s: float = 3.0) -> None:
        self.cfg = cfg or EctopyConfig(run_onset_premature=None)
        self.strip_calls: list[tuple[float, float]] = []
        self.rules = EctopyRules(self.cfg, strip=self._strip, strip_s=STRIP_S)
        self.engine = AlarmEngine(
            ectopy_condition_specs(self.cfg),
            device_id="d",
            stream_start_utc=T0,
            clear_delay_s=clear_delay_s,
        )
        self.events: list[AlarmEvent] = []
        self.t = 1.0
        self.prev_t: float | None = None
        self.beats: list[Beat] = []
        self.active: dict[AlarmCode, list[float]] = {code: [] for code in ECTOPY_CODES}

    def _strip(self, end_s: float, duration_s: float) -> EcgStrip:
        self.strip_calls.append((end_s, duration_s))
        n = round(duration_s * FS_HZ)
        return EcgStrip(fs_hz=FS_HZ, t0_s=end_s - duration_s, samples_uv=[0] * n)

    def add(self, labels: str, rr_s: float = RR_N_S, confidence: float | None = 0.99) -> None:
        """Add one beat per label character, each ``rr_s`` after the previous one."""
        for ch in labels:
            if self.prev_t is not None:
                self.t = self.prev_t + rr_s
            rr_ms = None if self.prev_t is None else rr_s * 1000.0
            cls = None if ch == "?" else _CLASSES[ch.upper()]
            conf = 0.3 if ch == "v" else (None if cls is None else confidence)
            beat = Beat(round(self.t * FS_HZ), self.t, rr_ms, 1000.0, cls, conf)
            self.beats.append(beat)
            self.rules.add_beat(beat)
            self.prev_t = self.t
            self.judge(self.t)

    def judge(self, t: float) -> list[Finding]:
        findings = self.rules.findings(t)
        for f in findings:
            if f.active:
                self.active[f.code].append(t)
        self.events += self.engine.update(t, findings)
        return findings

    def pause(self, t: float) -> None:
        """Signal gap at ``t``: reset the rules; the next beat has no RR."""
        self.rules.reset(t)
        self.prev_t = None
        self.t = t

    def times(self, labels: str) -> list[float]:
        """Times of the beats added so far whose label matches (by class letter)."""
        return [
            b.r_peak_time_s
            for b in self.beats
            if b.aami_class is not None and b.aami_class.value in labels
        ]

    def raised(self, code: AlarmCode | None = None) -> list[AlarmEvent]:
        return [
            e
            for e in self.events
            if e.lifecycle is AlarmLifecycle.RAISED and (code is None or e.condition is code)
        ]

    def raised_codes(self) -> set[AlarmCode]:
        return {e.condition for e in self.raised()}


def at(t_s: float) -> object:
    """Compare with an event time (the engine rounds event times to the millisecond)."""
    return pytest.approx(t_s, abs=1e-3)


def _v_times(h: Harness) -> list[float]:
    return [b.r_peak_time_s for b in h.beats if b.aami_class is AamiClass.V]


def test_six_v_at_150_bpm_is_vtach_from_the_first_v() -> None:
    h = Harness()
    h.add("NNNNNNNN")
    h.add("VVVVVV", rr_s=RR_150_S)
    h.add("NNNNNNNNNN")
    v = _v_times(h)
    assert h.raised_codes() == {AlarmCode.VTACH}
    (vt,) = h.raised(AlarmCode.VTACH)
    assert vt.onset_s == at(v[0])
    assert vt.raised_s == at(v[5])  # decided at the 6th V, not at the run's end
    assert vt.priority is AlarmPriority.HIGH
    assert vt.latched
    assert vt.message == "V-tach 6 beats at 150 bpm"
    assert h.active[AlarmCode.RUN_PVCS] == []  # the run is V-tach only


def test_five_v_at_150_bpm_is_a_run_decided_by_the_next_beat() -> None:
    h = Harness()
    h.add("NNNNNNNN")
    h.add("VVVVV", rr_s=RR_150_S)
    h.add("NNNNN")
    v = _v_times(h)
    assert h.raised_codes() == {AlarmCode.RUN_PVCS}
    (run,) = h.raised(AlarmCode.RUN_PVCS)
    assert run.onset_s == at(v[0])
    assert run.raised_s == at(v[4] + RR_N_S)  # the N that ended it
    assert run.priority is AlarmPriority.MEDIUM
    assert run.message == "Run of 5 PVCs at 150 bpm"
    assert h.active[AlarmCode.VTACH] == []


def test_six_v_at_90_bpm_is_a_slow_run_not_vtach() -> None:
    h = Harness()
    h.add("NNNNNNNN")
    h.add("VVVVVV", rr_s=60 / 90)
    h.add("NNNNN")
    v = _v_times(h)
    assert h.raised_codes() == {AlarmCode.RUN_PVCS}
    (run,) = h.raised(AlarmCode.RUN_PVCS)
    assert run.onset_s == at(v[0])
    assert run.raised_s == at(v[5])
    assert run.message == "Run of 6 PVCs at 90 bpm (ventricular rhythm)"


def test_vtach_rate_limit_is_strict_and_uses_rr_within_the_run() -> None:
    # 100 bpm exactly is not "> 100 bpm"; the coupling interval before the first V is ignored
    h = Harness()
    h.add("NNNN")
    h.add("V", rr_s=0.3)  # very premature first V: not part of the run's rate
    h.add("VVVVV", rr_s=0.6)
    h.add("NN")
    assert h.raised_codes() == {AlarmCode.RUN_PVCS}
    assert run_rate_bpm(h.beats[4:10]) == pytest.approx(100.0)
    h2 = Harness()
    h2.add("NNNN")
    h2.add("V", rr_s=0.3)
    h2.add("VVVVV", rr_s=0.59)
    assert h2.raised_codes() == {AlarmCode.VTACH}


def test_long_run_message_follows_the_run() -> None:
    h = Harness()
    h.add("NNNN")
    h.add("VVVVVVVV", rr_s=60 / 172)
    (vt,) = h.raised(AlarmCode.VTACH)
    assert vt.message == "V-tach 6 beats at 172 bpm"
    (finding,) = [f for f in h.rules.findings(h.t) if f.code is AlarmCode.VTACH]
    assert finding.message == "V-tach 8 beats at 172 bpm"


def test_a_very_long_run_keeps_its_length_and_onset() -> None:
    """2.2 h of V-tach: the run is still counted from its first beat (its cost per beat is
    measured by ``python -m tools.bench``, ``ectopy_us_per_beat_in_long_run``)."""
    rules = EctopyRules(EctopyConfig(run_onset_premature=None), strip=None, strip_s=STRIP_S)
    rules.add_beat(Beat(0, 1.0, None, 900.0, AamiClass.N, 0.9))
    n = 20_000  # 2.2 h of V-tach at 150 bpm
    for i in range(1, n + 1):
        rules.add_beat(Beat(i, 1.0 + 0.4 * i, 400.0, 900.0, AamiClass.V, 0.9))
    (vt,) = [f for f in rules.findings(1.0 + 0.4 * n) if f.active]
    assert vt.message == f"V-tach {n} beats at 150 bpm"
    assert vt.onset_s == pytest.approx(1.4)


def test_pair_raises_once_and_clears_after_hold_and_clear_delay() -> None:
    h = Harness()
    h.add("NNNNNN")
    h.add("VV", rr_s=0.5)
    h.add("N" * 20)
    v = _v_times(h)
    assert h.raised_codes() == {AlarmCode.PAIR_PVCS}
    (pair,) = h.raised(AlarmCode.PAIR_PVCS)
    assert pair.onset_s == at(v[0])
    assert pair.raised_s == at(v[1] + RR_N_S)
    assert pair.priority is AlarmPriority.LOW
    assert pair.message == "Pair of PVCs (couplet) at 120 bpm"
    (cleared,) = [e for e in h.events if e.lifecycle is AlarmLifecycle.CLEARED]
    assert cleared.alarm_id == pair.alarm_id
    # true until the 2nd V + 5 s hold (last judged true at the last beat before that), then
    # the engine's 3 s clear delay
    last_true = max(h.active[AlarmCode.PAIR_PVCS])
    assert last_true <= v[1] + 5.0 < last_true + RR_N_S
    assert cleared.cleared_s is not None
    assert last_true + 3.0 <= cleared.cleared_s < last_true + 3.0 + RR_N_S


def test_couplets_within_the_hold_keep_one_alarm() -> None:
    h = Harness()
    h.add("NNNN")
    for _ in range(4):
        h.add("VV", rr_s=0.5)
        h.add("NNNN")  # a couplet every ~4 s
    assert len(h.raised(AlarmCode.PAIR_PVCS)) == 1
    assert not [e for e in h.events if e.lifecycle is AlarmLifecycle.CLEARED]


def test_pattern_is_reported_once_even_when_asked_late() -> None:
    rules = EctopyRules(
        EctopyConfig(run_onset_premature=None, event_hold_s=0.0), strip=None, strip_s=STRIP_S
    )
    t = 1.0
    for i, cls in enumerate("NNVVN"):
        rr = None if i == 0 else 800.0
        rules.add_beat(Beat(i, t, rr, 900.0, _CLASSES[cls], 0.9))
        t += 0.8
    late = t + 30.0
    (pair,) = [f for f in rules.findings(late) if f.active]
    assert pair.code is AlarmCode.PAIR_PVCS
    assert pair.onset_s == at(1.0 + 2 * 0.8)
    assert not any(f.active for f in rules.findings(late + 0.1))


def test_bigeminy_from_the_third_cycle() -> None:
    h = Harness()
    h.add("NNNN")
    h.add("NV" * 5)
    h.add("NNNNNN")
    v = _v_times(h)
    assert h.raised_codes() == {AlarmCode.BIGEMINY}
    (big,) = h.raised(AlarmCode.BIGEMINY)
    assert big.onset_s == at(v[0] - RR_N_S)  # the N before the first V
    assert big.raised_s == at(v[2])  # third (N, V) cycle
    assert big.message == "Ventricular bigeminy: 3 cycles"
    assert big.priority is AlarmPriority.LOW
    # sustained while the pattern lasts
    assert max(h.active[AlarmCode.BIGEMINY]) >= v[4]


def test_two_bigeminy_cycles_are_not_enough() -> None:
    h = Harness()
    h.add("NNNN" + "NV" * 2 + "NN" + "NV" * 2 + "NNNN")
    assert h.raised_codes() == set()


def test_trigeminy_from_the_third_cycle_and_not_bigeminy() -> None:
    h = Harness()
    h.add("NNNN")
    h.add("NNV" * 4)
    h.add("NNNN")
    v = _v_times(h)
    assert h.raised_codes() == {AlarmCode.TRIGEMINY}
    (tri,) = h.raised(AlarmCode.TRIGEMINY)
    assert tri.onset_s == at(v[0] - 2 * RR_N_S)  # first N of the first N, N, V
    assert tri.raised_s == at(v[2])
    assert tri.message == "Ventricular trigeminy: 3 cycles"


def test_s_beats_play_the_normal_part_in_bigeminy() -> None:
    h = Harness()
    h.add("NNNN" + "SVNVSV" + "NN")
    assert h.raised_codes() == {AlarmCode.BIGEMINY}


def test_twelve_isolated_pvcs_in_a_minute_are_frequent() -> None:
    h = Harness()
    rr = 5.0 / 6.0  # 72 bpm, one PVC every 5 s
    h.add("NNNNNN", rr_s=rr)
    h.add("NNNNNV" * 12, rr_s=rr)
    h.add("NN", rr_s=rr)
    v = _v_times(h)
    assert v[-1] - v[0] == pytest.approx(55.0)
    assert h.raised_codes() == {AlarmCode.FREQUENT_PVCS}
    (freq,) = h.raised(AlarmCode.FREQUENT_PVCS)
    assert freq.onset_s == at(v[10])  # the 11th PVC within a minute
    assert freq.raised_s == at(v[10] + rr)  # counted once the next beat is an N
    assert freq.priority is AlarmPriority.LOW
    assert h.rules.pvcs_per_min(h.t) == 12
    # true until the 2nd PVC leaves the minute (the 12 then 10 remain)
    f = {x.code: x for x in h.rules.findings(v[1] + 60.0)}
    assert f[AlarmCode.FREQUENT_PVCS].active
    f = {x.code: x for x in h.rules.findings(v[1] + 60.01)}
    assert not f[AlarmCode.FREQUENT_PVCS].active


def test_ten_pvcs_per_minute_are_not_frequent() -> None:
    h = Harness()
    rr = 6.5 / 8  # one PVC every 6.5 s: at most 10 in any closed 60 s window
    h.add("NNNNNNNV" * 30, rr_s=rr)
    assert h.raised_codes() == set()
    assert max(h.rules.pvcs_per_min(t) for t in h.times("NV")) == 10


def test_pvc_window_is_closed_sixty_seconds() -> None:
    h = Harness()
    h.add("NNNNNNNV" * 11, rr_s=0.75)  # PVCs exactly 6 s apart: 11 within [t - 60, t]
    v = _v_times(h)
    assert v[10] - v[0] == 60.0
    assert h.raised_codes() == set()  # the 11th PVC is counted once the next beat says N
    h.add("N", rr_s=0.75)
    assert h.rules.pvcs_per_min(v[10]) == 11
    assert h.raised_codes() == {AlarmCode.FREQUENT_PVCS}


def test_vtach_beats_do_not_count_as_pvcs_per_min() -> None:
    h = Harness()
    h.add("NNNN")
    h.add("V" * 20, rr_s=RR_150_S)
    h.add("NNNN")
    assert h.rules.pvcs_per_min(h.t) == 0
    assert h.raised_codes() == {AlarmCode.VTACH}


@pytest.mark.parametrize("breaker", ["Q", "F", "?"])
def test_a_q_f_or_unlabelled_beat_breaks_a_run(breaker: str) -> None:
    h = Harness()
    h.add("NNNN")
    h.add("VVV" + breaker + "VVV", rr_s=RR_150_S)
    h.add("NNNN")
    assert h.raised_codes() == {AlarmCode.RUN_PVCS}  # two runs of 3, not a V-tach of 6
    assert h.active[AlarmCode.VTACH] == []
    control = Harness()
    control.add("NNNN")
    control.add("VVVVVVV", rr_s=RR_150_S)
    assert control.raised_codes() == {AlarmCode.VTACH}


def test_low_confidence_v_does_not_count() -> None:
    h = Harness()
    h.add("NNNN")
    h.add("VVVvVV", rr_s=RR_150_S)
    h.add("NNNN")
    assert h.raised_codes() == {AlarmCode.RUN_PVCS, AlarmCode.PAIR_PVCS}
    assert h.rules.category(h.beats[7]) == "unknown"
    # the same beats with a lower threshold are a V-tach
    lenient = Harness(
        EctopyConfig(
            run_onset_premature=None,
            min_confidence=0.2,
            v_min_confidence=0.2,
            vtach_min_confidence=0.2,
            vtach_floor_confidence=0.2,
        )
    )
    lenient.add("NNNN")
    lenient.add("VVVvVV", rr_s=RR_150_S)
    assert lenient.raised_codes() == {AlarmCode.VTACH}


@pytest.mark.parametrize(("confidence", "expected"), [(0.89, set()), (0.9, {AlarmCode.VTACH})])
def test_v_confidence_threshold_is_inclusive(confidence: float, expected: set[AlarmCode]) -> None:
    """A V beat needs ``v_min_confidence`` (here 0.9) to count: below it, no alarm starts."""
    h = Harness(EctopyConfig(run_onset_premature=None, v_min_confidence=0.9))
    h.add("NNNN", confidence=0.99)
    h.add("VVVVVV", rr_s=RR_150_S, confidence=confidence)
    assert h.raised_codes() == expected


@pytest.mark.parametrize(("confidence", "expected"), [(0.49, set()), (0.5, {AlarmCode.VTACH})])
def test_confidence_threshold_is_inclusive(confidence: float, expected: set[AlarmCode]) -> None:
    h = Harness(
        EctopyConfig(
            run_onset_premature=None,
            v_min_confidence=0.0,
            vtach_min_confidence=0.0,
            vtach_floor_confidence=0.0,
        )
    )
    h.add("NNNN", confidence=0.99)
    h.add("VVVVVV", rr_s=RR_150_S, confidence=confidence)
    assert h.raised_codes() == expected


def test_a_confident_n_but_uncertain_v_breaks_bigeminy() -> None:
    """N-V cycles whose V beats sit at 0.7 (above min_confidence, below v_min) raise nothing."""
    h = Harness(EctopyConfig(run_onset_premature=None, v_min_confidence=0.9))
    for _ in range(5):
        h.add("N", confidence=0.99)
        h.add("V", confidence=0.7)
    assert h.raised_codes() == set()


def test_low_confidence_normal_beat_breaks_bigeminy() -> None:
    h = Harness()
    h.add("NNNN" + "NVNV")
    h.add("N", confidence=0.2)
    h.add("VNVNV")
    assert AlarmCode.BIGEMINY not in h.raised_codes()


def test_reset_across_a_gap_splits_patterns() -> None:
    h = Harness()
    h.add("NNNN")
    h.add("VVVV", rr_s=RR_150_S)
    h.pause(h.t + 0.2)
    h.add("VVV", rr_s=RR_150_S)
    h.add("NNNN")
    # 4 V + gap + 3 V: two short runs, never a V-tach of 7
    assert h.raised_codes() == {AlarmCode.RUN_PVCS}
    (run,) = h.raised(AlarmCode.RUN_PVCS)
    assert run.onset_s == at(_v_times(h)[0])
    assert run.message == "Run of 4 PVCs at 150 bpm"
    control = Harness()
    control.add("NNNN")
    control.add("VVVVVVV", rr_s=RR_150_S)
    assert control.raised_codes() == {AlarmCode.VTACH}


def test_reset_restarts_bigeminy_and_pvc_count() -> None:
    h = Harness()
    h.add("NNNN" + "NVNV")
    h.pause(h.t + 1.0)
    h.add("NVNVNN")
    assert AlarmCode.BIGEMINY not in h.raised_codes()
    assert h.rules.pvcs_per_min(h.t) == 2  # only the PVCs after the gap
    control = Harness()
    control.add("NNNN" + "NVNV" + "NVNVNN")
    assert AlarmCode.BIGEMINY in control.raised_codes()


def test_reset_ends_an_episode_at_the_gap() -> None:
    h = Harness()
    h.add("NNNN" + "NV" * 4)
    gap_s = h.t + 0.5
    h.pause(gap_s)
    f = {x.code: x for x in h.rules.findings(gap_s)}
    assert f[AlarmCode.BIGEMINY].active
    f = {x.code: x for x in h.rules.findings(gap_s + 0.01)}
    assert not f[AlarmCode.BIGEMINY].active


def test_evidence_has_the_labelled_beats_rr_and_strip() -> None:
    h = Harness()
    h.add("NNNNNNNN")
    h.add("VVVVVV", rr_s=RR_150_S)
    (vt,) = h.raised(AlarmCode.VTACH)
    ev = vt.evidence
    v = _v_times(h)
    # 4 beats of context, then the 6 V; the deciding beat is the last
    assert [b.aami_class for b in ev.beats] == [AamiClass.N] * 4 + [AamiClass.V] * 6
    assert [b.t_s for b in ev.beats[4:]] == pytest.approx(v, abs=1e-3)
    assert all(b.confidence == pytest.approx(0.99) for b in ev.beats)
    assert ev.rr_ms == pytest.approx([800.0] * 4 + [400.0] * 6)
    assert ev.hr_bpm == pytest.approx(60_000 / 560, abs=0.05)
    ((strip_end_s, strip_s),) = h.strip_calls
    assert strip_end_s == pytest.approx(v[5])
    assert strip_s == STRIP_S
    assert ev.strip is not None
    assert ev.strip.t0_s == pytest.approx(v[5] - STRIP_S)


def test_evidence_of_low_confidence_beats_keeps_their_labels() -> None:
    h = Harness()
    h.add("NNNN")
    h.add("VVvN", rr_s=0.5)
    h.add("NNN")
    (pair,) = h.raised(AlarmCode.PAIR_PVCS)
    classes = [(b.aami_class, b.confidence) for b in pair.evidence.beats]
    assert classes[-2:] == [(AamiClass.V, 0.99), (AamiClass.V, 0.3)]


def test_engine_raises_vtach_once_and_latches_until_acknowledged() -> None:
    h = Harness()
    h.add("NNNNNNNN")
    h.add("V" * 8, rr_s=60 / 172)
    h.add("N" * 30)  # 24 s of sinus rhythm: condition long gone
    (vt,) = h.raised(AlarmCode.VTACH)
    assert vt.message == "V-tach 6 beats at 172 bpm"
    assert h.engine.is_active(AlarmCode.VTACH)
    assert [e.lifecycle for e in h.events] == [AlarmLifecycle.RAISED]
    ack = h.engine.acknowledge(vt.alarm_id, h.t)
    assert [e.lifecycle for e in ack] == [AlarmLifecycle.UPDATED, AlarmLifecycle.CLEARED]
    assert ack[1].alarm_id == vt.alarm_id
    assert not h.engine.is_active(AlarmCode.VTACH)
    # a new run after the acknowledgement is a new alarm
    h.events += ack
    h.add("NN")
    h.add("V" * 6, rr_s=RR_150_S)
    assert len(h.raised(AlarmCode.VTACH)) == 2


def test_acknowledged_vtach_clears_once_the_run_is_over() -> None:
    h = Harness()
    h.add("NNNN")
    h.add("V" * 12, rr_s=RR_150_S)
    (vt,) = h.raised(AlarmCode.VTACH)
    (upd,) = h.engine.acknowledge(vt.alarm_id, h.t)
    assert upd.acknowledged
    h.add("N" * 12)  # 9.6 s: past the 5 s hold and the 3 s clear delay
    cleared = [e for e in h.events if e.lifecycle is AlarmLifecycle.CLEARED]
    assert [e.alarm_id for e in cleared] == [vt.alarm_id]


def test_condition_specs() -> None:
    specs = {s.code: s for s in ectopy_condition_specs(EctopyConfig(run_onset_premature=None))}
    assert set(specs) == set(ECTOPY_CODES)
    assert specs[AlarmCode.VTACH].priority is AlarmPriority.HIGH
    assert specs[AlarmCode.VTACH].latched
    assert specs[AlarmCode.RUN_PVCS].priority is AlarmPriority.MEDIUM
    for code in (
        AlarmCode.PAIR_PVCS,
        AlarmCode.BIGEMINY,
        AlarmCode.TRIGEMINY,
        AlarmCode.FREQUENT_PVCS,
    ):
        assert specs[code].priority is AlarmPriority.LOW
        assert not specs[code].latched
    assert all(s.onset_delay_s == 0.0 for s in specs.values())


def test_config_is_strict() -> None:
    cfg = EctopyConfig()
    assert (cfg.vtach_min_beats, cfg.vtach_rate_bpm, cfg.frequent_pvcs_per_min) == (6, 100.0, 10)
    assert cfg.run_onset_premature == 0.9
    with pytest.raises(ValidationError, match="vtach_min_beats"):
        EctopyConfig(vtach_min_beats=2)
    with pytest.raises(ValidationError, match="min_confidence"):
        EctopyConfig(min_confidence=1.5)
    with pytest.raises(ValidationError, match="run_onset_premature"):
        EctopyConfig(run_onset_premature=1.2)
    with pytest.raises(ValidationError, match="extra"):
        EctopyConfig.model_validate({"vtach_beats": 6})
    with pytest.raises(ValidationError):
        cfg.vtach_rate_bpm = 120.0


def test_bad_input_is_refused_or_read_as_unknown() -> None:
    with pytest.raises(ValueError, match="strip_s"):
        EctopyRules(EctopyConfig(run_onset_premature=None), strip=None, strip_s=0.0)
    rules = EctopyRules(EctopyConfig(run_onset_premature=None), strip=None, strip_s=STRIP_S)
    rules.add_beat(Beat(0, 1.0, None, 900.0, AamiClass.N, 0.9))
    with pytest.raises(ValueError, match="stream order"):
        rules.add_beat(Beat(0, 1.0, None, 900.0, AamiClass.N, 0.9))
    with pytest.raises(ValueError, match="finite"):
        rules.add_beat(Beat(0, math.nan, None, 900.0, AamiClass.N, 0.9))
    nan_conf = Beat(1, 2.0, 1000.0, 900.0, AamiClass.V, math.nan)
    assert rules.category(nan_conf) == "unknown"
    assert rules.category(Beat(1, 2.0, 1000.0, 900.0, AamiClass.V, None)) == "ventricular"


_LABELS = st.sampled_from([*AamiClass, None])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            _LABELS,
            st.one_of(st.none(), st.floats(min_value=-1.0, max_value=2.0)),
            st.floats(min_value=0.2, max_value=2.5),
        ),
        max_size=120,
    ),
    st.lists(st.integers(min_value=0, max_value=119), max_size=3),
)
def test_any_labelled_sequence_gives_consistent_findings(
    beats: list[tuple[AamiClass | None, float | None, float]], gaps: list[int]
) -> None:
    h = Harness()
    t = 1.0
    prev: float | None = None
    for i, (cls, conf, rr_s) in enumerate(beats):
        if i in gaps:
            h.rules.reset(t + 0.1)
            prev = None
        t += rr_s
        rr_ms = None if prev is None else (t - prev) * 1000.0
        h.rules.add_beat(Beat(i, t, rr_ms, 900.0, cls, conf))
        prev = t
        findings = h.judge(t)
        assert [f.code for f in findings] == list(ECTOPY_CODES)
        for f in findings:
            if f.active:
                assert f.onset_s is not None
                assert f.onset_s <= t
    for event in h.raised():
        assert event.onset_s <= event.raised_s
        assert len(event.evidence.beats) <= 32


def test_fast_run_of_uncertain_v_beats_is_a_run_not_vtach() -> None:
    """Six fast V beats at 0.8 (below vtach_min_confidence 0.9): run_pvcs (medium), no V-tach."""
    h = Harness()
    h.add("NNNN")
    h.add("VVVVVVV", rr_s=RR_150_S, confidence=0.8)
    h.add("NNNN")
    assert h.raised_codes() == {AlarmCode.RUN_PVCS}


def test_vtach_needs_confident_beats_on_average_with_a_floor() -> None:
    """A sustained VT whose labels wander (mitdb 223 at 1043 s: 0.82-0.98) is V-tach at its
    sixth beat; one beat below the 0.7 floor keeps the same mean from making it V-tach."""
    wandering = (0.86, 0.98, 0.82, 0.95, 0.88, 0.96)  # mean 0.908
    with_floor_miss = (0.99, 0.99, 0.99, 0.99, 0.99, 0.6)  # mean 0.925, one below 0.7
    for confs, vtach in ((wandering, True), (with_floor_miss, False)):
        h = Harness()
        h.add("NNNN")
        for c in confs:
            h.add("V", rr_s=RR_150_S, confidence=c)
        h.add("N")
        assert (AlarmCode.VTACH in h.raised_codes()) is vtach, confs
        assert (AlarmCode.RUN_PVCS in h.raised_codes()) is not vtach, confs


def test_confident_beats_later_in_the_run_make_it_vtach() -> None:
    h = Harness()
    h.add("NNNN")
    h.add("VVVV", rr_s=RR_150_S, confidence=0.8)
    h.add("VVVVVV", rr_s=RR_150_S, confidence=0.99)
    assert AlarmCode.VTACH in h.raised_codes()
