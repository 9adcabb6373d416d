"""``python -m tools.evaluate beats``: the agent's beat classes on MIT-BIH DS2, AAMI EC57 style.

Each DS2 record (de Chazal 2004 inter-patient test set) goes through the agent's own
pipeline, :func:`agent.analyze.analyze_record`, exactly as ``bedside analyze`` runs it, with
every shipped model: the streaming R-peak detector, the int8 beat CNN one beat late, and the
rhythm detectors whose state the labels depend on (an S label is reported N while AF is
called, ``inference.s_in_af_as_n``). Its labelled beats are scored
beat by beat against the reference annotations with :func:`tools.beats.score.score_classes`
(150 ms matching window; a missed reference beat counts against its class's Se, an extra
detection against its class's +P; reference beats inside VF/VFL excluded, EC57 4.2.1).

Float vs int8: the agent ships and runs only the int8 model; the model card carries float32
and int8 DS2 figures on the reference R-peaks, made by the same scorer
(``python -m tools.beats all``). The report puts them beside the agent's int8 figures on its
own R-peaks. CPU latency per beat is measured here on the classifier the agent loads.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import numpy as np

from agent.analyze import analyze_record_blocking
from agent.config import AgentConfig, DspConfig
from agent.inference.beat_classifier import BeatClassifier
from agent.inference.beat_features import (
    N_RR_FEATURES,
    N_WINDOW_CHANNELS,
    WINDOW_LEN,
    RrFeatures,
)
from agent.inference.bundle import ModelBundle, load_models
from tools.beats.agent_eval import score_against_reference
from tools.beats.dataset import DS2
from tools.beats.score import EC57_PPV_EXEMPT, ClassScores

logger = logging.getLogger(__name__)

CLASSES: Final = ("N", "S", "V", "F")
"""Classes reported (AAMI EC57 asks Se and +P of V and S; N and F for completeness)."""

LATENCY_BEATS: Final = 2000


def score_record(
    record: Path, models: ModelBundle, fs_hz: float | None, cfg: AgentConfig
) -> ClassScores:
    """Run the agent over one record and score its beat classes.

    Parameters
    ----------
    record
        mitdb record path without extension.
    models
        The loaded models (shared across records): the beat classifier under test and every
        other model ``cfg`` switches on, as ``bedside analyze`` loads them.
    fs_hz
        Resample the record to this rate first (130 = a Polar H10), or None.
    cfg
        Agent configuration (60 Hz mains for MIT-BIH, recorded in Boston).
    """
    result = analyze_record_blocking(record, cfg, models, fs_hz=fs_hz)
    det_idx = np.asarray(result.source_samples(), dtype=np.int64)
    # a beat the agent could not classify (no clean window) is "unclassified": EC57 Q
    det_cls = [b.aami_class.value if b.aami_class is not None else "Q" for b in result.beats]
    return score_against_reference(record, det_idx, det_cls)


def latency_us(classifier: BeatClassifier, n: int = LATENCY_BEATS) -> dict[str, float]:
    """Median and p99 CPU time of one beat's inference, µs (quantize, invoke, dequantize)."""
    rng = np.random.default_rng(0)
    window = rng.standard_normal((WINDOW_LEN, N_WINDOW_CHANNELS)).astype(np.float32)
    rr = RrFeatures(
        r_peak_time_s=1.0,
        pre_rr_s=0.8,
        post_rr_s=0.8,
        local_rr_s=0.8,
        long_rr_s=0.8,
        local_rr_cv=0.02,
    )
    assert rr.as_array().shape == (N_RR_FEATURES,)  # noqa: S101  (a broken contract)
    for _ in range(50):
        classifier.classify(window, rr)
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        classifier.classify(window, rr)
        times.append((time.perf_counter_ns() - t0) / 1000.0)
    return {
        "median_us": round(float(np.median(times)), 1),
        "p99_us": round(float(np.percentile(times, 99)), 1),
    }


def _row(scores: ClassScores) -> dict[str, Any]:
    return {
        "accuracy_pct": round(scores.accuracy_pct, 2),
        "classes": {
            c: {"se_pct": round(scores.se_pct(c), 2), "ppv_pct": round(scores.ppv_pct(c), 2)}
            for c in CLASSES
        },
        "ec57_ppv_pct": {c: round(scores.ec57_ppv_pct(c), 2) for c in EC57_PPV_EXEMPT},
    }


def _ec57_ppv(row: dict[str, Any], c: str) -> str:
    """``bxb``'s +P of ``c`` from a report row (an agent row, or a card row's confusion)."""
    if "ec57_ppv_pct" in row:
        return f"{row['ec57_ppv_pct'][c]:.2f}"
    counts = row.get("confusion", {}).get("counts")
    if counts is None:
        return "–"
    return f"{ClassScores(np.asarray(counts, dtype=np.int64)).ec57_ppv_pct(c):.2f}"


def _ec57_rows(rows: list[dict[str, Any]]) -> list[str]:
    """Return the table rows of V and S +P as ``bxb`` counts them, a column per report row."""
    return [
        f"| {c} +P % as EC57's bxb counts it ({' and '.join(exempt)} called {c} not against"
        " it) | " + " | ".join(_ec57_ppv(r, c) for r in rows) + " |"
        for c, exempt in EC57_PPV_EXEMPT.items()
    ]


def run_beats_evaluation(
    data_dir: Path,
    out_dir: Path,
    *,
    records: Sequence[str] = DS2,
    rates: Sequence[float | None] = (None, 130.0),
    compare_rule: bool = True,
) -> dict[str, Any]:
    """Score the agent's beat classes on ``records`` and write ``beats.md`` / ``beats.json``.

    ``compare_rule`` adds a run at the first rate with ``inference.s_in_af_as_n`` off and one
    with ``inference.s_premature`` off, so the report shows what reporting S beats N during AF,
    and S beats that are not premature as N, changes.

    Returns
    -------
    dict
        The JSON report.
    """
    classifier = BeatClassifier()
    mitdb = data_dir / "mitdb"
    report: dict[str, Any] = {
        "model": {"name": classifier.card.name, "version": classifier.version},
        "records": list(records),
        "agent_int8": {},
        "card_reference_rpeaks": classifier.card.metrics.get("ds2_test", {}),
        "card_patient_cv": classifier.card.metrics.get("patient_cv", {}),
        "latency": latency_us(classifier),
    }
    tables: list[str] = []
    shipped = AgentConfig(dsp=DspConfig(powerline_hz=60))  # MIT-BIH was recorded in Boston
    runs: list[tuple[str, float | None, AgentConfig]] = [
        ("record rate (360 Hz)" if fs is None else f"{fs:g} Hz", fs, shipped) for fs in rates
    ]
    if compare_rule:
        for label, change in (
            ("S kept in AF", {"s_in_af_as_n": False}),
            ("S on time kept", {"s_premature": None}),
        ):
            inference = shipped.inference.model_copy(update=change)
            cfg = shipped.model_copy(update={"inference": inference})
            runs.append((f"{runs[0][0]}, {label}", rates[0], cfg))
    for label, fs, cfg in runs:
        total: ClassScores | None = None
        per_record: dict[str, Any] = {}
        models = replace(load_models(cfg.inference), beat_classifier=classifier)
        for name in records:
            scores = score_record(mitdb / name, models, fs, cfg)
            per_record[name] = _row(scores)
            total = scores if total is None else total + scores
            v_se, v_ppv = scores.se_pct("V"), scores.ppv_pct("V")
            logger.info("%s @ %s: V %.1f/%.1f", name, label, v_se, v_ppv)
        assert total is not None  # noqa: S101  (records is not empty)
        report["agent_int8"][label] = {"gross": _row(total), "per_record": per_record}
        tables.append(f"### Agent, int8, own R-peaks, {label}\n\n{total.to_markdown()}\n")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "beats.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out_dir / "beats.md").write_text(_markdown(report, tables), encoding="utf-8")
    return report


def _fmt(row: dict[str, Any], c: str) -> str:
    cls = row.get("classes", {}).get(c)
    if not cls:
        return "–"
    return f"{cls['se_pct']:.2f} / {cls['ppv_pct']:.2f}"


def _markdown(report: dict[str, Any], tables: list[str]) -> str:
    card = report["card_reference_rpeaks"]
    cols: list[tuple[str, dict[str, Any]]] = [
        ("float32, reference R-peaks", card.get("float32", {})),
        ("int8, reference R-peaks", card.get("int8", {})),
    ]
    cols += [(f"int8, agent, {k}", v["gross"]) for k, v in report["agent_int8"].items()]
    head = "| class | " + " | ".join(name for name, _ in cols) + " |"
    sep = "|---" * (len(cols) + 1) + "|"
    lines = [head, sep]
    for c in CLASSES:
        lines.append(f"| {c} Se / +P % | " + " | ".join(_fmt(r, c) for _, r in cols) + " |")
    acc = " | ".join(f"{r.get('accuracy_pct', float('nan')):.2f}" for _, r in cols)
    lines.append(f"| accuracy % | {acc} |")
    lines += _ec57_rows([r for _, r in cols])
    lat = report["latency"]
    model = report["model"]
    cv = report.get("card_patient_cv", {})
    cv_lines: list[str] = []
    if cv:
        cv_cols = [
            ("float32, reference R-peaks", cv.get("float32_keras", {}).get("svdb", {})),
            ("int8, reference R-peaks", cv.get("int8", {}).get("svdb", {})),
            ("int8, agent's own R-peaks", cv.get("agent_int8", {}).get("svdb", {})),
        ]
        cv_lines = [
            "## svdb, patient-wise cross-validated (model card `metrics.patient_cv`)\n",
            "Each of the 40 svdb records at hand predicted by a fold model that did not see it"
            " (4 folds of DS1 + svdb records, `tools.beats.train.FOLDS`); made by"
            " `python -m tools.beats all`.\n",
            "| class | " + " | ".join(n for n, _ in cv_cols) + " |",
            "|---" * (len(cv_cols) + 1) + "|",
        ]
        for c in CLASSES:
            cv_lines.append(
                f"| {c} Se / +P % | " + " | ".join(_fmt(r, c) for _, r in cv_cols) + " |"
            )
        cv_acc = " | ".join(f"{r.get('accuracy_pct', float('nan')):.2f}" for _, r in cv_cols)
        cv_lines.append(f"| accuracy % | {cv_acc} |")
        cv_lines += [*_ec57_rows([r for _, r in cv_cols]), ""]
    return (
        f"# Beat classification on MIT-BIH DS2 ({model['name']} {model['version']})\n\n"
        "Inter-patient test set (de Chazal 2004 DS2, 22 records), never used for training,"
        " tuning or selection. AAMI EC57 beat-by-beat, 150 ms window; Se / +P count every"
        ' class alike (conservative), the rows "as EC57\'s bxb counts it" leave out of +P'
        " what EC57's comparator does not count against it (`tools/beats/score.py`). Reproduce:"
        " `.venv/bin/python -m tools.evaluate beats --data ../shared/data --out reports`.\n\n"
        + "\n".join(lines)
        + f"\n\nCPU latency per beat (int8, one thread, this machine): median"
        f" {lat['median_us']} µs, p99 {lat['p99_us']} µs (model only; the window costs"
        " ~0.3 ms more).\n\n" + "\n".join(cv_lines) + "\n" + "\n".join(tables)
    )


def score_output_folder(db_dir: Path, folder: Path) -> ClassScores:
    """Score the ``beats.csv`` of every record ``bedside analyze`` wrote under ``folder``.

    Parameters
    ----------
    db_dir
        The database folder holding each record's reference annotations (``RECORD.atr``).
    folder
        ``bedside analyze --out`` folder: one sub-folder per record with its ``beats.csv``
        (``sample`` at the record's own rate, ``aami_class`` empty when unclassified: EC57 Q).

    Raises
    ------
    FileNotFoundError
        If ``folder`` holds no record with a ``beats.csv``.
    """
    total: ClassScores | None = None
    for rec in sorted(p for p in folder.iterdir() if (p / "beats.csv").is_file()):
        with (rec / "beats.csv").open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        idx = np.asarray([int(r["sample"]) for r in rows], dtype=np.int64)
        cls = [r["aami_class"] or "Q" for r in rows]
        scores = score_against_reference(db_dir / rec.name, idx, cls)
        total = scores if total is None else total + scores
    if total is None:
        msg = f"no RECORD/beats.csv under {folder}"
        raise FileNotFoundError(msg)
    return total
