"""Score the AF calls in a ``bedside analyze`` output folder against rhythm annotations.

``python -m tools.af agent-out --data ../shared/data --db mitdb FOLDER`` reads, for every
record folder under ``FOLDER``, its ``alarms.jsonl`` (``afib`` alarms: raised at
``raised_s``, active until ``cleared_s``) and ``rhythm.csv`` (``AFIB`` rows), and the
record's reference rhythm annotations (``(AFIB`` and ``(AFL`` are AF, adjacent ones one
episode, as in :mod:`tools.af.dataset`). Rules, the same as the mitdb table of
``docs/af_detector.md``:

- an ``afib`` alarm is *true* when its span (onset to clear, ±``TOLERANCE_S``) overlaps
  annotated AF, else *false*; false alarms are counted per hour over the records without any
  annotated AF (``false_per_hour_non_af``) and, all of them, per hour of every record's time
  outside annotated AF (``false_per_hour_outside_af``: afdb, where every record has AF);
- a reference AF episode of at least ``MIN_EPISODE_S`` is *alarmed within* D s when an
  ``afib`` alarm is active at some moment in ``[onset, onset + D]`` (an alarm still active
  from an earlier episode counts from the onset);
- a reference AF episode of at least ``MIN_EPISODE_S`` has an *AF row within* D s when an
  ``AFIB`` row of ``rhythm.csv`` covers some moment in ``[onset, onset + D]`` (the rhythm
  the monitor shows, which comes before the alarm's ``alarms.afib_min_duration_s``);
- AF rows: seconds inside and outside annotated AF;
- an episode whose annotated onset lies within ``TOLERANCE_S`` of the record's start was
  under way when monitoring began: it has no onset to be called within D s of, so
  ``af_row_within_30s_observed_onset`` counts the AF rows within 30 s over the other episodes
  (``episodes_observed_onset``), beside the figures over every episode.

A database without rhythm annotations (svdb) gets counts only: every call is unjudged.
A folder with a ``REFERENCE.csv`` (CinC 2017: one label per recording, N / A / O / ~) is
scored per recording instead: called AF when ``rhythm.csv`` has an ``AFIB`` row; AF F1 and
the recordings called AF per reference label (:func:`score_cinc_folder`).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tools.af.dataset import cinc_at_hand, cinc_labels, load_rr_record

TOLERANCE_S: Final = 5.0
MIN_EPISODE_S: Final = 60.0
DEADLINES_S: Final = (30.0, 60.0)


@dataclass
class RecordAf:
    """AF calls of one record against its reference."""

    name: str
    duration_s: float
    reference: list[tuple[float, float]]
    alarms: list[tuple[float, float]]
    """``(raised_s, cleared_s)`` of every afib alarm (cleared: end of record when never)."""
    rows: list[tuple[float, float]]
    delays_s: list[float | None] = field(default_factory=list)
    """Per reference episode >= ``MIN_EPISODE_S``: onset to an active ``afib`` alarm, s."""
    row_delays_s: list[float | None] = field(default_factory=list)
    """The same to an ``AFIB`` row."""
    onset_observed: list[bool] = field(default_factory=list)
    """Per such episode: its onset lies after the first ``TOLERANCE_S`` of the record."""

    @property
    def false_alarms(self) -> int:
        """Alarms whose span (±TOLERANCE_S) overlaps no annotated AF."""
        return sum(
            1
            for a, b in self.alarms
            if not any(a - TOLERANCE_S < d and b + TOLERANCE_S > c for c, d in self.reference)
        )


def reference_af(record: Path) -> list[tuple[float, float]]:
    """Return ``(start_s, end_s)`` of a WFDB record's annotated AF (none: []).

    The AF intervals of :func:`tools.af.dataset.load_rr_record`, the definition every AF
    figure of the project uses: ``(AFIB`` and ``(AFL`` alike, adjacent ones one interval.
    """
    return list(load_rr_record(record, beats="atr").af_intervals)


def read_record(db_dir: Path, folder: Path) -> RecordAf:
    """Read one record's output folder and its reference."""
    alarms: list[tuple[float, float]] = []
    rows: list[tuple[float, float]] = []
    with (folder / "rhythm.csv").open(encoding="utf-8", newline="") as f:
        table = list(csv.DictReader(f))
    duration = max((float(r["end_s"]) for r in table), default=0.0)
    for r in table:
        if r["rhythm"] == "AFIB":
            rows.append((float(r["start_s"]), float(r["end_s"])))
    raised: dict[str, float] = {}
    for line in (folder / "alarms.jsonl").read_text(encoding="utf-8").splitlines():
        ev = json.loads(line) if line.strip() else None
        if not ev or ev["condition"] != "afib":
            continue
        if ev["lifecycle"] == "raised":
            raised[ev["alarm_id"]] = float(ev["raised_s"])
        elif ev["lifecycle"] == "cleared" and ev["alarm_id"] in raised:
            alarms.append((raised.pop(ev["alarm_id"]), float(ev["cleared_s"])))
    alarms += [(t, duration) for t in raised.values()]
    has_atr = (db_dir / f"{folder.name}.atr").exists()
    ref = reference_af(db_dir / folder.name) if has_atr else []
    rec = RecordAf(folder.name, duration, ref, sorted(alarms), rows)
    for c, d in ref:
        if d - c < MIN_EPISODE_S:
            continue
        hits = [max(a, c) for a, b in rec.alarms if a <= d and b >= c]
        rec.delays_s.append(min(hits) - c if hits else None)
        row_hits = [max(a, c) for a, b in rec.rows if a <= d and b >= c]
        rec.row_delays_s.append(min(row_hits) - c if row_hits else None)
        rec.onset_observed.append(c > TOLERANCE_S)
    return rec


def _within(key: str, delays: list[float | None]) -> dict[str, int]:
    """``{KEY_30s: n, KEY_60s: n}``: delays at or under each of ``DEADLINES_S``."""
    return {
        f"{key}_{int(t)}s": sum(1 for d in delays if d is not None and d <= t) for t in DEADLINES_S
    }


def score_folder(db_dir: Path, folder: Path) -> dict[str, Any]:
    """Score every record folder under ``folder``; see the module docstring.

    Raises
    ------
    FileNotFoundError
        If no record folder (with ``rhythm.csv`` and ``alarms.jsonl``) is found.
    """
    recs = [
        read_record(db_dir, p)
        for p in sorted(folder.iterdir())
        if (p / "rhythm.csv").is_file() and (p / "alarms.jsonl").is_file()
    ]
    if not recs:
        msg = f"no record output (rhythm.csv, alarms.jsonl) under {folder}"
        raise FileNotFoundError(msg)
    non_af = [r for r in recs if not r.reference]
    hours_non_af = sum(r.duration_s for r in non_af) / 3600.0
    hours_outside = (
        sum(r.duration_s - sum(min(d, r.duration_s) - c for c, d in r.reference) for r in recs)
        / 3600.0
    )
    false_all = sum(r.false_alarms for r in recs)
    delays = [d for r in recs for d in r.delays_s]
    row_delays = [d for r in recs for d in r.row_delays_s]
    observed = [
        d for r in recs for d, seen in zip(r.row_delays_s, r.onset_observed, strict=True) if seen
    ]
    row_s = sum(b - a for r in recs for a, b in r.rows)
    row_in_s = sum(
        max(0.0, min(b, d) - max(a, c)) for r in recs for a, b in r.rows for c, d in r.reference
    )
    return {
        "records": len(recs),
        "afib_alarms": sum(len(r.alarms) for r in recs),
        "false_alarms_non_af_records": sum(r.false_alarms for r in non_af),
        "hours_non_af_records": round(hours_non_af, 2),
        "false_per_hour_non_af": round(
            sum(r.false_alarms for r in non_af) / max(hours_non_af, 1e-9), 3
        ),
        "false_alarms_af_records": sum(r.false_alarms for r in recs if r.reference),
        "hours_outside_af": round(hours_outside, 2),
        "false_per_hour_outside_af": round(false_all / max(hours_outside, 1e-9), 3),
        "episodes_min_60s": len(delays),
        **_within("alarmed_within", delays),
        **_within("af_row_within", row_delays),
        "episodes_observed_onset": len(observed),
        "af_row_within_30s_observed_onset": _within("w", observed)["w_30s"],
        "af_row_s": round(row_s, 1),
        "af_row_outside_reference_s": round(row_s - row_in_s, 1),
        "false_by_record": {r.name: r.false_alarms for r in recs if r.false_alarms},
        "afib_alarms_by_record": {r.name: len(r.alarms) for r in recs if r.alarms},
    }


def score_cinc_folder(reference_csv: Path, folder: Path) -> dict[str, Any]:
    """Record-level AF calls of a ``bedside analyze`` output folder over CinC 2017 recordings.

    A recording is called AF when its ``rhythm.csv`` has an ``AFIB`` row; the reference is
    its label in ``reference_csv`` (``A`` is AF; ``N``, ``O``, ``~`` are not). F1 is that of
    the AF class (Clifford GD et al., AF classification from a short single lead ECG
    recording: the PhysioNet/Computing in Cardiology Challenge 2017, CinC 2017;44).

    Returns
    -------
    dict
        ``recordings``, ``f1_af``, ``tp``, ``fp``, ``fn``, ``called_af_by_label`` over every
        recording scored; when the folder holds recordings outside
        :data:`tools.af.dataset.CINC_AT_HAND` too (a full download's independent test half),
        ``by_part`` gives the same figures for ``at_hand`` and ``held_out`` apart.

    Raises
    ------
    FileNotFoundError
        If no output folder under ``folder`` has a label in ``reference_csv``.
    """
    labels = cinc_labels(reference_csv)
    called: dict[str, dict[str, list[int]]] = {"all": {}, "at_hand": {}, "held_out": {}}
    for p in sorted(folder.iterdir()):
        if p.name not in labels or not (p / "rhythm.csv").is_file():
            continue
        with (p / "rhythm.csv").open(encoding="utf-8", newline="") as f:
            af = any(r["rhythm"] == "AFIB" for r in csv.DictReader(f))
        part = "at_hand" if cinc_at_hand(p.name) else "held_out"
        for key in ("all", part):
            counts = called[key].setdefault(labels[p.name], [0, 0])  # [called AF, recordings]
            counts[0] += af
            counts[1] += 1
    if not called["all"]:
        msg = f"no recording of {reference_csv} under {folder}"
        raise FileNotFoundError(msg)
    out = _af_f1(called["all"])
    if called["held_out"]:
        out["by_part"] = {k: _af_f1(called[k]) for k in ("at_hand", "held_out") if called[k]}
    return out


def _af_f1(called: dict[str, list[int]]) -> dict[str, Any]:
    """AF-class F1 and counts from ``label -> [called AF, recordings]``."""
    tp, n_af = called.get("A", [0, 0])
    fp = sum(c for lab, (c, _n) in called.items() if lab != "A")
    fn = n_af - tp
    return {
        "recordings": sum(n for _c, n in called.values()),
        "f1_af": round(2 * tp / max(2 * tp + fp + fn, 1), 3),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "called_af_by_label": {lab: f"{c}/{n}" for lab, (c, n) in sorted(called.items())},
    }


def run_fold_models(
    data_dir: Path,
    out_dir: Path,
    *,
    jobs: int = 1,
    records: Sequence[str] | None = None,
    folds_dir: Path | None = None,
) -> dict[str, str]:
    """Run ``bedside analyze`` over afdb's RR path with each record's out-of-fold AF model.

    The shipped ``af_rr`` model was trained on every annotated afdb record, so the agent's
    afdb figures with it are in-sample. Here every record goes through the fold model (and
    the episode hysteresis in its card, chosen on the other folds) whose training never saw
    it (``tools/af/folds``, written by ``python -m tools.af all``); records in no fold's test
    set (afdb 00735 and 03665, excluded from training by
    :data:`tools.af.dataset.AFDB_EXCLUDED`, so unseen by every model) go through the shipped
    model. Beats come from the ``.qrs`` annotations, as a Heart Rate
    Service strap would deliver them (``--rr-annotations qrs``).

    Parameters
    ----------
    data_dir
        Folder holding ``afdb``.
    out_dir
        ``bedside analyze --out`` folder (one sub-folder per record).
    jobs
        ``bedside analyze --jobs``.
    records
        Only these record names (default: every afdb record with a ``.qrs`` file).
    folds_dir
        Fold cards (default ``tools/af/folds``).

    Returns
    -------
    dict
        Record name -> the name of the model card it went through (``"shipped"`` for the
        default model).

    Raises
    ------
    FileNotFoundError
        If afdb or the fold cards are missing.
    RuntimeError
        If a ``bedside analyze`` run exits non-zero (its exit status in the message).
    """
    from tools.af.evaluate import FOLDS_DIR, fold_of_record

    afdb = data_dir / "afdb"
    names = sorted(p.stem for p in afdb.glob("*.qrs"))
    if not names:
        msg = f"no afdb .qrs annotations under {afdb}"
        raise FileNotFoundError(msg)
    if records is not None:
        wanted = set(records)
        names = [n for n in names if n in wanted]
    held_out_by = fold_of_record(folds_dir or FOLDS_DIR)
    card_of = {n: held_out_by.get(n) for n in names}  # None: the shipped model
    out_dir.mkdir(parents=True, exist_ok=True)
    for card in sorted(set(card_of.values()), key=str):
        group = [str(afdb / n) for n, c in card_of.items() if c == card]
        cmd = [sys.executable, "-m", "agent", "-q", "analyze", "--jobs", str(jobs)]
        cmd += ["--out", str(out_dir), "--rr-annotations", "qrs"]
        if card is not None:
            toml = out_dir / f"{card.stem}.toml"
            af_model = json.dumps(str(card.resolve()))
            toml.write_text(f"[inference]\naf_model = {af_model}\n", encoding="utf-8")
            cmd += ["--config", str(toml)]
        rc = subprocess.run([*cmd, *group], check=False).returncode
        if rc != 0:
            msg = f"bedside analyze exited {rc} for {' '.join(group)}"
            raise RuntimeError(msg)
    return {n: "shipped" if c is None else c.stem for n, c in card_of.items()}


def agent_cv(
    data_dir: Path, out_dir: Path, *, jobs: int = 1, records: Sequence[str] | None = None
) -> dict[str, Any]:
    """:func:`run_fold_models` into ``out_dir``, then :func:`score_folder` of it.

    Returns
    -------
    dict
        :func:`score_folder`'s figures plus ``models`` (record -> the model it went through).

    Raises
    ------
    FileNotFoundError
        If afdb or the fold cards are missing.
    RuntimeError
        If a ``bedside analyze`` run fails.
    """
    models = run_fold_models(data_dir, out_dir, jobs=jobs, records=records)
    report = score_folder(data_dir / "afdb", out_dir)
    report["models"] = models
    return report
