"""Ectopy evidence a nurse can trust: the patient's own beat, consistent runs, signal quality.

Unit tests pin the rules of :class:`agent.alarms.ectopy.EctopyRules` on synthetic beats (a beat
called V that matches the patient's dominant template and is not premature is not a PVC; a run
can be required to keep one morphology; beats seen while the signal is poor build no alarm) and
the shifted correlations of :mod:`agent.inference.beat_features`. The record tests run the
agent's own R-peak detector and the shipped beat CNN over real MIT-BIH segments: the right
bundle-branch-block beats of mitdb 118 that the CNN calls V no longer raise run_pvcs or
pair_pvcs, while the real PVC runs of 233 and 208 still do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from agent.alarms.ectopy import EctopyRules
from agent.beats import Beat
from agent.config import EctopyConfig
from agent.core.items import Signal, StateChange
from agent.inference.beat_features import (
    N_WINDOW_CHANNELS,
    WINDOW_LEN,
    beat_correlation,
    template_correlation,
)
from agent.messages import AamiClass, AlarmCode

N, V = AamiClass.N, AamiClass.V
MITDB = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mitdb"


def _beats(
    classes: str,
    rr_ms: Sequence[float],
    *,
    template_corr: float | None = None,
    prev_beat_corr: float | None = None,
    confidence: float = 0.95,
) -> list[Beat]:
    """Beats with the given classes (``N``/``V`` letters) and RR intervals, in stream order."""
    out: list[Beat] = []
    t = 1.0
    for i, (c, rr) in enumerate(zip(classes, rr_ms, strict=True)):
        t += rr / 1000.0
        out.append(
            Beat(
                i,
                t,
                rr,
                1000.0,
                AamiClass(c),
                confidence,
                template_corr=template_corr if c == "V" else 0.99,
                prev_beat_corr=prev_beat_corr if c == "V" else None,
            )
        )
    return out


def _raised(rules: EctopyRules, items: Sequence[Beat | StateChange]) -> set[AlarmCode]:
    """Feed items; return every ectopy code found active after any of them."""
    seen: set[AlarmCode] = set()
    for item in items:
        rules.feed(item)
        t = item.r_peak_time_s if isinstance(item, Beat) else item.t_s
        seen |= {f.code for f in rules.findings(t) if f.active}
    return seen


def _rules(**kw: float | None) -> EctopyRules:
    return EctopyRules(EctopyConfig.model_validate(kw), strip=None, strip_s=10.0)


# ten N beats at 800 ms, then the pattern under test
_LEAD = "N" * 10
_LEAD_RR = [800.0] * 10


def test_v_beats_matching_the_template_on_time_are_not_pvcs() -> None:
    """A wide normal beat read as V (template match 0.98, RR 800 ms) raises no run or pair."""
    beats = _beats(
        _LEAD + "VVVV" + "NN", [*_LEAD_RR, 800, 810, 790, 800, 800, 800], template_corr=0.98
    )
    assert _raised(_rules(), beats) == set()
    # the same beats with both tests off are a run of 4 PVCs
    off = _rules(v_template_match=None, run_onset_premature=None)
    assert AlarmCode.RUN_PVCS in _raised(off, beats)


def test_premature_or_unlike_template_v_beats_still_count() -> None:
    """A premature run (RR 450 ms against 800) counts even when it matches the template, and
    an on-time run counts when it does not match (0.5 < 0.95)."""
    early = _beats(_LEAD + "VVV" + "NN", [*_LEAD_RR, 450, 450, 450, 1100, 800], template_corr=0.98)
    assert AlarmCode.RUN_PVCS in _raised(_rules(), early)
    unlike = _beats(_LEAD + "VVV" + "NN", [*_LEAD_RR, 800, 800, 800, 800, 800], template_corr=0.5)
    assert AlarmCode.RUN_PVCS in _raised(_rules(run_onset_premature=None), unlike)


def test_run_needs_consistent_morphology_when_asked() -> None:
    """With run_min_beat_corr 0.4, V beats unlike each other (0.1) make no pair or run."""
    rr = [*_LEAD_RR, 450, 450, 450, 1100, 800]
    mixed = _beats(_LEAD + "VVV" + "NN", rr, template_corr=0.3, prev_beat_corr=0.1)
    assert _raised(_rules(run_min_beat_corr=0.4), mixed) == set()
    assert AlarmCode.RUN_PVCS in _raised(_rules(), mixed)  # off by default
    alike = _beats(_LEAD + "VVV" + "NN", rr, template_corr=0.3, prev_beat_corr=0.9)
    assert AlarmCode.RUN_PVCS in _raised(_rules(run_min_beat_corr=0.4), alike)


def test_a_third_v_nearer_the_patients_beat_ends_a_couplet() -> None:
    """With run_closer_to_dominant at 0.8 (off by default), a couplet (template match 0.3) then
    a beat called V that matches the template at 0.9 and the V before it at 0.4 (0.5 better
    than the PVC; the margin is 0.3) is a pair of PVCs and a conducted beat, not a run of
    three; when it matches the PVC as well as the template (0.8: less than 0.3 better) it
    still extends the run."""
    rr = [*_LEAD_RR, 450, 450, 800, 800, 800]
    beats = _beats(_LEAD + "VVVNN", rr, template_corr=0.3, prev_beat_corr=0.9)
    nearer = [*beats[:12], replace(beats[12], template_corr=0.9, prev_beat_corr=0.4), *beats[13:]]
    seen = _raised(_rules(run_closer_to_dominant=0.8), nearer)
    assert AlarmCode.PAIR_PVCS in seen
    assert AlarmCode.RUN_PVCS not in seen
    assert AlarmCode.RUN_PVCS in _raised(_rules(), nearer)  # off by default
    alike = [*beats[:12], replace(beats[12], template_corr=0.9, prev_beat_corr=0.8), *beats[13:]]
    assert AlarmCode.RUN_PVCS in _raised(_rules(run_closer_to_dominant=0.8), alike)


def test_beats_in_poor_signal_raise_no_ectopy_alarm() -> None:
    """A run seen while signal_poor is active raises nothing; the same run after it ends does."""
    rr = [*_LEAD_RR, 450, 450, 450, 1100, 800]
    beats = _beats(_LEAD + "VVV" + "NN", rr, template_corr=0.3)
    poor_on = StateChange(Signal.POOR, True, beats[5].r_peak_time_s - 0.1)
    assert _raised(_rules(), [*beats[:5], poor_on, *beats[5:]]) == set()
    poor_off = StateChange(Signal.POOR, False, beats[7].r_peak_time_s - 0.1)
    seen = _raised(_rules(), [*beats[:5], poor_on, *beats[5:7], poor_off, *beats[7:]])
    assert AlarmCode.RUN_PVCS in seen


def test_v_tach_is_not_suppressed_by_poor_signal() -> None:
    """Eight confident V beats at 150 bpm while signal_poor is active raise V-tach (never
    suppressed by signal quality); the same beats below the V-tach confidence bar (0.8 < 0.9)
    raise nothing at all: no V-tach, and no run of PVCs from poor signal."""
    rr = [*_LEAD_RR, *[400.0] * 8, 1000, 800]
    poor_at = 1.0 + sum(_LEAD_RR) / 1000.0 + 0.1  # just before the first V beat
    poor_on = StateChange(Signal.POOR, True, poor_at)
    confident = _beats(_LEAD + "V" * 8 + "NN", rr, template_corr=0.3, confidence=0.95)
    assert _raised(_rules(), [*confident[:10], poor_on, *confident[10:]]) == {AlarmCode.VTACH}
    unsure = _beats(_LEAD + "V" * 8 + "NN", rr, template_corr=0.3, confidence=0.8)
    assert _raised(_rules(), [*unsure[:10], poor_on, *unsure[10:]]) == set()


def test_template_correlation_is_shift_tolerant() -> None:
    """A beat equal to its template shifted by 5 samples (39 ms) matches at 1.0; a beat that is
    its own template (no history) has no correlation; a wrong shape is refused."""
    t = np.arange(WINDOW_LEN, dtype=np.float32)
    qrs = np.exp(-0.5 * ((t - 32.0) / 3.0) ** 2) - 0.3 * np.exp(-0.5 * ((t - 40.0) / 4.0) ** 2)
    window = np.stack([np.roll(qrs, 5), qrs], axis=-1).astype(np.float32)
    assert template_correlation(window) == pytest.approx(1.0, abs=1e-6)
    assert template_correlation(np.stack([qrs, qrs], axis=-1)) is None
    inverted = np.stack([-qrs, qrs], axis=-1).astype(np.float32)
    r_inverted = template_correlation(inverted)
    assert r_inverted is not None
    assert r_inverted < 0.5
    with pytest.raises(ValueError, match="shape"):
        template_correlation(np.zeros((WINDOW_LEN, N_WINDOW_CHANNELS + 1), dtype=np.float32))
    assert beat_correlation(np.roll(qrs, -3), qrs) == pytest.approx(1.0, abs=1e-6)
    assert beat_correlation(qrs, np.zeros(WINDOW_LEN, dtype=np.float32)) is None


# -- real records: the agent's own R-peaks and the shipped beat CNN ---------------------------


@lru_cache(maxsize=4)
def _record_beats(record: str, minutes: float) -> tuple[Beat, ...]:
    """Beats of the first ``minutes`` of a mitdb record, as the agent labels them."""
    from agent.dsp.rpeaks import StreamingRPeakDetector
    from agent.inference.beat_classifier import BeatClassifier, StreamingBeatClassifier
    from tools.beats.dataset import read_lead_uv

    x_uv, fs_hz = read_lead_uv(MITDB / record)
    x_uv = x_uv[: round(minutes * 60.0 * fs_hz)]
    detector = StreamingRPeakDetector(fs_hz, 60)
    chunk = round(fs_hz)
    peaks: list[int] = []
    for start in range(0, x_uv.size, chunk):
        peaks.extend(p.r_peak_idx for p in detector.push(x_uv[start : start + chunk]).r_peaks)
    peaks.extend(p.r_peak_idx for p in detector.flush().r_peaks)

    def getter(start: int, stop: int) -> np.ndarray | None:
        return None if start < 0 or stop > x_uv.size else x_uv[start:stop]

    stream = StreamingBeatClassifier(BeatClassifier(), fs_hz, getter)
    beats: list[Beat] = []
    for idx in peaks:
        lb = stream.push(idx, idx / fs_hz)
        if lb is None:
            continue
        rr = None if not beats else 1000.0 * (lb.r_peak_time_s - beats[-1].r_peak_time_s)
        beats.append(
            Beat(
                lb.r_peak_idx,
                lb.r_peak_time_s,
                rr,
                0.0,
                lb.aami_class,
                lb.confidence,
                template_corr=lb.template_corr,
                prev_beat_corr=lb.prev_beat_corr,
            )
        )
    return tuple(beats)


def _alarm_counts(beats: Sequence[Beat], cfg: EctopyConfig) -> dict[AlarmCode, int]:
    """Alarms raised per code: a code counts once each time it turns active."""
    rules = EctopyRules(cfg, strip=None, strip_s=10.0)
    counts: dict[AlarmCode, int] = {}
    active: set[AlarmCode] = set()
    for beat in beats:
        rules.add_beat(beat)
        now = {f.code for f in rules.findings(beat.r_peak_time_s) if f.active}
        for code in now - active:
            counts[code] = counts.get(code, 0) + 1
        active = now
    return counts


needs_mitdb = pytest.mark.skipif(
    not (MITDB / "118.dat").exists(), reason="MIT-BIH data not found under ../shared/data/mitdb"
)


@needs_mitdb
def test_mitdb_118_bundle_branch_beats_raise_no_runs() -> None:
    """mitdb 118 (right bundle-branch block), whole record: the CNN's V calls on the patient's
    own wide beats gave 14 run_pvcs and 16 pair_pvcs; matched to the template, 2 and 8; with the
    first V of a pair or run also required to be premature (the default), none."""
    beats = _record_beats("118", 30.0)
    off = _alarm_counts(beats, EctopyConfig(v_template_match=None, run_onset_premature=None))
    template_only = _alarm_counts(beats, EctopyConfig(run_onset_premature=None))
    on = _alarm_counts(beats, EctopyConfig())
    assert off.get(AlarmCode.RUN_PVCS, 0) >= 10
    assert off.get(AlarmCode.PAIR_PVCS, 0) >= 12
    assert template_only.get(AlarmCode.RUN_PVCS, 0) <= 3
    assert template_only.get(AlarmCode.PAIR_PVCS, 0) <= 9
    assert on.get(AlarmCode.RUN_PVCS, 0) + on.get(AlarmCode.PAIR_PVCS, 0) == 0


@needs_mitdb
@pytest.mark.parametrize(
    ("record", "code", "at_least"),
    [
        ("233", AlarmCode.RUN_PVCS, 5),  # 6 without the template test: one run became a pair
        ("233", AlarmCode.BIGEMINY, 26),
        ("208", AlarmCode.PAIR_PVCS, 60),  # 75 before the prematurity test of pairs
        ("208", AlarmCode.TRIGEMINY, 20),  # 25 before the clean-conducted-beat test
    ],
)
def test_real_pvc_runs_still_raise(record: str, code: AlarmCode, at_least: int) -> None:
    """Real PVCs are early and unlike the template: their alarms stay (whole records)."""
    counts = _alarm_counts(_record_beats(record, 30.0), EctopyConfig())
    assert counts.get(code, 0) >= at_least


def test_pairs_and_runs_need_a_premature_first_beat_when_asked() -> None:
    """With run_onset_premature 0.8, V beats unlike the template but on time (RR 790-860 ms
    after N beats at 800) raise no pair or run; a couplet at 450 ms (56 % of 800) still does,
    and so does V-tach that starts on time (six V at 150 bpm after a 790 ms interval)."""
    on_time = _beats(_LEAD + "VV" + "NN", [*_LEAD_RR, 860, 790, 800, 800], template_corr=0.5)
    assert _raised(_rules(run_onset_premature=0.8), on_time) == set()
    assert _raised(_rules(run_onset_premature=None), on_time) == {AlarmCode.PAIR_PVCS}
    early = _beats(_LEAD + "VV" + "NN", [*_LEAD_RR, 450, 450, 1150, 800], template_corr=0.5)
    assert _raised(_rules(run_onset_premature=0.8), early) == {AlarmCode.PAIR_PVCS}
    # 0.8 x 800 = 640 ms: a first V at 650 ms is not premature enough, at 630 ms it is
    assert (
        _raised(
            _rules(run_onset_premature=0.8),
            _beats(_LEAD + "VVV" + "NN", [*_LEAD_RR, 650, 450, 450, 1100, 800], template_corr=0.5),
        )
        == set()
    )
    assert AlarmCode.RUN_PVCS in _raised(
        _rules(run_onset_premature=0.8),
        _beats(_LEAD + "VVV" + "NN", [*_LEAD_RR, 630, 450, 450, 1100, 800], template_corr=0.5),
    )
    vt = _beats(
        _LEAD + "V" * 6 + "NN", [*_LEAD_RR, 790, *[400.0] * 5, 1000, 800], template_corr=0.3
    )
    assert AlarmCode.VTACH in _raised(_rules(run_onset_premature=0.8), vt)


def test_no_premature_onset_before_a_baseline() -> None:
    """Right after the start (fewer than 4 baseline RR intervals) prematurity cannot be judged,
    so with the rule on an early couplet raises nothing; without it, it raises a pair."""
    beats = _beats("NNN" + "VV" + "NN", [800, 800, 800, 450, 450, 1150, 800], template_corr=0.5)
    assert _raised(_rules(run_onset_premature=0.8), beats) == set()
    assert _raised(_rules(run_onset_premature=None), beats) == {AlarmCode.PAIR_PVCS}


def test_a_sustained_run_is_not_taken_for_the_patients_own_beat() -> None:
    """A slow VT (107 bpm after sinus at 100 bpm, so its beats are not premature) whose beats
    come to match the dominant template after its third beat (0.98) stays one run and is
    V-tach: a beat continuing a run of 3 or more V beats is never the patient's own beat
    (mitdb 223 at 1,043 s). A single on-time V beat that matches the template still is."""
    lead = _beats("N" * 10, [600.0] * 10)
    t = lead[-1].r_peak_time_s
    run: list[Beat] = []
    for i in range(8):
        t += 0.56
        corr = 0.3 if i < 3 else 0.98
        run.append(Beat(100 + i, t, 560.0, 1000.0, V, 0.95, template_corr=corr))
    tail = [Beat(200, t + 0.6, 600.0, 1000.0, N, 0.95, template_corr=0.99)]
    assert AlarmCode.VTACH in _raised(_rules(), [*lead, *run, *tail])
    own = Beat(300, t + 1.2, 600.0, 1000.0, V, 0.95, template_corr=0.98)
    rules = _rules()
    for b in [*lead, own]:
        rules.add_beat(b)
    assert rules.category(own) != "ventricular"


def _extra_detection_beats(second_corr: float, rr_ms: tuple[float, float]) -> list[Beat]:
    """Ten N at 800 ms; an extra detection called V (template 0.1); a beat called V with
    template ``second_corr``; then N beats on time again."""
    rr1, rr2 = rr_ms
    rows = [("N", 800.0, 0.99)] * 10 + [("V", rr1, 0.1), ("V", rr2, second_corr)]
    rows += [("N", 800.0, 0.99)] * 4
    out: list[Beat] = []
    t = 1.0
    for i, (c, rr, corr) in enumerate(rows):
        t += rr / 1000.0
        out.append(Beat(i, t, rr, 1000.0, AamiClass(c), 0.95, template_corr=corr))
    return out


def test_a_beat_on_time_after_an_extra_detection_is_the_patients_own() -> None:
    """An extra detection 300 ms after a beat, then the next beat on time (300 + 500 ms = the
    800 ms rhythm) shaped like the patient's (0.99): no pair, though its own RR is short;
    unlike the template (0.3) the same two beats are a pair, and so are two V beats that do
    not end on time (400 + 600 ms = 125 % of the rhythm)."""
    assert AlarmCode.PAIR_PVCS not in _raised(_rules(), _extra_detection_beats(0.99, (300, 500)))
    assert AlarmCode.PAIR_PVCS in _raised(_rules(), _extra_detection_beats(0.3, (300, 500)))
    late = _extra_detection_beats(0.99, (400, 600))
    assert AlarmCode.PAIR_PVCS in _raised(_rules(), late)
