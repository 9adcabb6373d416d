"""``python -m tools.evaluate alarms``: every alarm the agent raised, judged as a nurse lives it.

A nurse does not see Se and +P; she sees alarms. For every *physiological* alarm raised in
``alarms.jsonl`` (written by ``bedside analyze``, here with ``--ack-after``: latched alarms
are acknowledged ``ACK_AFTER_S`` after they are raised, so a later episode raises its own
alarm), this module decides **true** or **false** against the reference annotations, and
reports per condition: true, false, PPV (true / raised), false alarms per hour of recording,
and examples; technical alarms (``leads_off``, ``signal_poor``, ...) are counted (number and
time active). Per record and gross (sums over records before the ratios, EC57 "gross").

Matching rules
--------------
Each alarm has a window ``[onset_s - TOLERANCE_S, raised_s + TOLERANCE_S]`` (stream seconds from
the record's start; ``onset_s`` is when the agent says the condition began, ``raised_s`` when
it raised the alarm). Reference beats are every annotation with a beat symbol
(:data:`tools.ec57.BEAT_SYMBOLS`, VF/VFL flutter waves ``!`` included, nothing excluded),
classed by AAMI EC57 (:data:`tools.beats.dataset.AAMI_CLASS_OF_SYMBOL`; ``!`` is no class).
Reference rhythms are the ``+`` annotations' ``aux_note`` (``(VT``, ``(B``, ...), each lasting
to the next rhythm annotation (svdb has none). "Consecutive" means consecutive *reference
beats*: any beat of another class breaks a run. The alarm is **true** when:

- ``run_pvcs``: a run of >= 3 consecutive reference V beats overlaps the window;
- ``pair_pvcs``: a run of >= 2 consecutive reference V beats overlaps the window (a longer run
  is ventricular ectopy the nurse must see, so it counts as true);
- ``vtach``: a run of >= ``vtach_min_beats`` (6) reference V beats whose rate over some
  6 consecutive V beats is above ``vtach_rate_bpm`` (100 bpm) overlaps the window, or a
  reference ``(VT``, ``(VFL`` or ``(VF`` rhythm does (a lethal ventricular rhythm);
- ``bigeminy``: >= 3 consecutive (N|S, V) reference cycles overlap the window, or a reference
  ``(B`` rhythm does; ``trigeminy``: >= 3 (N|S, N|S, V) cycles, or a ``(T`` rhythm;
- ``frequent_pvcs``: more than ``frequent_pvcs_per_min`` (10) reference V beats in the 60 s
  ending at ``raised_s + TOLERANCE_S``;
- ``pause``: two consecutive reference beats at least ``pause_s - GAP_TOLERANCE_S`` apart, the
  gap overlapping the window; ``asystole``: the same with ``asystole_s`` (or a ``(ASYS``
  rhythm);
- ``hr_high`` / ``extreme_tachy``: the reference heart rate (the monitor average of the last
  12 reference RR intervals, IEC 60601-2-27 201.7.9.2.9.101 b) 3), as the agent computes it)
  exceeds the limit less the HR-meter tolerance (10 % or 5 bpm, whichever is larger:
  IEC 60601-2-27 201.7.9.2.9.101 b) 4)) at some reference beat in the window;
  ``hr_low`` / ``extreme_brady``: it falls below the limit plus that tolerance;
- ``vfib``: a reference ``(VF`` or ``(VFL`` rhythm overlaps the window;
- ``afib``: a reference ``(AFIB`` rhythm overlaps the window.

Conditions no ECG reference can judge (``news2_*``) are counted as "not judged".

Sets: mitdb DS1 and DS2 (de Chazal 2004) apart, the four paced mitdb records with
``patient.paced`` off and on, svdb (the 40 records in ``../shared/data/svdb``, 128 Hz) and
nstdb (118 and 119 with electrode-motion noise at 24 ... -6 dB). The shipped beat model
(2.0.0) was trained on mitdb DS1 and these 40 svdb records, so DS1, svdb and nstdb (DS1
records 118 and 119 with noise) are scored *in sample* by those sets; DS2 (and the paced
records, left out of training) are the unseen patients. The sets ``mitdb-ds1-cv``, ``svdb-cv``
and ``nstdb-cv`` are the same records with each one labelled by the ``tools.beats`` fold model
that never saw its patient (:data:`BEAT_FOLDS`, :func:`beat_fold_card`; nstdb's 118eXX and
119eXX by the folds that held out mitdb 118 and 119): the unseen-patient alarm figures on
those records, and where the ectopy rules' thresholds are chosen (:mod:`agent.alarms.ectopy`).

References
----------
ANSI/AAMI EC57:2012, 3.1 and 4.2 (gross statistics, 150 ms matching window).
IEC 60601-2-27:2011, 201.7.9.2.9.101 b) 3) and 4) (heart-rate averaging and accuracy).
de Chazal P, O'Dwyer M, Reilly RB. Automatic classification of heartbeats using ECG
morphology and heartbeat interval features. IEEE Trans Biomed Eng 2004;51(7):1196-1206.
doi:10.1109/TBME.2004.827359
Drew BJ et al. Insights into the problem of alarm fatigue with physiologic monitor devices.
PLoS One 2014;9(10):e110274. doi:10.1371/journal.pone.0110274 (alarm-by-alarm adjudication).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import wfdb
from numpy.typing import NDArray

from agent.config import AgentConfig, AlarmConfig, DspConfig, PatientConfig
from agent.dsp.heart_rate import hr_bpm_monitor
from agent.messages import AlarmCode, AlarmCondition, AlarmEvent, AlarmLifecycle
from tools.beats.dataset import AAMI_CLASS_OF_SYMBOL, DS1, DS2, PACED
from tools.ec57 import BEAT_SYMBOLS, MATCH_WINDOW_S

logger = logging.getLogger(__name__)

TOLERANCE_S: Final = 2.0
"""An alarm's window reaches this far before its onset and after it was raised, s: a
pattern is decided a beat or two after it happened, and the agent's R-peaks sit within
150 ms of the reference's (EC57)."""

GAP_TOLERANCE_S: Final = 2 * MATCH_WINDOW_S
"""A reference RR gap may be this much shorter than the pause / asystole limit, s: each of
its two beats may sit up to the EC57 matching window (150 ms) from the agent's."""

ACK_AFTER_S: Final = 30.0
"""Default acknowledgement delay of the evaluation, s: a nurse at the station acknowledges a
latched alarm within about half a minute (Drew 2014 reports median response times of
minutes for non-lethal alarms; 30 s is a busy but attentive nurse)."""

HR_TOLERANCE_PCT: Final = 10.0
"""HR-meter tolerance, % (IEC 60601-2-27 201.7.9.2.9.101 b) 4): ±10 % or ±5 bpm)."""
HR_TOLERANCE_BPM: Final = 5.0
"""HR-meter tolerance, bpm (same clause; whichever of the two is larger)."""

FREQUENT_WINDOW_S: Final = 60.0
"""PVCs/min is counted over 60 s, as the agent does (:mod:`agent.alarms.ectopy`)."""

EXAMPLES: Final = 5
"""Examples of false (and of true) alarms kept per condition and set."""

VENTRICULAR_RHYTHMS: Final = frozenset({"(VT", "(VFL", "(VF"})
VF_RHYTHMS: Final = frozenset({"(VFL", "(VF"})

JUDGED: Final = (
    AlarmCode.ASYSTOLE,
    AlarmCode.VFIB,
    AlarmCode.VTACH,
    AlarmCode.EXTREME_TACHY,
    AlarmCode.EXTREME_BRADY,
    AlarmCode.HR_HIGH,
    AlarmCode.HR_LOW,
    AlarmCode.PAUSE,
    AlarmCode.AFIB,
    AlarmCode.RUN_PVCS,
    AlarmCode.PAIR_PVCS,
    AlarmCode.BIGEMINY,
    AlarmCode.TRIGEMINY,
    AlarmCode.FREQUENT_PVCS,
)
"""Physiological conditions judged against the reference, in report order."""

HR_CODES: Final = (
    AlarmCode.HR_HIGH,
    AlarmCode.EXTREME_TACHY,
    AlarmCode.HR_LOW,
    AlarmCode.EXTREME_BRADY,
)

ECTOPY: Final = (
    AlarmCode.VTACH,
    AlarmCode.RUN_PVCS,
    AlarmCode.PAIR_PVCS,
    AlarmCode.BIGEMINY,
    AlarmCode.TRIGEMINY,
)
"""The ventricular ectopy alarms of the issue's targets (PPV >= 90 %, <= 0.5 false/h)."""


@dataclass(frozen=True, slots=True)
class AlarmSet:
    """A named set of records, with the setting the agent runs them under.

    ``out_of_fold``: every record is labelled by the beat model of :data:`BEAT_FOLDS` that
    never saw it (its held-out fold, :func:`beat_fold_card`) instead of the shipped model.
    ``records`` empty: the svdb records at hand (:func:`tools.beats.dataset.svdb_records`), or
    with ``held_out`` the others present (:func:`tools.beats.dataset.svdb_held_out_records`).
    """

    name: str
    db: str
    records: tuple[str, ...]
    paced: bool
    description: str
    out_of_fold: bool = False
    held_out: bool = False


BEAT_FOLDS: Final = Path(__file__).resolve().parents[1] / "beats" / "folds"
"""The four patient-wise fold models of the shipped beat CNN's recipe (``fold<k>/beat_cnn.json``,
fold k trained on the other three folds of :data:`tools.beats.train.FOLDS`), made by
``python -m tools.beats cv --tag shipped --save-folds`` (TensorFlow training is reproducible on
one machine, not across machines, so the models behind the reported figures are kept)."""


def beat_fold_card(record: str, folds_dir: Path = BEAT_FOLDS) -> Path:
    """Return the card of the beat fold model that held ``record`` out.

    Raises
    ------
    KeyError
        If ``record`` is in no fold (only mitdb DS1 and the 40 svdb records are).
    FileNotFoundError
        If that fold's card is missing.
    """
    from tools.beats.train import FOLDS

    for k, fold in enumerate(FOLDS):
        if record in fold:
            card = folds_dir / f"fold{k}" / "beat_cnn.json"
            if not card.exists():
                msg = f"no beat fold model {card} (python -m tools.beats cv --save-folds)"
                raise FileNotFoundError(msg)
            return card
    msg = f"record {record} is in no beat-model fold (mitdb DS1 and svdb only)"
    raise KeyError(msg)


def _nstdb() -> tuple[str, ...]:
    return tuple(f"{r}e{snr}" for snr in ("24", "18", "12", "06", "00", "_6") for r in (118, 119))


_SVDB_NO_RHYTHM: Final = (
    "svdb has no rhythm annotations, so every afib alarm there counts false: a bound, not a"
    " measurement"
)

SETS: Final[dict[str, AlarmSet]] = {
    "mitdb-ds1": AlarmSet("mitdb-ds1", "mitdb", DS1, False, "mitdb DS1 (22 records, training)"),
    "mitdb-ds2": AlarmSet("mitdb-ds2", "mitdb", DS2, False, "mitdb DS2 (22 records, test)"),
    "mitdb-paced-off": AlarmSet(
        "mitdb-paced-off", "mitdb", PACED, False, "mitdb paced records, patient.paced = false"
    ),
    "mitdb-paced": AlarmSet(
        "mitdb-paced", "mitdb", PACED, True, "mitdb paced records, patient.paced = true"
    ),
    "svdb": AlarmSet(
        "svdb", "svdb", (), False, "svdb, the 40 records here (128 Hz; " + _SVDB_NO_RHYTHM + ")"
    ),
    "mitdb-ds1-cv": AlarmSet(
        "mitdb-ds1-cv",
        "mitdb",
        DS1,
        False,
        "mitdb DS1, each record labelled by the beat fold model that never saw it",
        out_of_fold=True,
    ),
    "svdb-cv": AlarmSet(
        "svdb-cv",
        "svdb",
        (),
        False,
        "svdb, each record labelled by the beat fold model that never saw it ("
        + _SVDB_NO_RHYTHM
        + ")",
        out_of_fold=True,
    ),
    "svdb-held-out": AlarmSet(
        "svdb-held-out",
        "svdb",
        (),
        False,
        "svdb, the odd-numbered records (an independent test: never trained or tuned on;"
        " present only in a full PhysioNet download; " + _SVDB_NO_RHYTHM + ")",
        held_out=True,
    ),
    "nstdb": AlarmSet("nstdb", "nstdb", _nstdb(), False, "nstdb 118/119, 24 to -6 dB"),
    "nstdb-cv": AlarmSet(
        "nstdb-cv",
        "nstdb",
        _nstdb(),
        False,
        "nstdb 118/119, 24 to -6 dB, labelled by the beat fold model that never saw 118 / 119",
        out_of_fold=True,
    ),
}
DEFAULT_SETS: Final = tuple(n for n in SETS if not SETS[n].held_out)
"""Every set but ``svdb-held-out``, which needs records the project does not have."""

HIGH_PRIORITY_SETS: Final = ("mitdb-ds1", "mitdb-ds2", "mitdb-paced", "svdb", "nstdb")
"""The issue's false high-priority figure: mitdb (paced records with ``patient.paced``), svdb
and nstdb, with the shipped beat model (in sample on DS1, svdb and nstdb)."""

HIGH_PRIORITY_SETS_UNSEEN: Final = (
    "mitdb-ds1-cv",
    "mitdb-ds2",
    "mitdb-paced",
    "svdb-cv",
    "nstdb-cv",
)
"""The same records, every one labelled by a beat model that never saw its patient."""


# -- reference ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    """Reference annotations of one record, in seconds.

    Attributes
    ----------
    record : str
        Record name.
    duration_s : float
        Record duration, s.
    beat_t_s : NDArray[np.float64]
        Reference beat times, shape ``(n_beats,)``, s, increasing.
    beat_class : str
        One character per beat: ``n`` (AAMI N or S), ``v`` (V), ``x`` (F, Q, ``!``).
    rhythms : tuple[tuple[float, float, str], ...]
        ``(start_s, end_s, aux_note)`` of every reference rhythm episode.
    hr_bpm : NDArray[np.float64]
        Monitor-averaged reference HR at each beat (NaN before two beats), shape ``(n_beats,)``.
    """

    record: str
    duration_s: float
    beat_t_s: NDArray[np.float64]
    beat_class: str
    rhythms: tuple[tuple[float, float, str], ...]
    hr_bpm: NDArray[np.float64]


def load_reference(record_path: str | Path) -> Reference:
    """Load the reference beats, classes, rhythms and heart rate of a WFDB record.

    Raises
    ------
    FileNotFoundError
        If the header or the ``.atr`` file is missing.
    """
    path = str(record_path)
    header = wfdb.rdheader(path)
    ann = wfdb.rdann(path, "atr")
    fs = float(header.fs)
    duration_s = int(header.sig_len) / fs
    aux = [str(a).rstrip("\x00") for a in (ann.aux_note or [""] * len(ann.symbol))]
    times: list[float] = []
    classes: list[str] = []
    rhythms: list[tuple[float, float, str]] = []
    open_rhythm: tuple[float, str] | None = None
    for sample, symbol, note in zip(np.asarray(ann.sample).tolist(), ann.symbol, aux, strict=True):
        t = sample / fs
        if symbol == "+" and note.startswith("("):
            if open_rhythm is not None:
                rhythms.append((open_rhythm[0], t, open_rhythm[1]))
            open_rhythm = (t, note)
        elif symbol in BEAT_SYMBOLS:
            times.append(t)
            aami = AAMI_CLASS_OF_SYMBOL.get(symbol)
            classes.append("n" if aami in ("N", "S") else "v" if aami == "V" else "x")
    if open_rhythm is not None:
        rhythms.append((open_rhythm[0], duration_s, open_rhythm[1]))
    beat_t = np.asarray(times, dtype=np.float64)
    rr_ms = np.diff(beat_t) * 1000.0
    hr = np.full(beat_t.shape, np.nan)
    for i in range(1, len(beat_t)):
        value = hr_bpm_monitor(rr_ms[max(0, i - 12) : i].tolist())
        if value is not None:
            hr[i] = value
    return Reference(Path(path).name, duration_s, beat_t, "".join(classes), tuple(rhythms), hr)


def _spans(ref: Reference, pattern: str) -> list[tuple[int, int]]:
    """Beat index spans ``[first, last]`` of the non-overlapping matches of ``pattern``."""
    return [(m.start(), m.end() - 1) for m in re.finditer(pattern, ref.beat_class)]


def _overlaps(a0: float, a1: float, b0: float, b1: float) -> bool:
    return a0 <= b1 and b0 <= a1


def _span_in_window(ref: Reference, span: tuple[int, int], w0: float, w1: float) -> bool:
    return _overlaps(float(ref.beat_t_s[span[0]]), float(ref.beat_t_s[span[1]]), w0, w1)


def _rhythm_in_window(ref: Reference, codes: frozenset[str], w0: float, w1: float) -> bool:
    return any(code in codes and _overlaps(s, e, w0, w1) for s, e, code in ref.rhythms)


def _fast_run(ref: Reference, span: tuple[int, int], n: int, rate_bpm: float) -> bool:
    """Whether some ``n`` consecutive beats of ``span`` run above ``rate_bpm``."""
    t = ref.beat_t_s[span[0] : span[1] + 1]
    for i in range(len(t) - n + 1):
        mean_rr_s = (t[i + n - 1] - t[i]) / (n - 1)
        if mean_rr_s > 0 and 60.0 / mean_rr_s > rate_bpm:
            return True
    return False


def _gap(ref: Reference, min_s: float, w0: float, w1: float) -> bool:
    t = ref.beat_t_s
    edges = np.concatenate([[0.0], t, [ref.duration_s]])
    gaps = np.diff(edges)
    hit = (gaps >= min_s - GAP_TOLERANCE_S) & (edges[:-1] <= w1) & (edges[1:] >= w0)
    return bool(hit.any())


def _hr_tolerance(limit_bpm: float) -> float:
    return max(HR_TOLERANCE_BPM, limit_bpm * HR_TOLERANCE_PCT / 100.0)


def judge(event: AlarmEvent, ref: Reference, cfg: AlarmConfig) -> bool | None:
    """Decide whether one raised alarm is true against the reference (module docstring rules).

    Returns
    -------
    bool | None
        True or false; None for a condition the ECG reference cannot judge (NEWS2).
    """
    w0, w1 = event.onset_s - TOLERANCE_S, event.raised_s + TOLERANCE_S
    ecto = cfg.ectopy
    code = event.condition
    in_window = [s for s in _spans(ref, "v+") if _span_in_window(ref, s, w0, w1)]
    if code is AlarmCode.RUN_PVCS:
        return any(b - a + 1 >= 3 for a, b in in_window)  # a run: 3 V beats
    if code is AlarmCode.PAIR_PVCS:
        return any(b - a + 1 >= 2 for a, b in in_window)  # a pair: 2
    if code is AlarmCode.VTACH:
        n = ecto.vtach_min_beats
        return _rhythm_in_window(ref, VENTRICULAR_RHYTHMS, w0, w1) or any(
            b - a + 1 >= n and _fast_run(ref, (a, b), n, ecto.vtach_rate_bpm) for a, b in in_window
        )
    if code is AlarmCode.BIGEMINY:
        pattern = "(?:nv){%d,}" % ecto.bigeminy_min_cycles  # noqa: UP031
        return _rhythm_in_window(ref, frozenset({"(B"}), w0, w1) or any(
            _span_in_window(ref, s, w0, w1) for s in _spans(ref, pattern)
        )
    if code is AlarmCode.TRIGEMINY:
        pattern = "(?:nnv){%d,}" % ecto.trigeminy_min_cycles  # noqa: UP031
        return _rhythm_in_window(ref, frozenset({"(T"}), w0, w1) or any(
            _span_in_window(ref, s, w0, w1) for s in _spans(ref, pattern)
        )
    if code is AlarmCode.FREQUENT_PVCS:
        t = ref.beat_t_s[np.frombuffer(ref.beat_class.encode(), dtype=np.uint8) == ord("v")]
        counts = np.searchsorted(t, t + FREQUENT_WINDOW_S, side="right") - np.arange(len(t))
        ends = t + FREQUENT_WINDOW_S
        ok = (counts > ecto.frequent_pvcs_per_min) & (t <= w1) & (ends >= w0)
        return bool(ok.any())
    if code is AlarmCode.PAUSE:
        return _gap(ref, cfg.pause_s, w0, w1)
    if code is AlarmCode.ASYSTOLE:
        return _gap(ref, cfg.asystole_s, w0, w1) or _rhythm_in_window(
            ref, frozenset({"(ASYS"}), w0, w1
        )
    if code is AlarmCode.VFIB:
        return _rhythm_in_window(ref, VF_RHYTHMS, w0, w1)
    if code is AlarmCode.AFIB:
        return _rhythm_in_window(ref, frozenset({"(AFIB"}), w0, w1)
    if code in HR_CODES:
        sel = (ref.beat_t_s >= w0) & (ref.beat_t_s <= w1) & np.isfinite(ref.hr_bpm)
        hr = ref.hr_bpm[sel]
        if hr.size == 0:
            return False
        limit = {
            AlarmCode.HR_HIGH: cfg.hr_high_bpm,
            AlarmCode.EXTREME_TACHY: cfg.extreme_tachy_bpm,
            AlarmCode.HR_LOW: cfg.hr_low_bpm,
            AlarmCode.EXTREME_BRADY: cfg.extreme_brady_bpm,
        }[code]
        if code in (AlarmCode.HR_HIGH, AlarmCode.EXTREME_TACHY):
            return bool(hr.max() > limit - _hr_tolerance(limit))
        return bool(hr.min() < limit + _hr_tolerance(limit))
    return None


# -- scoring -----------------------------------------------------------------------------------


@dataclass(slots=True)
class ConditionScore:
    """True and false alarms of one condition (one record, or summed)."""

    true: int = 0
    false: int = 0
    false_examples: list[dict[str, Any]] = field(default_factory=list)
    true_examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def raised(self) -> int:
        """Alarms raised."""
        return self.true + self.false

    def ppv_pct(self) -> float | None:
        """Return true / raised, %, or None when none was raised."""
        return None if self.raised == 0 else 100.0 * self.true / self.raised

    def add(self, other: ConditionScore) -> None:
        """Add another score (gross sums), keeping the first examples."""
        self.true += other.true
        self.false += other.false
        self.false_examples.extend(other.false_examples[: EXAMPLES - len(self.false_examples)])
        self.true_examples.extend(other.true_examples[: EXAMPLES - len(self.true_examples)])


@dataclass(slots=True)
class RecordAlarms:
    """Judged alarms of one record."""

    record: str
    hours: float
    conditions: dict[str, ConditionScore] = field(default_factory=dict)
    not_judged: Counter[str] = field(default_factory=Counter)
    technical: Counter[str] = field(default_factory=Counter)
    technical_s: dict[str, float] = field(default_factory=dict)


def read_alarms(path: Path) -> list[AlarmEvent]:
    """Read an ``alarms.jsonl`` written by ``bedside analyze`` (one event a line)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [AlarmEvent.model_validate_json(line) for line in lines if line.strip()]


def score_record_alarms(
    events: Sequence[AlarmEvent], ref: Reference, cfg: AlarmConfig
) -> RecordAlarms:
    """Judge every raised alarm of one record (see the module docstring for the rules)."""
    out = RecordAlarms(ref.record, ref.duration_s / 3600.0)
    for ev in events:
        if ev.kind is AlarmCondition.TECHNICAL:
            if ev.lifecycle is AlarmLifecycle.RAISED:
                out.technical[ev.condition.value] += 1
            elif ev.lifecycle is AlarmLifecycle.CLEARED and ev.cleared_s is not None:
                code = ev.condition.value
                out.technical_s[code] = out.technical_s.get(code, 0.0) + max(
                    0.0, ev.cleared_s - ev.onset_s
                )
            continue
        if ev.lifecycle is not AlarmLifecycle.RAISED:
            continue
        verdict = judge(ev, ref, cfg)
        if verdict is None:
            out.not_judged[ev.condition.value] += 1
            continue
        score = out.conditions.setdefault(ev.condition.value, ConditionScore())
        example = {
            "record": ref.record,
            "onset_s": ev.onset_s,
            "raised_s": ev.raised_s,
            "message": ev.message,
        }
        if verdict:
            score.true += 1
            if len(score.true_examples) < EXAMPLES:
                score.true_examples.append(example)
        else:
            score.false += 1
            if len(score.false_examples) < EXAMPLES:
                score.false_examples.append(example)
    return out


def _condition_row(score: ConditionScore, hours: float) -> dict[str, Any]:
    ppv = score.ppv_pct()
    return {
        "raised": score.raised,
        "true": score.true,
        "false": score.false,
        "ppv_pct": None if ppv is None else round(ppv, 1),
        "false_per_hour": round(score.false / hours, 3) if hours > 0 else None,
        "false_examples": score.false_examples,
        "true_examples": score.true_examples,
    }


def summarize(records: Sequence[RecordAlarms]) -> dict[str, Any]:
    """Per-record and gross figures of one set, as JSON-ready data."""
    hours = sum(r.hours for r in records)
    gross: dict[str, ConditionScore] = {}
    technical: Counter[str] = Counter()
    technical_s: dict[str, float] = {}
    not_judged: Counter[str] = Counter()
    for r in records:
        for code, score in r.conditions.items():
            gross.setdefault(code, ConditionScore()).add(score)
        technical.update(r.technical)
        for code, seconds in r.technical_s.items():
            technical_s[code] = technical_s.get(code, 0.0) + seconds
        not_judged.update(r.not_judged)
    ectopy = ConditionScore()
    for code in ECTOPY:
        if code.value in gross:
            ectopy.add(gross[code.value])
    high = ConditionScore()
    for code in (
        AlarmCode.ASYSTOLE,
        AlarmCode.VFIB,
        AlarmCode.VTACH,
        AlarmCode.EXTREME_TACHY,
        AlarmCode.EXTREME_BRADY,
    ):
        if code.value in gross:
            high.add(gross[code.value])
    order = [c.value for c in JUDGED]
    return {
        "records": len(records),
        "hours": round(hours, 3),
        "gross": {c: _condition_row(gross[c], hours) for c in order if c in gross},
        "ectopy_total": _condition_row(ectopy, hours),
        "high_priority_total": _condition_row(high, hours),
        "technical": {
            c: {"raised": technical[c], "active_s": round(technical_s.get(c, 0.0), 1)}
            for c in sorted(technical)
        },
        "not_judged": dict(not_judged),
        "per_record": {
            r.record: {
                "hours": round(r.hours, 3),
                "alarms": {
                    c: {"true": s.true, "false": s.false}
                    for c in order
                    if (s := r.conditions.get(c)) is not None
                },
                "technical": dict(r.technical),
            }
            for r in records
        },
    }


# -- running -----------------------------------------------------------------------------------


def set_records(data: Path, s: AlarmSet) -> list[Path]:
    """Record paths of a set (see :class:`AlarmSet` for an empty ``records``).

    Raises
    ------
    FileNotFoundError
        If a set without its own record list finds no record (``svdb-held-out`` without a
        full svdb download; svdb missing).
    """
    from tools.beats.dataset import svdb_held_out_records, svdb_records

    if s.records:
        return [data / s.db / n for n in s.records]
    names = svdb_held_out_records(data) if s.held_out else svdb_records(data)
    if not names:
        which = "odd-numbered (held-out)" if s.held_out else "even-numbered"
        msg = (
            f"set {s.name}: no {which} svdb records under {data / s.db}"
            " (the full database: https://physionet.org/content/svdb/1.0.0/)"
        )
        raise FileNotFoundError(msg)
    return [data / s.db / n for n in names]


def set_config(s: AlarmSet) -> AgentConfig:
    """Return the agent configuration a set runs under (mitdb, svdb, nstdb: Boston, 60 Hz mains)."""
    return AgentConfig(dsp=DspConfig(powerline_hz=60), patient=PatientConfig(paced=s.paced))


def evaluate_set(
    data: Path,
    s: AlarmSet,
    work: Path,
    *,
    ack_after_s: float | None,
    jobs: int,
    reuse: bool,
    only_records: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Analyse a set with ``bedside analyze``'s batch code and judge every alarm it raised.

    Parameters
    ----------
    data
        PhysioNet data folder (``mitdb``, ``svdb``, ``nstdb`` under it).
    s
        The set.
    work
        ``bedside analyze`` output folder for this set (``work/<record>/alarms.jsonl``).
    ack_after_s
        Passed to the analysis (``--ack-after``).
    jobs
        Worker processes for the analysis.
    reuse
        Score the ``alarms.jsonl`` already in ``work`` where present instead of analysing.
    only_records
        Restrict to these record names.

    Raises
    ------
    BedsideError
        If a record cannot be analysed.
    """
    from agent.batch import analyze_records
    from agent.errors import BedsideError

    cfg = set_config(s)
    records = [
        r for r in set_records(data, s) if only_records is None or r.name in set(only_records)
    ]
    todo = [r for r in records if not (reuse and (work / r.name / "alarms.jsonl").exists())]
    groups: dict[Path | None, list[Path]] = {}
    for r in todo:
        patient = r.name[:3] if s.db == "nstdb" else r.name  # 118e12 is mitdb 118 + noise
        groups.setdefault(beat_fold_card(patient) if s.out_of_fold else None, []).append(r)
    for card, group in groups.items():
        logger.info("%s: analysing %d record(s) (%s)", s.name, len(group), card or "shipped")
        run_cfg = cfg
        if card is not None:
            inference = cfg.inference.model_copy(update={"beat_model": card})
            run_cfg = cfg.model_copy(update={"inference": inference})
        report = analyze_records(
            [str(r) for r in group], work, run_cfg, ack_after_s=ack_after_s, jobs=jobs
        )
        if report.failures:
            msg = "; ".join(f"{f.record}: {f.message}" for f in report.failures)
            raise BedsideError(msg)
    scored = [
        score_record_alarms(
            read_alarms(work / r.name / "alarms.jsonl"), load_reference(r), cfg.alarms
        )
        for r in records
    ]
    summary = summarize(scored)
    summary["description"] = s.description
    summary["paced"] = s.paced
    return summary


def run_alarm_evaluation(
    data: Path,
    out: Path,
    work: Path,
    *,
    sets: Sequence[str] = DEFAULT_SETS,
    ack_after_s: float | None = ACK_AFTER_S,
    jobs: int = 1,
    reuse: bool = False,
    only_records: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Evaluate the alarms of every set; write ``out/alarms.json`` and ``out/alarms.md``.

    Returns
    -------
    dict
        The JSON report.

    Raises
    ------
    FileNotFoundError
        Before any analysis, if a set finds no record (:func:`set_records`).
    """
    for name in sets:
        set_records(data, SETS[name])
    report: dict[str, Any] = {
        "ack_after_s": ack_after_s,
        "tolerance_s": TOLERANCE_S,
        "gap_tolerance_s": GAP_TOLERANCE_S,
        "sets": {},
    }
    for name in sets:
        s = SETS[name]
        report["sets"][name] = evaluate_set(
            data,
            s,
            work / name,
            ack_after_s=ack_after_s,
            jobs=jobs,
            reuse=reuse,
            only_records=only_records,
        )
    for key, names in (
        ("high_priority_false_per_hour", HIGH_PRIORITY_SETS),
        ("high_priority_false_per_hour_unseen", HIGH_PRIORITY_SETS_UNSEEN),
    ):
        done = [report["sets"][n] for n in names if n in report["sets"]]
        hp_hours = sum(v["hours"] for v in done)
        hp_false = sum(v["high_priority_total"]["false"] for v in done)
        complete = len(done) == len(names) and hp_hours > 0
        report[key] = round(hp_false / hp_hours, 3) if complete else None
    out.mkdir(parents=True, exist_ok=True)
    (out / "alarms.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (out / "alarms.md").write_text(render_markdown(report), encoding="utf-8")
    return report


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}"


def render_markdown(report: dict[str, Any]) -> str:
    """Render the Markdown report: rules, then per set the gross table, examples and per record."""
    lines = [
        "# Alarms, judged one by one against the reference annotations",
        "",
        "Reproduce: `nice .venv/bin/python -m tools.evaluate alarms --jobs 1` (runs `bedside"
        f" analyze --ack-after {report['ack_after_s']}` over every set, then judges each raised"
        " physiological alarm; rules in `tools/evaluate/alarms.py`).",
        "",
        "Matching rules (window = onset − {t} s … raised + {t} s):".format(t=report["tolerance_s"]),
        "run_pvcs ≥ 3 consecutive reference V beats in the window; pair_pvcs ≥ 2;"
        " vtach ≥ 6 V beats above 100 bpm or a reference (VT/(VFL/(VF rhythm;"
        " bigeminy ≥ 3 (N|S,V) cycles or (B; trigeminy ≥ 3 (N|S,N|S,V) cycles or (T;"
        " frequent_pvcs > 10 reference V beats in 60 s;"
        f" pause / asystole a reference RR gap ≥ the limit − {report['gap_tolerance_s']:.2f} s;"
        " HR alarms the reference monitor-averaged HR beyond the limit less the IEC 60601-2-27"
        " HR tolerance (10 % or 5 bpm); vfib a reference (VF/(VFL rhythm; afib a reference"
        " (AFIB rhythm. Gross = sums over records; false/h over the set's hours.",
        "",
    ]
    if report.get("high_priority_false_per_hour") is not None:
        lines += [
            "False high-priority alarms (asystole, vfib, vtach, extreme brady/tachy) over"
            " mitdb (DS1, DS2, paced with patient.paced), svdb and nstdb:"
            f" **{report['high_priority_false_per_hour']:.3f} per hour** with the shipped beat"
            " model (in sample on DS1, svdb and nstdb)",
        ]
        unseen = report.get("high_priority_false_per_hour_unseen")
        if unseen is not None:
            lines[-1] += (
                f"; **{unseen:.3f} per hour** with every record labelled by a beat model that"
                " never saw its patient (sets `mitdb-ds1-cv`, `svdb-cv`, `nstdb-cv`)"
            )
        lines[-1] += "."
        lines.append("")
    for name, s in report["sets"].items():
        lines += [
            f"## {name}: {s['description']}",
            "",
            f"{s['records']} records, {s['hours']:.2f} h.",
            "",
            "| condition | raised | true | false | PPV % | false / h |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        rows = [
            *s["gross"].items(),
            ("**ectopy (vtach, run, pair, bigeminy, trigeminy)**", s["ectopy_total"]),
            ("**high priority**", s["high_priority_total"]),
        ]
        for code, row in rows:
            lines.append(
                f"| {code} | {row['raised']} | {row['true']} | {row['false']} |"
                f" {_pct(row['ppv_pct'])} | {row['false_per_hour']:.2f} |"
            )
        tech = ", ".join(
            f"{c} {v['raised']} ({v['active_s'] / 60:.1f} min)" for c, v in s["technical"].items()
        )
        lines += ["", f"Technical alarms: {tech or 'none'}."]
        if s["not_judged"]:
            lines.append(f"Not judged: {s['not_judged']}.")
        lines += ["", "False alarms, examples (record, onset → raised s, message):", ""]
        for code, row in s["gross"].items():
            for ex in row["false_examples"][:3]:
                lines.append(
                    f"- {code}: {ex['record']} {ex['onset_s']:.1f} → {ex['raised_s']:.1f} s,"
                    f" {ex['message']}"
                )
        lines += ["", "<details><summary>Per record (true/false)</summary>", ""]
        lines += ["| record | h | alarms (true/false) | technical |", "|---|---:|---|---|"]
        for rec, r in s["per_record"].items():
            alarms = ", ".join(f"{c} {v['true']}/{v['false']}" for c, v in r["alarms"].items())
            techs = ", ".join(f"{c} {n}" for c, n in r["technical"].items())
            lines.append(f"| {rec} | {r['hours']:.2f} | {alarms or '–'} | {techs or '–'} |")
        lines += ["", "</details>", ""]
    return "\n".join(lines)


__all__ = [
    "ACK_AFTER_S",
    "SETS",
    "AlarmSet",
    "ConditionScore",
    "RecordAlarms",
    "Reference",
    "judge",
    "load_reference",
    "read_alarms",
    "run_alarm_evaluation",
    "score_record_alarms",
    "summarize",
]
