"""R-peak detection scored the AAMI EC57 way, on the agent's own ``bedside analyze`` pipeline.

Conventions (written into every report):

- detections are the R-peaks of :func:`agent.analyze.analyze_record`, i.e. exactly what the
  live agent would find, with its default configuration; channel 0 (MLII in 45 of 48 mitdb
  records; V5 in 102 and 104, V5 in 114);
- a detection within 150 ms of a reference beat annotation is a true positive, one-to-one
  (ANSI/AAMI EC57:2012, 3.2 and 4.3); reference beats are the annotations with a beat symbol;
- ventricular flutter / fibrillation episodes (rhythm ``(VFL``/``(VF``) are excluded from
  scoring, as EC57 excludes VF from QRS detection (records 207 and, on vfdb, more);
- the whole record is scored, including the first 5 minutes that EC57 allows as a learning
  period (stricter than the standard);
- ``--fs`` sets are resampled (``scipy.signal.resample_poly``) before the agent sees them and
  scored at the record's own rate;
- nstdb records are mitdb 118/119 with electrode-motion noise added at the given SNR in
  alternating 2-minute segments after the first 5 minutes (Moody et al. 1984); they carry
  the clean records' annotations. False alarms on them are counted as the physiological
  alarms raised (118 and 119 have no asystole, pause or HR limit event).

Gross figures sum TP/FN/FP over records (EC57 "gross statistics").
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from agent.analyze import analyze_record_blocking
from agent.config import load_config
from agent.inference.bundle import ModelBundle
from agent.messages import AlarmCondition, AlarmLifecycle
from tools.ec57 import MatchResult, gross, load_reference_beats, score_record

logger = logging.getLogger(__name__)

NSTDB_SNRS: Final = ("24", "18", "12", "06", "00", "_6")


@dataclass(frozen=True, slots=True)
class EvalSet:
    """A named set of records and the rate the agent sees them at."""

    name: str
    db: str
    fs_hz: float | None
    description: str


SETS: Final[dict[str, EvalSet]] = {
    "mitdb": EvalSet("mitdb", "mitdb", None, "MIT-BIH Arrhythmia, 48 records, 360 Hz"),
    "mitdb@130": EvalSet("mitdb@130", "mitdb", 130.0, "mitdb resampled to 130 Hz (Polar H10)"),
    "mitdb@250": EvalSet("mitdb@250", "mitdb", 250.0, "mitdb resampled to 250 Hz"),
    **{
        f"nstdb{snr}": EvalSet(
            f"nstdb{snr}", "nstdb", None, f"nstdb 118e{snr}+119e{snr}, em noise {snr} dB"
        )
        for snr in NSTDB_SNRS
    },
}
DEFAULT_SETS: Final = tuple(SETS)


@dataclass(slots=True)
class RecordScore:
    """Scores of one record in one set (all rates in %, times in ms or s)."""

    set: str
    record: str
    tp: int
    fn: int
    fp: int
    se_pct: float
    ppv_pct: float
    der_pct: float
    timing_mean_ms: float
    timing_sd_ms: float
    cpu_s: float
    duration_s: float
    false_alarms: dict[str, int] = field(default_factory=dict)


def _records(data: Path, s: EvalSet) -> list[Path]:
    if s.db == "mitdb":
        names = (data / "mitdb" / "RECORDS").read_text(encoding="utf-8").split()
        return [data / "mitdb" / n for n in names]
    snr = s.name.removeprefix("nstdb")
    return [data / "nstdb" / f"118e{snr}", data / "nstdb" / f"119e{snr}"]


def score_one(set_name: str, record: str) -> tuple[RecordScore, MatchResult]:
    """Analyse one record with the agent's pipeline and score it (runs in a worker process)."""
    s = SETS[set_name]
    cfg = load_config()
    cpu0 = time.process_time()
    result = analyze_record_blocking(record, cfg, ModelBundle(), fs_hz=s.fs_hz)
    cpu_s = time.process_time() - cpu0
    match = score_record(load_reference_beats(record), np.asarray(result.source_samples()))
    errors = match.timing_errors_ms
    alarms = Counter(
        e.condition.value
        for e in result.events
        if e.lifecycle is AlarmLifecycle.RAISED and e.kind is AlarmCondition.PHYSIOLOGICAL
    )
    score = RecordScore(
        set=set_name,
        record=Path(record).name,
        tp=match.tp,
        fn=match.fn,
        fp=match.fp,
        se_pct=round(match.se_pct, 3),
        ppv_pct=round(match.ppv_pct, 3),
        der_pct=round(match.der_pct, 3),
        timing_mean_ms=round(float(errors.mean()), 2) if len(errors) else 0.0,
        timing_sd_ms=round(float(errors.std()), 2) if len(errors) else 0.0,
        cpu_s=round(cpu_s, 3),
        duration_s=round(result.duration_s, 1),
        false_alarms=dict(alarms) if s.db == "nstdb" else {},
    )
    return score, match


def run_qrs_evaluation(
    data: Path,
    out: Path,
    *,
    sets: Sequence[str] = DEFAULT_SETS,
    jobs: int = 1,
    only_records: Sequence[str] | None = None,
) -> dict[str, object]:
    """Evaluate every set, write ``out/qrs.md`` and ``out/qrs.json``, return the JSON object.

    Raises
    ------
    KeyError
        If a set name is unknown.
    FileNotFoundError
        If a record or its annotations are missing.
    """
    tasks = [
        (name, str(rec))
        for name in sets
        for rec in _records(data, SETS[name])
        if not only_records or rec.name in only_records
    ]
    t0 = time.monotonic()
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        outcomes = list(pool.map(score_one, *zip(*tasks, strict=True)))
    wall_s = time.monotonic() - t0
    by_set: dict[str, list[tuple[RecordScore, MatchResult]]] = {}
    for score, match in outcomes:
        by_set.setdefault(score.set, []).append((score, match))
    summary: dict[str, object] = {}
    for name, items in by_set.items():
        g = gross(m for _, m in items)
        cpu = sum(sc.cpu_s for sc, _ in items)
        dur = sum(sc.duration_s for sc, _ in items)
        false_alarms: Counter[str] = Counter()
        for sc, _ in items:
            false_alarms.update(sc.false_alarms)
        errs = np.concatenate([m.timing_errors_ms for _, m in items])
        summary[name] = {
            "description": SETS[name].description,
            "records": len(items),
            "tp": g.tp,
            "fn": g.fn,
            "fp": g.fp,
            "se_pct": round(g.se_pct, 3),
            "ppv_pct": round(g.ppv_pct, 3),
            "der_pct": round(g.der_pct, 3),
            "timing_mean_ms": round(float(errs.mean()), 2) if len(errs) else 0.0,
            "timing_sd_ms": round(float(errs.std()), 2) if len(errs) else 0.0,
            "cpu_s": round(cpu, 2),
            "x_real_time": round(dur / cpu, 1) if cpu else None,
            "false_physiological_alarms": dict(false_alarms),
        }
    report: dict[str, object] = {
        "conventions": __doc__,
        "gross": summary,
        "records": [asdict(sc) for sc, _ in outcomes],
        "wall_s": round(wall_s, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrs.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "qrs.md").write_text(render_markdown(summary, outcomes), encoding="utf-8")
    logger.info("wrote %s and %s (%.0f s)", out / "qrs.md", out / "qrs.json", wall_s)
    return report


def render_markdown(
    summary: dict[str, object], outcomes: Sequence[tuple[RecordScore, MatchResult]]
) -> str:
    """Render the gross table, then one per-record table per set."""
    lines = [
        "# R-peak detection: AAMI EC57 evaluation of `bedside analyze`",
        "",
        "Generated by `python -m tools.evaluate qrs`. Conventions: 150 ms matching window,"
        " channel 0, whole records (no 5-min learning period skipped), VF/VFL episodes"
        " excluded, resampled sets scored at the record's own rate. See"
        " `tools/evaluate/qrs.py`.",
        "",
        "## Gross",
        "",
        "| set | records | Se % | +P % | DER % | TP | FN | FP | timing mean ± SD ms"
        " | CPU s | × real time | false physiological alarms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, raw in summary.items():
        row = raw if isinstance(raw, dict) else {}
        fa = row["false_physiological_alarms"]
        fa_text = ", ".join(f"{k} {v}" for k, v in sorted(fa.items())) if fa else "-"
        if SETS[name].db != "nstdb":
            fa_text = "n/a"
        lines.append(
            f"| {name} | {row['records']} | {row['se_pct']:.2f} | {row['ppv_pct']:.2f} |"
            f" {row['der_pct']:.2f} | {row['tp']} | {row['fn']} | {row['fp']} |"
            f" {row['timing_mean_ms']:.1f} ± {row['timing_sd_ms']:.1f} | {row['cpu_s']:.1f} |"
            f" {row['x_real_time']} | {fa_text} |"
        )
    current = ""
    for score, _ in outcomes:
        if score.set != current:
            current = score.set
            lines += [
                "",
                f"## {current}: {SETS[current].description}",
                "",
                "| record | Se % | +P % | DER % | TP | FN | FP | timing ms | CPU s |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
        lines.append(
            f"| {score.record} | {score.se_pct:.2f} | {score.ppv_pct:.2f} |"
            f" {score.der_pct:.2f} | {score.tp} | {score.fn} | {score.fp} |"
            f" {score.timing_mean_ms:.1f} ± {score.timing_sd_ms:.1f} | {score.cpu_s:.2f} |"
        )
    return "\n".join(lines) + "\n"
