"""Ectopy rules on MIT-BIH reference labels (DS1 records only) against the rhythm annotations.

The reference beat labels stand in for a perfect beat classifier, so this checks the pattern
definitions, not the classifier. MIT-BIH marks a ventricular run of 3 or more beats ``(VT``, so
its short ``(VT`` episodes must raise run_pvcs (or pair_pvcs, for a run cut by a fusion or
unclassified beat) and only runs of 6 or more V beats above 100 bpm raise vtach. ``(B`` and
``(T`` are the annotators' bigeminy and trigeminy; the misses are definitional and pinned here
(MIT-BIH calls V-N-N-V-N-N-V trigeminy, i.e. two full N-N-V cycles, where Mindray and Welch
Allyn want three; an F beat breaks a bigeminy).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import wfdb

from agent.alarms.ectopy import EctopyConfig, EctopyRules, run_rate_bpm
from agent.beats import Beat
from agent.messages import AamiClass, AlarmCode
from tools.ec57 import load_reference_beats

RECORDS = ("106", "119", "203", "205", "207", "208", "223")
"""DS1 (de Chazal 2004 training half) records with V runs, bigeminy or trigeminy."""

_AAMI = {
    **dict.fromkeys("NLRej", AamiClass.N),
    **dict.fromkeys("AaJS", AamiClass.S),
    **dict.fromkeys("VE", AamiClass.V),
    "F": AamiClass.F,
    **dict.fromkeys("/fQ", AamiClass.Q),
}
"""MIT-BIH beat symbol → AAMI class (ANSI/AAMI EC57:2012, Table 1)."""

_RHYTHMS = ("(VT", "(B", "(T")


@dataclass
class _Record:
    beats: list[Beat]
    active: list[set[AlarmCode]]  # active ectopy findings judged at each beat
    episodes: list[tuple[str, int, int]]  # (rhythm, start_idx, end_idx) from the .atr aux notes


def _run(mitdb: Path, record: str) -> _Record:
    path = mitdb / record
    ref = load_reference_beats(path)
    ann = wfdb.rdann(str(path), "atr")
    episodes: list[tuple[str, int, int]] = []
    open_: tuple[str, int] | None = None
    for sample, aux in zip(ann.sample, ann.aux_note, strict=True):
        note = aux.strip("\x00")
        if not note.startswith("("):
            continue
        if open_ is not None:
            episodes.append((open_[0], open_[1], int(sample)))
            open_ = None
        if note in _RHYTHMS:
            open_ = (note, int(sample))
    if open_ is not None:
        episodes.append((open_[0], open_[1], ref.n_samples))
    rules = EctopyRules(EctopyConfig(), strip=None, strip_s=6.0)
    beats: list[Beat] = []
    active: list[set[AlarmCode]] = []
    prev: float | None = None
    for idx, symbol in zip(ref.beat_idx, ref.symbols, strict=True):
        t = float(idx) / ref.fs_hz
        beat = Beat(int(idx), t, None if prev is None else (t - prev) * 1000.0, 0.0, _AAMI[symbol])
        prev = t
        rules.add_beat(beat)
        beats.append(beat)
        active.append({f.code for f in rules.findings(t) if f.active})
    return _Record(beats, active, episodes)


def _longest_v_run(beats: list[Beat]) -> list[Beat]:
    best: list[Beat] = []
    run: list[Beat] = []
    for beat in beats:
        run = [*run, beat] if beat.aami_class is AamiClass.V else []
        if len(run) > len(best):
            best = run
    return best


@pytest.fixture(scope="module")
def records(mitdb: Path) -> dict[str, _Record]:
    return {record: _run(mitdb, record) for record in RECORDS}


def test_vt_episodes_on_reference_labels(records: dict[str, _Record]) -> None:
    long_fast = long_fast_found = short = short_found = 0
    for rec in records.values():
        for rhythm, start, end in rec.episodes:
            if rhythm != "(VT":
                continue
            inside = [i for i, b in enumerate(rec.beats) if start <= b.r_peak_idx < end]
            run = _longest_v_run([rec.beats[i] for i in inside])
            rate = run_rate_bpm(run)
            # a short run is decided by the beat after it
            after = range(inside[0], min(len(rec.beats), inside[-1] + 2))
            found = set().union(*(rec.active[i] for i in after))
            if len(run) >= 6 and rate is not None and rate > 100.0:
                long_fast += 1
                long_fast_found += AlarmCode.VTACH in found
            else:
                short += 1
                short_found += bool(found & {AlarmCode.RUN_PVCS, AlarmCode.PAIR_PVCS})
    assert (long_fast_found, long_fast) == (7, 7)
    # the one short episode without a pair or run: 205 at 1,466 s, a slow ventricular rhythm
    # (about 85 bpm) straight after a fast V-tach, whose first V is not premature against the
    # few conducted beats there (run_onset_premature); the V-tach before it is alarmed
    assert (short_found, short) == (29, 30)


def test_vtach_onsets_lie_in_annotated_vt(records: dict[str, _Record]) -> None:
    onsets = 0
    for rec in records.values():
        vt = [(s, e) for rhythm, s, e in rec.episodes if rhythm == "(VT"]
        was = False
        for beat, active in zip(rec.beats, rec.active, strict=True):
            now = AlarmCode.VTACH in active
            if now and not was:
                onsets += 1
                assert any(s <= beat.r_peak_idx < e for s, e in vt), beat.r_peak_time_s
            was = now
    assert onsets == 6  # 205's runs at 298.8 s and 303.0 s are one episode (5 s hold)


@pytest.mark.parametrize(
    ("rhythm", "code", "expected"),
    [("(B", AlarmCode.BIGEMINY, (65, 66)), ("(T", AlarmCode.TRIGEMINY, (43, 48))],
)
def test_bigeminy_trigeminy_episodes_on_reference_labels(
    records: dict[str, _Record], rhythm: str, code: AlarmCode, expected: tuple[int, int]
) -> None:
    found = total = 0
    for rec in records.values():
        for name, start, end in rec.episodes:
            if name != rhythm:
                continue
            total += 1
            found += any(
                code in rec.active[i]
                for i, b in enumerate(rec.beats)
                if start <= b.r_peak_idx < end
            )
    assert (found, total) == expected
