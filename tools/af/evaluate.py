"""AF detector evaluation: per-beat Se/Sp, episodes, durations, alarm delay, false alarms/h.

Everything is measured through :class:`agent.rhythm.af.AfDetector` (the int8 TFLite model
and the episode logic the agent ships), never through the float Keras model:

- **afdb, cross-validated**: each record is run through the fold model that did not see it
  (``tools/af/folds/af_rr_fold*.json``; the card's ``training.records`` lists what it saw),
  with the episode hysteresis its fold card holds (the shipped one since session 16,
  :data:`tools.af.build.EPISODE_FIXED`). Beat times come from afdb's ``.qrs`` files.
- **mitdb AF records** (201, 202, 203, 210, 219, 221, 222, and 217 whose annotations also
  hold AF) and **mitdb records without AF** (the other 40): the shipped model, never trained
  or tuned on mitdb. Beat times are either the reference ``.atr`` beat labels
  (``rr_source="reference"``) or the agent's own R-peaks (``rr_source="agent"``,
  :func:`agent.analyze.analyze_record`).

Definitions (ANSI/AAMI EC57:2012 section 3.3 for AF; Petrėnas 2015 for per-beat figures):

- per-beat: a labelled RR interval is *detected AF* when the R-peak ending it lies inside a
  detected episode; Se = TP / (TP + FN) over AF/AFL beats, Sp = TN / (TN + FP) over the
  others; gross (summed over records before dividing);
- episode Se: reference AF episodes that overlap a detected episode / all reference episodes;
  episode +P: detected episodes that overlap a reference episode / all detected episodes;
- duration Se: overlap duration / reference AF duration; duration +P: overlap / detected
  duration (gross);
- alarm delay: for each detected reference episode, the time from its annotated onset to the
  moment the detector confirmed the first detected episode that overlaps it (clipped at 0
  when that episode was confirmed before the annotated onset);
- false AF alarms per hour: detected episodes that overlap no reference AF, per hour of
  record.

The module is over 400 lines because every figure above is computed here, from one set of
summable counts, so that each definition and its code sit side by side.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Final, Literal

import numpy as np
import wfdb
from numpy.typing import NDArray

from agent.rhythm.af import AfDetector, AfEpisodeLogic, EpisodeParams
from models.card import load_card
from tools.af.dataset import AF_RHYTHMS, MITDB_AF_RECORDS, RrRecord, afdb_records, load_rr_record

logger = logging.getLogger(__name__)

FOLDS_DIR: Final = Path(__file__).resolve().parent / "folds"
"""Cross-validation fold models and cards (int8, ~6 KB each)."""

ALARM_TARGET_S: Final = 60.0
"""Issue target: the AF alarm within 60 s of the annotated onset."""

LONG_EPISODE_S: Final = 60.0
"""Episodes at least this long are reported separately (a 10 s run of AF is not what an AF
alarm is for; EC57 3.3 also reports episode statistics restricted by duration)."""

RrSource = Literal["reference", "agent"]


@dataclass(slots=True)
class DetectorRun:
    """What the detector did on one record.

    Attributes
    ----------
    episodes : list[tuple[float, float]]
        Detected AF episodes ``(onset_s, offset_s)`` (open episodes end at the record end).
    confirmed_s : list[float]
        Time each episode was confirmed (the R-peak whose push returned AfChange(True)), s.
    p_af : NDArray[np.float32]
        P(AF) of every window, ``(n_windows,)``.
    centre_start_s : NDArray[np.float64]
        Start of each window's centre interval, s, ``(n_windows,)``.
    t_s : NDArray[np.float64]
        Time of the R-peak that completed each window, s, ``(n_windows,)``.
    segment : NDArray[np.int64]
        Gap-free segment number of each window, ``(n_windows,)``.
    """

    episodes: list[tuple[float, float]] = field(default_factory=list)
    confirmed_s: list[float] = field(default_factory=list)
    p_af: NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))
    centre_start_s: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    t_s: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    segment: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))


def run_detector(det: AfDetector, rec: RrRecord) -> DetectorRun:
    """Push a record's RR series through a fresh detector state; collect episodes.

    Parameters
    ----------
    det
        The detector (reset first).
    rec
        The record.

    Returns
    -------
    DetectorRun
        Episodes, confirmation times and the per-window probabilities.
    """
    det.reset()
    run = DetectorRun()
    p: list[float] = []
    starts: list[float] = []
    ts: list[float] = []
    segs: list[int] = []
    open_onset: float | None = None
    for rr, t in zip(rec.rr_ms.tolist(), rec.t_s.tolist(), strict=True):
        before = det.n_windows
        changes = det.push(rr, t)
        if det.n_windows != before and det.probability is not None:
            p.append(det.probability)
            starts.append(det.last_centre_start_s or 0.0)
            ts.append(t)
            segs.append(det.n_resets)
        for ch in changes:
            if ch.af:
                open_onset = ch.onset_s
                run.confirmed_s.append(t)
            elif open_onset is not None:
                run.episodes.append((open_onset, ch.onset_s))
                open_onset = None
    if open_onset is not None:
        end = max(rec.duration_s, float(rec.t_s[-1]) if rec.t_s.size else 0.0)
        run.episodes.append((open_onset, end))
    run.p_af = np.asarray(p, dtype=np.float32)
    run.centre_start_s = np.asarray(starts, dtype=np.float64)
    run.t_s = np.asarray(ts, dtype=np.float64)
    run.segment = np.asarray(segs, dtype=np.int64)
    return run


def replay_episodes(
    run: DetectorRun, params: EpisodeParams, end_s: float
) -> tuple[list[tuple[float, float]], list[float]]:
    """Re-run only the episode logic over a run's cached probabilities (for tuning).

    Uses the same :class:`~agent.rhythm.af.AfEpisodeLogic` as the detector; a change of
    ``segment`` resets it as a gap resets the detector.

    Returns
    -------
    episodes, confirmed_s
        As in :class:`DetectorRun`.
    """
    logic = AfEpisodeLogic(params)
    episodes: list[tuple[float, float]] = []
    confirmed: list[float] = []
    onset: float | None = None
    prev_seg = -1
    prev_t = 0.0
    for p, s, t, g in zip(
        run.p_af.tolist(),
        run.centre_start_s.tolist(),
        run.t_s.tolist(),
        run.segment.tolist(),
        strict=True,
    ):
        if g != prev_seg:
            ch = logic.reset(prev_t)
            if ch is not None and onset is not None:
                episodes.append((onset, ch.onset_s))
                onset = None
            prev_seg = g
        prev_t = t
        ch = logic.update(p, s)
        if ch is None:
            continue
        if ch.af:
            onset = ch.onset_s
            confirmed.append(t)
        elif onset is not None:
            episodes.append((onset, ch.onset_s))
            onset = None
    if onset is not None:
        episodes.append((onset, end_s))
    return episodes, confirmed


@dataclass(slots=True)
class Counts:
    """Summable counts behind every figure (one record or a gross total)."""

    beats_tp: int = 0
    beats_fn: int = 0
    beats_tn: int = 0
    beats_fp: int = 0
    afib_beats: int = 0
    afib_beats_detected: int = 0
    ref_episodes: int = 0
    ref_episodes_detected: int = 0
    ref_long_episodes: int = 0
    ref_long_episodes_detected: int = 0
    det_episodes: int = 0
    det_episodes_true: int = 0
    ref_af_s: float = 0.0
    det_af_s: float = 0.0
    overlap_s: float = 0.0
    hours: float = 0.0
    delays_s: list[float] = field(default_factory=list)
    long_delays_s: list[float] = field(default_factory=list)

    def __add__(self, other: Counts) -> Counts:
        """Return the gross sum of two sets of counts (delay lists concatenated, in order)."""
        return Counts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(Counts)}
        )


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def _inside(t: NDArray[np.float64], episodes: Sequence[tuple[float, float]]) -> NDArray[np.bool_]:
    out = np.zeros(t.shape, dtype=bool)
    for on, off in episodes:
        out |= (t >= on) & (t < off)
    return out


def score_record(
    rec: RrRecord, episodes: Sequence[tuple[float, float]], confirmed_s: Sequence[float]
) -> Counts:
    """Score detected episodes against a record's reference (module docstring).

    Parameters
    ----------
    rec
        Record with labels and reference AF intervals.
    episodes
        Detected ``(onset_s, offset_s)``.
    confirmed_s
        Confirmation time of each detected episode, s, same order.

    Returns
    -------
    Counts
        Summable counts.
    """
    c = Counts()
    known = rec.label >= 0
    truth = rec.label == 1
    det = _inside(rec.t_s, episodes)
    c.beats_tp = int(np.sum(known & truth & det))
    c.beats_fn = int(np.sum(known & truth & ~det))
    c.beats_tn = int(np.sum(known & ~truth & ~det))
    c.beats_fp = int(np.sum(known & ~truth & det))
    c.afib_beats = int(np.sum(rec.afib_only))
    c.afib_beats_detected = int(np.sum(rec.afib_only & det))
    refs = rec.af_intervals
    c.ref_episodes = len(refs)
    c.det_episodes = len(episodes)
    c.hours = rec.duration_s / 3600.0
    c.ref_af_s = float(sum(e - s for s, e in refs))
    c.det_af_s = float(sum(e - s for s, e in episodes))
    c.overlap_s = float(sum(_overlap(r, d) for r in refs for d in episodes))
    c.det_episodes_true = sum(any(_overlap(d, r) > 0 for r in refs) for d in episodes)
    for ref in refs:
        hits = [i for i, d in enumerate(episodes) if _overlap(ref, d) > 0]
        long = ref[1] - ref[0] >= LONG_EPISODE_S
        c.ref_long_episodes += int(long)
        if not hits:
            continue
        c.ref_episodes_detected += 1
        delay = max(0.0, confirmed_s[hits[0]] - ref[0])
        c.delays_s.append(delay)
        if long:
            c.ref_long_episodes_detected += 1
            c.long_delays_s.append(delay)
    return c


def candidate_counts(
    runs: Mapping[str, tuple[RrRecord, DetectorRun]], candidates: Sequence[EpisodeParams]
) -> dict[tuple[int, str], Counts]:
    """Return the counts of every record under every candidate episode rule (replayed).

    Parameters
    ----------
    runs
        Record name → (record, detector run whose cached probabilities are replayed).
    candidates
        Episode rules; the result is keyed by ``(index into candidates, record name)``.
    """
    counts: dict[tuple[int, str], Counts] = {}
    for i, prm in enumerate(candidates):
        for name, (rec, run) in runs.items():
            end = max(rec.duration_s, float(rec.t_s[-1]))
            counts[i, name] = score_record(rec, *replay_episodes(run, prm, end))
    return counts


def _pct(num: float, den: float) -> float | None:
    return None if den <= 0 else round(100.0 * num / den, 2)


@dataclass(frozen=True, slots=True)
class SetScore:
    """Figures for one set of records.

    Attributes
    ----------
    name : str
        Set name.
    records : list[str]
        Records scored.
    rr_source : str
        Where the beat times came from.
    figures : dict[str, float | int | None]
        The headline figures (percentages in %, times in s).
    per_record : dict[str, dict[str, float | int | None]]
        Per-record figures.
    """

    name: str
    records: list[str]
    rr_source: str
    figures: dict[str, float | int | None]
    per_record: dict[str, dict[str, float | int | None]]


def summarize(c: Counts) -> dict[str, float | int | None]:
    """Headline figures from counts (percentages in %, delays in s, rates per hour)."""
    delays = np.asarray(c.long_delays_s)
    all_delays = np.asarray(c.delays_s)
    false_eps = c.det_episodes - c.det_episodes_true
    return {
        "beat_se_pct": _pct(c.beats_tp, c.beats_tp + c.beats_fn),
        "beat_sp_pct": _pct(c.beats_tn, c.beats_tn + c.beats_fp),
        "beat_ppv_pct": _pct(c.beats_tp, c.beats_tp + c.beats_fp),
        "afib_only_beat_se_pct": _pct(c.afib_beats_detected, c.afib_beats),
        "af_beats": c.beats_tp + c.beats_fn,
        "non_af_beats": c.beats_tn + c.beats_fp,
        "episode_se_pct": _pct(c.ref_episodes_detected, c.ref_episodes),
        "episode_ppv_pct": _pct(c.det_episodes_true, c.det_episodes),
        "long_episode_se_pct": _pct(c.ref_long_episodes_detected, c.ref_long_episodes),
        "ref_episodes": c.ref_episodes,
        "ref_long_episodes": c.ref_long_episodes,
        "detected_episodes": c.det_episodes,
        "duration_se_pct": _pct(c.overlap_s, c.ref_af_s),
        "duration_ppv_pct": _pct(c.overlap_s, c.det_af_s),
        "long_delay_median_s": float(np.median(delays)) if delays.size else None,
        "long_delay_p90_s": float(np.percentile(delays, 90)) if delays.size else None,
        "long_delay_max_s": float(delays.max()) if delays.size else None,
        "long_within_60s_pct": _pct(float(np.sum(delays <= ALARM_TARGET_S)), delays.size),
        "delay_median_s": float(np.median(all_delays)) if all_delays.size else None,
        "false_episodes": false_eps,
        "hours": round(c.hours, 2),
        "false_alarms_per_hour": round(false_eps / c.hours, 3) if c.hours > 0 else None,
    }


def score_set(
    name: str,
    runs: Sequence[tuple[RrRecord, Sequence[tuple[float, float]], Sequence[float]]],
    rr_source: str,
) -> SetScore:
    """Score many records and sum them gross."""
    total = Counts()
    per: dict[str, dict[str, float | int | None]] = {}
    for rec, eps, conf in runs:
        c = score_record(rec, eps, conf)
        per[rec.name] = summarize(c)
        total += c
    return SetScore(
        name=name,
        records=[r.name for r, _e, _c in runs],
        rr_source=rr_source,
        figures=summarize(total),
        per_record=per,
    )


@dataclass(frozen=True, slots=True)
class AfReport:
    """The AF evaluation report.

    Attributes
    ----------
    model_version : str
        Shipped model version.
    sets : list[SetScore]
        afdb CV, mitdb AF records, mitdb records without AF.
    notes : list[str]
        How each set was measured.
    """

    model_version: str
    sets: list[SetScore]
    notes: list[str]

    def to_json(self) -> str:
        """Return the report as indented JSON."""
        return json.dumps(
            {
                "model_version": self.model_version,
                "notes": self.notes,
                "sets": [asdict(s) for s in self.sets],
            },
            indent=2,
        )

    def to_markdown(self) -> str:
        """Return the report as Markdown tables."""
        lines = [
            f"# AF detector (RR intervals), model {self.model_version}",
            "",
            *[f"- {n}" for n in self.notes],
            "",
            "| set | RR source | beat Se % | beat Sp % | beat +P % | episode Se % |"
            " episode +P % | episodes ≥60 s Se % | duration Se % | duration +P % |"
            " delay ≥60 s episodes, median / p90 / max s | within 60 s % |"
            " false AF alarms/h | hours |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in self.sets:
            f = s.figures

            def v(key: str, f: dict[str, float | int | None] = f) -> str:
                x = f[key]
                if x is None:
                    return "–"
                if key == "false_alarms_per_hour":
                    return f"{x:.2f}"
                return f"{x:.1f}" if isinstance(x, float) else str(x)

            lines.append(
                f"| {s.name} | {s.rr_source} | {v('beat_se_pct')} | {v('beat_sp_pct')} |"
                f" {v('beat_ppv_pct')} | {v('episode_se_pct')} ({f['ref_episodes']}) |"
                f" {v('episode_ppv_pct')} ({f['detected_episodes']}) |"
                f" {v('long_episode_se_pct')} ({f['ref_long_episodes']}) |"
                f" {v('duration_se_pct')} | {v('duration_ppv_pct')} |"
                f" {v('long_delay_median_s')} / {v('long_delay_p90_s')} /"
                f" {v('long_delay_max_s')} | {v('long_within_60s_pct')} |"
                f" {v('false_alarms_per_hour')} | {v('hours')} |"
            )
        for s in self.sets:
            lines += [
                "",
                f"## {s.name}: per record",
                "",
                "| record | AF beats | beat Se % | beat Sp % | ref episodes | detected |"
                " duration Se % | duration +P % | false episodes |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for rec, f in s.per_record.items():
                lines.append(
                    f"| {rec} | {f['af_beats']} | {f['beat_se_pct']} | {f['beat_sp_pct']} |"
                    f" {f['ref_episodes']} | {f['detected_episodes']} | {f['duration_se_pct']}"
                    f" | {f['duration_ppv_pct']} | {f['false_episodes']} |"
                )
        return "\n".join(lines) + "\n"


def fold_cards(folds_dir: Path = FOLDS_DIR) -> list[Path]:
    """Return the fold cards, sorted.

    Raises
    ------
    FileNotFoundError
        If there are none (run ``python -m tools.af all``).
    """
    cards = sorted(folds_dir.glob("af_rr_fold*.json"))
    if not cards:
        msg = f"no AF fold models under {folds_dir}: run python -m tools.af all"
        raise FileNotFoundError(msg)
    return cards


def fold_of_record(folds_dir: Path = FOLDS_DIR) -> dict[str, Path]:
    """Return afdb record name -> the card of the fold model that held it out (never saw it).

    Raises
    ------
    FileNotFoundError
        If there are no fold cards, or a card's model does not match its sha256.
    """
    test_of: dict[str, Path] = {}
    for card_path in fold_cards(folds_dir):
        for rec in load_card(card_path).training.get("test_records", []):
            test_of[str(rec)] = card_path
    return test_of


def afdb_cv_runs(afdb_dir: Path, folds_dir: Path = FOLDS_DIR) -> list[tuple[RrRecord, DetectorRun]]:
    """Run every afdb record through the fold model that did not see it.

    Raises
    ------
    FileNotFoundError
        If fold cards are missing, or a record is in no fold's test set.
    """
    test_of = fold_of_record(folds_dir)
    out: list[tuple[RrRecord, DetectorRun]] = []
    detectors: dict[Path, AfDetector] = {}
    for name in afdb_records(afdb_dir):
        if name not in test_of:
            msg = f"afdb record {name} is in no fold's test set ({folds_dir})"
            raise FileNotFoundError(msg)
        card_path = test_of[name]
        det = detectors.setdefault(card_path, AfDetector(card_path))
        rec = load_rr_record(afdb_dir / name)
        out.append((rec, run_detector(det, rec)))
        logger.info("afdb %s: %d episodes", name, len(out[-1][1].episodes))
    return out


def _mitdb_beats(mitdb_dir: Path, name: str, rr_source: RrSource) -> RrRecord:
    path = mitdb_dir / name
    if rr_source == "reference":
        return load_rr_record(path, beats="atr")
    from agent.analyze import analyze_record_blocking
    from agent.config import AgentConfig
    from agent.inference.bundle import ModelBundle

    result = analyze_record_blocking(path, AgentConfig(), ModelBundle())
    samples = np.asarray(result.source_samples(), dtype=np.int64)
    return load_rr_record(path, beat_samples=samples)


def has_af_annotation(path: Path) -> bool:
    """Whether a record's ``.atr`` rhythm annotations contain AF (``(AFIB`` or ``(AFL``)."""
    ann = wfdb.rdann(str(path), "atr")
    return any(str(a).rstrip("\x00") in AF_RHYTHMS for a in (ann.aux_note or []))


def mitdb_records(mitdb_dir: Path) -> list[str]:
    """All mitdb record names, sorted.

    Raises
    ------
    FileNotFoundError
        If the folder holds no ``.hea`` files.
    """
    names = sorted(p.stem for p in mitdb_dir.glob("*.hea"))
    if not names:
        msg = f"no mitdb records under {mitdb_dir}"
        raise FileNotFoundError(msg)
    return names


def evaluate_af(
    data_dir: Path,
    *,
    card_path: Path | None = None,
    folds_dir: Path = FOLDS_DIR,
    rr_source: RrSource = "reference",
    sets: Sequence[str] = ("afdb_cv", "mitdb_af", "mitdb_non_af"),
) -> AfReport:
    """Evaluate the AF detector (module docstring) and return the report.

    Parameters
    ----------
    data_dir
        PhysioNet data folder with ``afdb/`` and ``mitdb/``.
    card_path
        Shipped model card (None: ``models/af_rr.json``), used for the mitdb sets.
    folds_dir
        Cross-validation fold models for the afdb set.
    rr_source
        Beat times for mitdb: ``reference`` annotations or the ``agent``'s R-peaks.
    sets
        Which of ``afdb_cv``, ``mitdb_af``, ``mitdb_non_af`` to run.

    Raises
    ------
    FileNotFoundError
        If data, the model or the fold models are missing.
    """
    det = AfDetector(card_path)
    scores: list[SetScore] = []
    notes = [
        "afdb_cv: 23 afdb records, each through the int8 fold model (5-fold, patient-wise)"
        " that did not see it, with the shipped episode hysteresis (fixed, tools.af.build."
        "EPISODE_FIXED: chosen on all records' out-of-fold outputs, so not nested); beats"
        " from .qrs.",
        f"mitdb: shipped int8 model {det.version}, never trained or tuned on mitdb; beat times"
        + (
            " from the reference .atr beat annotations (not the agent's own R-peaks)"
            if rr_source == "reference"
            else " from the agent's own R-peaks (agent.analyze.analyze_record, MLII)"
        ),
        "mitdb_af: the 7 records with AF named in the issue (201 202 203 210 219 221 222)"
        " plus any other record whose annotations contain (AFIB or (AFL (217);"
        " mitdb_non_af: the other records.",
        "AF = AFIB + AFL (tools/af/dataset.py); per-beat Se/Sp gross over records.",
    ]
    if "afdb_cv" in sets:
        runs = afdb_cv_runs(data_dir / "afdb", folds_dir)
        scores.append(
            score_set("afdb_cv", [(r, d.episodes, d.confirmed_s) for r, d in runs], "afdb .qrs")
        )
    mitdb_dir = data_dir / "mitdb"
    for set_name, wanted in (("mitdb_af", True), ("mitdb_non_af", False)):
        if set_name not in sets:
            continue
        triples = []
        for name in mitdb_records(mitdb_dir):
            has_af = name in MITDB_AF_RECORDS or has_af_annotation(mitdb_dir / name)
            if has_af != wanted:
                continue
            rec = _mitdb_beats(mitdb_dir, name, rr_source)
            run = run_detector(det, rec)
            triples.append((rec, run.episodes, run.confirmed_s))
        scores.append(score_set(set_name, triples, rr_source))
    return AfReport(model_version=det.version, sets=scores, notes=notes)
