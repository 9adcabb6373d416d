"""``python -m tools.af all``: cross-validate, tune the episode logic, train, convert, card.

Steps (one command, fixed seed, CPU, single process):

1. load the 23 afdb records (:mod:`tools.af.dataset`) and split them patient-wise into
   :data:`N_FOLDS` folds (:func:`tools.af.train.fold_assignment`);
2. per fold: train on the other folds, convert to int8 (calibration windows from the training
   records only), write ``tools/af/folds/af_rr_fold{k}.tflite`` and its card, and run the
   held-out records through :class:`agent.rhythm.af.AfDetector` with that card;
3. run the episode-hysteresis tuner (:class:`agent.rhythm.af.EpisodeParams`) on the
   out-of-fold probabilities (for fold k only on the *other* folds' records, nested, and on
   all of them) and record its choices, then give every card the fixed hysteresis
   :data:`EPISODE_FIXED` (why: its docstring);
4. train the final model on all 23 records, convert, measure CPU latency, and write
   ``models/af_rr.tflite`` and ``models/af_rr.json`` with the cross-validated figures
   (:func:`tools.af.evaluate.evaluate_af`, the shipped int8 path) and the mitdb check.

The module is over 400 lines because those four steps are one reproducible recipe: kept in
one file, the order in which data is seen (and never seen) can be checked at a glance.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from agent.inference.tflite import TfliteModel, load_model
from agent.rhythm.af import AF_CARD, AfDetector, EpisodeParams
from agent.rhythm.af_features import (
    AF_HOP_BEATS,
    AF_N_FEATURES,
    AF_SEQ_LEN,
    af_preprocessing,
    af_window_features,
)
from models.card import ModelCard, TensorSpec, load_card, sha256_file
from tools.af.dataset import (
    RrRecord,
    afdb_records,
    ectopy_augment,
    load_rr_record,
    record_rr_windows,
    record_windows,
    sinus_arrhythmia_augment,
)
from tools.af.evaluate import (
    FOLDS_DIR,
    Counts,
    DetectorRun,
    candidate_counts,
    evaluate_af,
    fold_cards,
    run_detector,
    summarize,
)
from tools.af.train import (
    SEED,
    KerasModel,
    TrainConfig,
    convert_int8,
    fold_assignment,
    predict_float,
    tflite_op_names,
    train_model,
)

logger = logging.getLogger(__name__)

N_FOLDS: Final = 5
"""Patient-wise folds (afdb: one record per patient, 4-5 records per fold)."""

N_REPRESENTATIVE: Final = 500
"""Calibration windows for int8 conversion, sampled from the training records."""

MODEL_VERSION: Final = "af_rr-3.2.0"
"""Version string copied into every AF alarm (3.1.0, session 33: the models of 3.0.0 with the
faster re-entry after a sustained episode in every card's episode rule; 3.2.0, session 36: the
same models, episodes dated where P(AF) rose above ``p_off``, ``onset_from_p_off``)."""

AUGMENT_SHARE: Final = 0.5
"""Share of the non-AF training windows that get an ectopy-augmented copy
(:func:`tools.af.dataset.ectopy_augment`)."""

SINUS_ARRHYTHMIA_SHARE: Final = 0.25
"""Share of the non-AF training windows that also get a respiratory-sinus-arrhythmia copy
(:func:`tools.af.dataset.sinus_arrhythmia_augment`; af_rr-2.0.0: the model before it called a
smooth ±10 % breathing modulation AF)."""

EPISODE_GRID: Final[dict[str, tuple[float, ...]]] = {
    "p_on": (0.5, 0.7, 0.9, 0.95),
    "p_off": (0.3, 0.5),
    "n_on": (2, 4, 6, 8, 10),
    "n_off": (2, 4, 6, 8),
}
"""Hysteresis candidates; counts are windows, one every AF_HOP_BEATS (4) beats, so 10 windows
are 40 beats; with the 16-beat centre lag the slowest candidate confirms AF about 56 beats
after its onset (~35 s at 100 bpm). Candidates that miss the delay target are excluded by
:data:`MIN_WITHIN_60S_PCT`."""

TUNING_ROWS_KEPT: Final = 25
"""Best candidates written to ``tools/af/folds/episode_tuning.json``."""

MIN_WITHIN_60S_PCT: Final = 95.0
"""Tuning constraint: at least this share of afdb AF episodes of 60 s or more must be alarmed
within 60 s of their annotated onset (the issue's onset target)."""

FALSE_ALARM_PENALTY_PP: Final = 10.0
"""Tuning objective: beat Se % + beat Sp % − this × false AF episodes per hour (afdb), so
0.1 false alarm/h (the issue's limit) costs as much as 1 point of Se or Sp."""

EPISODE_FIXED: Final = EpisodeParams(
    p_on=0.9,
    n_on=8,
    p_off=0.3,
    n_off=8,
    reentry_within_s=300.0,
    reentry_min_episode_s=60.0,
    n_on_reentry=2,
    onset_from_p_off=True,
)
"""The episode hysteresis every model gets, the fold models included: fixed, not the tuner's
choice. AF is confirmed by 8 windows in a row (32 beats) with P(AF) >= 0.9; within 300 s of
the end of an episode that lasted 60 s or more, by 2 (session 33: through the agent out of
fold on afdb, AFIB rows within 30 s of onset 168 -> 173 of 191, false ``afib`` 14 -> 14;
the rule for it was written before the run, docs/af_detector.md). A confirmed episode is dated
from the first window of the unbroken run at or above ``p_off`` that led to it, while the
``afib`` alarm still counts its 30 s from the confirming run (session 36, the same way: rows
within 30 s 173 -> 182 of 191, false ``afib`` 14 -> 14, the alarms' times unchanged).

Why fixed: on zero-state LSTM outputs (session 15) the tuner (:func:`tune_episodes`) prefers
fast confirmation, 0.9 / 4 on all records, to meet its delay floor (:data:`MIN_WITHIN_60S_PCT`),
and 0.9 / 4 raised 9 AF episodes in 80 h of synthetic sinus rhythm against 1
(``python -m tools.af.sinus_check``), 31 against 23 false episodes on mitdb without AF (RR
only) and 0.23 false episodes per hour on afdb out of fold. False AF alarms for healthy wearers
are what the issue's independent test measured (1.56 per hour).

Why 0.9 / 8 (session 17; 0.5 / 10 from session 5 to 16): against 0.5 / 10, on afdb out of fold
(every record through the fold model that never saw it, reference beats) false AF episodes
per hour 0.158 -> 0.077 (37 -> 18 in 234 h) for AF episodes >= 60 s confirmed within 60 s
93.3 -> 91.6 % (median delay 30.9 -> 29.0 s); without each fold in turn the same (fewer false
episodes in all five, 0-3.4 points fewer within 60 s); synthetic sinus rhythm 1 -> 1 episode in
80 h, with premature beats 11 -> 6 in 72 h (``--ectopy``); mitdb without AF, RR only, 23 -> 16.
0.9 / 6 was as fast as 0.5 / 10 with 0.128 per hour on afdb, but raised 3 and 18 episodes in
the synthetic series (``docs/af_detector.md``, session 17). The tuner still runs; its nested
choices are written into the card (``episode_tuning``) and ``episode_tuning.json`` for the
record. One rule for every fold makes the cross-validated figures those of what ships; it was
chosen on all afdb records' out-of-fold outputs, so those figures are not nested for it."""


def _windows(
    recs: Sequence[RrRecord], stride: int, *, augment: bool = True
) -> tuple[NDArray[np.float32], NDArray[np.int8]]:
    """Training windows, plus ectopy-augmented copies of a share of the non-AF ones."""
    rng = np.random.default_rng(SEED)
    rrs, ys = [], []
    for rec in recs:
        rr, y, _src = record_rr_windows(rec, stride=stride)
        keep = y >= 0
        rrs.append(rr[keep])
        ys.append(y[keep])
    rr_all, y_all = np.concatenate(rrs), np.concatenate(ys)
    if augment:
        non_af = np.flatnonzero(y_all == 0)
        pick = rng.choice(non_af, size=int(AUGMENT_SHARE * non_af.size), replace=False)
        rsa = rng.choice(non_af, size=int(SINUS_ARRHYTHMIA_SHARE * non_af.size), replace=False)
        extra = [
            ectopy_augment(rr_all[np.sort(pick)], rng),
            sinus_arrhythmia_augment(rr_all[np.sort(rsa)], rng),
        ]
        rr_all = np.concatenate([rr_all, *extra])
        y_all = np.concatenate([y_all, np.zeros(pick.size + rsa.size, dtype=np.int8)])
    return af_window_features(rr_all), y_all


def _representative(x: NDArray[np.float32]) -> NDArray[np.float32]:
    rng = np.random.default_rng(SEED)
    idx = rng.choice(len(x), size=min(N_REPRESENTATIVE, len(x)), replace=False)
    return x[np.sort(idx)]


def inference_latency(
    model: TfliteModel,
    x: NDArray[np.float32],
    *,
    per_beat: float,
    n: int = 2000,
    warmup: int = 50,
    note: str = "",
) -> dict[str, Any]:
    """Mean CPU-side latency of ``model.predict([x])``, for a model card's ``latency``.

    ``x`` is one input batch (shape of the model's input); ``per_beat`` is how many
    inferences the agent runs per beat. Returns ``per_inference_us`` (µs, mean over ``n``
    calls after ``warmup``), ``inferences_per_beat`` and ``how``.
    """
    for _ in range(warmup):
        model.predict([x])
    t0 = time.perf_counter()
    for _ in range(n):
        model.predict([x])
    per = (time.perf_counter() - t0) / n * 1e6
    return {
        "per_inference_us": round(per, 1),
        "inferences_per_beat": round(per_beat, 3),
        "how": f"TfliteModel.predict incl. quantize/dequantize, {n} calls, 1 thread,"
        f" {model.runtime}, this machine (x86_64, shared 2 cores{note})",
    }


def _latency_us(model_path: Path, n: int = 2000) -> dict[str, Any]:
    model = load_model(model_path, num_threads=1)
    x = np.zeros((1, AF_SEQ_LEN, AF_N_FEATURES), dtype=np.float32)
    return inference_latency(model, x, per_beat=1 / AF_HOP_BEATS, n=n)


def _write_model(
    data: bytes,
    out_dir: Path,
    name: str,
    *,
    training: dict[str, Any],
    metrics: dict[str, Any],
    episode: EpisodeParams,
    latency: dict[str, Any] | None = None,
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / f"{name}.tflite"
    model_path.write_bytes(data)
    model = load_model(model_path)
    inp, outp = model.inputs[0], model.outputs[0]
    pre = af_preprocessing()
    pre["episode"] = episode.as_card()
    card = ModelCard(
        name=name,
        version=MODEL_VERSION if name == "af_rr" else f"{MODEL_VERSION}+{name}",
        task="P(atrial fibrillation or flutter) of the centre RR interval of a 32-RR window",
        file=model_path.name,
        sha256=sha256_file(model_path),
        size_bytes=model_path.stat().st_size,
        inputs=[
            TensorSpec(
                name=inp.name,
                shape=list(inp.shape),
                dtype=str(inp.dtype),
                scale=inp.scale,
                zero_point=inp.zero_point,
                description="(1, seq_len, 3): log RR/median, dRR/median, scaled RR (af_features)",
            )
        ],
        outputs=[
            TensorSpec(
                name=outp.name,
                shape=list(outp.shape),
                dtype=str(outp.dtype),
                scale=outp.scale,
                zero_point=outp.zero_point,
                description="P(AF) of the window's centre interval",
            )
        ],
        labels=["AF"],
        preprocessing=pre,
        training=training,
        metrics=metrics,
        latency=latency or {},
        edgetpu={"compatible": False, "why": "LSTM kept on the CPU (../shared/STACK.md)"},
        created_utc=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    card_path = out_dir / f"{name}.json"
    card_path.write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return card_path


def _set_episode(card_path: Path, episode: EpisodeParams) -> None:
    card = ModelCard.model_validate_json(card_path.read_text(encoding="utf-8"))
    pre = dict(card.preprocessing)
    pre["episode"] = episode.as_card()
    card = card.model_copy(update={"preprocessing": pre})
    card_path.write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")


def _grid() -> list[EpisodeParams]:
    out = []
    g = EPISODE_GRID
    for p_on, p_off, n_on, n_off in itertools.product(g["p_on"], g["p_off"], g["n_on"], g["n_off"]):
        if p_off <= p_on:
            out.append(EpisodeParams(p_on=p_on, n_on=int(n_on), p_off=p_off, n_off=int(n_off)))
    return out


def _objective(c: Counts) -> float:
    f = summarize(c)
    within = f["long_within_60s_pct"]
    if within is not None and within < MIN_WITHIN_60S_PCT:
        return -1e9
    se = f["beat_se_pct"] or 0.0
    sp = f["beat_sp_pct"] or 0.0
    fa = f["false_alarms_per_hour"] or 0.0
    return float(se) + float(sp) - FALSE_ALARM_PENALTY_PP * float(fa)


def tune_episodes(
    runs: dict[str, tuple[RrRecord, DetectorRun]], folds: dict[str, int]
) -> tuple[dict[int, EpisodeParams], EpisodeParams, list[dict[str, Any]]]:
    """Choose the episode hysteresis on out-of-fold probabilities.

    Parameters
    ----------
    runs
        Record name → (record, run of the fold model that did not see it).
    folds
        Record name → fold.

    Returns
    -------
    per_fold, final, table
        For each fold the parameters chosen on the other folds' records; the parameters
        chosen on all records; the objective of every candidate on all records.
    """
    grid = _grid()
    counts = candidate_counts(runs, grid)

    def best(names: Sequence[str]) -> tuple[int, float]:
        scored = []
        for gi in range(len(grid)):
            total = Counts()
            for n in names:
                total += counts[gi, n]
            scored.append((_objective(total), -gi))
        obj, neg = max(scored)
        return -neg, obj

    per_fold: dict[int, EpisodeParams] = {}
    for k in sorted(set(folds.values())):
        gi, _obj = best([n for n in runs if folds[n] != k])
        per_fold[k] = grid[gi]
    gi, _obj = best(list(runs))
    table = []
    for i, prm in enumerate(grid):
        total = Counts()
        for n in runs:
            total += counts[i, n]
        f = summarize(total)
        table.append({"params": prm, "objective": round(_objective(total), 3), **f})
    return per_fold, grid[gi], table


def build_all(
    data_dir: Path,
    out_dir: Path,
    *,
    folds_dir: Path = FOLDS_DIR,
    cfg: TrainConfig | None = None,
) -> Path:
    """Run the whole life cycle (module docstring); return the shipped card's path.

    Raises
    ------
    FileNotFoundError
        If afdb is missing.
    """
    cfg = cfg or TrainConfig()
    t_start = time.perf_counter()
    afdb = data_dir / "afdb"
    names = afdb_records(afdb)
    recs = {n: load_rr_record(afdb / n) for n in names}
    frac = [float(np.mean(recs[n].label == 1)) for n in names]
    fold_of = dict(zip(names, fold_assignment(names, frac, N_FOLDS), strict=True))
    runs: dict[str, tuple[RrRecord, DetectorRun]] = {}
    float_vs_int8: dict[str, int] = {"n": 0, "float_correct": 0, "int8_correct": 0}
    for k in range(N_FOLDS):
        train_names = [n for n in names if fold_of[n] != k]
        test_names = [n for n in names if fold_of[n] == k]
        logger.info("fold %d: test %s", k, " ".join(test_names))
        x, y = _windows([recs[n] for n in train_names], cfg.stride)
        model = train_model(x, y, cfg)
        data = convert_int8(model, _representative(x), cfg.units, cfg.n_models)
        card_path = _write_model(
            data,
            folds_dir,
            f"af_rr_fold{k}",
            training={
                "records": train_names,
                "test_records": test_names,
                "fold": k,
                "n_folds": N_FOLDS,
                "seed": SEED,
                "config": _cfg_dict(cfg),
            },
            metrics={},
            episode=EpisodeParams(),
        )
        det = AfDetector(card_path, episode=EpisodeParams(p_on=0.5, n_on=1, p_off=0.5, n_off=1))
        for n in test_names:
            run = run_detector(det, recs[n])
            runs[n] = (recs[n], run)
            _float_int8(model, recs[n], run, float_vs_int8)
    tuned_per_fold, tuned_final, table = tune_episodes(runs, fold_of)
    final_params = _fixed_episode(tuned_per_fold, tuned_final, folds_dir)
    x, y = _windows([recs[n] for n in names], cfg.stride)
    model = train_model(x, y, cfg)
    data = convert_int8(model, _representative(x), cfg.units, cfg.n_models)
    ops = tflite_op_names(data)
    training = {
        "data": "MIT-BIH Atrial Fibrillation Database (afdb), .qrs beats, .atr rhythm",
        "records": names,
        "labels": "AF = (AFIB + (AFL; all else not AF; beats before the first rhythm label unused",
        "split": f"{N_FOLDS}-fold patient-wise CV for figures; final model on all records",
        "folds": {n: fold_of[n] for n in names},
        "seed": SEED,
        "config": _cfg_dict(cfg),
        "ops": ops,
        "command": ".venv-train/bin/python -m tools.af all --data ../shared/data --out models",
        "episode_tuning": {
            "grid": {k: list(v) for k, v in EPISODE_GRID.items()},
            "objective": "beat Se% + beat Sp% - 10 x false AF episodes/h, afdb out-of-fold,"
            " >= 95 % of episodes >= 60 s alarmed within 60 s",
            **_tuning_record(tuned_per_fold, tuned_final),
        },
        "augmentation": f"ectopy (isolated/bigeminy/trigeminy) copies of {AUGMENT_SHARE:.0%}"
        " of the non-AF training windows (tools.af.dataset.ectopy_augment) and respiratory"
        f" sinus arrhythmia copies of {SINUS_ARRHYTHMIA_SHARE:.0%}"
        " (tools.af.dataset.sinus_arrhythmia_augment)",
        "never_used": "mitdb (a check set, never trained on; looked at when choosing"
        " SINUS_ARRHYTHMIA_SHARE between 0.5 and 0.25, docs/af_detector.md), MIT-BIH DS2",
    }
    card_path = _write_model(
        data, out_dir, "af_rr", training=training, metrics={}, episode=final_params
    )
    latency = _latency_us(out_dir / "af_rr.tflite")
    report = evaluate_af(data_dir, card_path=card_path, folds_dir=folds_dir)
    metrics: dict[str, Any] = {s.name: s.figures for s in report.sets}
    metrics["afdb_cv_window_accuracy_float_vs_int8"] = {
        "windows": float_vs_int8["n"],
        "float_pct": round(100 * float_vs_int8["float_correct"] / max(1, float_vs_int8["n"]), 3),
        "int8_pct": round(100 * float_vs_int8["int8_correct"] / max(1, float_vs_int8["n"]), 3),
        "threshold": 0.5,
    }
    metrics["notes"] = report.notes
    card_path = _write_model(
        data,
        out_dir,
        "af_rr",
        training=training,
        metrics=metrics,
        episode=final_params,
        latency=latency,
    )
    _write_tuning_table(folds_dir, table)
    logger.info("done in %.0f s: %s", time.perf_counter() - t_start, card_path)
    return card_path


def retune_episodes(
    data_dir: Path,
    *,
    folds_dir: Path = FOLDS_DIR,
    card_path: Path = AF_CARD,
) -> Path:
    """Step 3 of :func:`build_all` again on the models as they are (no training, no TensorFlow).

    Runs every afdb record through the fold model that held it out, chooses the episode
    hysteresis the same way (nested per fold, then on all records), writes it into the fold
    cards and the shipped card, and refreshes the shipped card's figures and
    ``episode_tuning.json``. For when the models' outputs change without retraining
    (session 15: each LSTM window judged from zero state,
    :meth:`agent.inference.tflite.TfliteModel.predict`). Returns the shipped card's path.

    Raises
    ------
    FileNotFoundError
        If afdb, the fold models or the shipped card are missing.
    """
    fold_of: dict[str, int] = {}
    for fold_card in fold_cards(folds_dir):
        training = load_card(fold_card).training
        fold_of.update({str(n): int(training["fold"]) for n in training["test_records"]})
    afdb = data_dir / "afdb"
    runs: dict[str, tuple[RrRecord, DetectorRun]] = {}
    one_window = EpisodeParams(p_on=0.5, n_on=1, p_off=0.5, n_off=1)
    for name in afdb_records(afdb):
        fold_card = folds_dir / f"af_rr_fold{fold_of[name]}.json"
        rec = load_rr_record(afdb / name)
        runs[name] = (rec, run_detector(AfDetector(fold_card, episode=one_window), rec))
        logger.info("afdb %s: fold %d", name, fold_of[name])
    tuned_per_fold, tuned_final, table = tune_episodes(runs, fold_of)
    final_params = _fixed_episode(tuned_per_fold, tuned_final, folds_dir)
    _set_episode(card_path, final_params)
    report = evaluate_af(data_dir, card_path=card_path, folds_dir=folds_dir)
    card = ModelCard.model_validate_json(card_path.read_text(encoding="utf-8"))
    training = dict(card.training)
    tuning = dict(training.get("episode_tuning", {}))
    tuning.pop("per_fold", None)
    tuning.update(_tuning_record(tuned_per_fold, tuned_final))
    training["episode_tuning"] = tuning
    metrics = dict(card.metrics)
    metrics.update({s.name: s.figures for s in report.sets})
    metrics["notes"] = report.notes
    card = card.model_copy(update={"training": training, "metrics": metrics})
    card_path.write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
    _write_tuning_table(folds_dir, table)
    return card_path


def _fixed_episode(
    tuned_per_fold: dict[int, EpisodeParams], tuned_final: EpisodeParams, folds_dir: Path
) -> EpisodeParams:
    """Give every fold card :data:`EPISODE_FIXED` and return it (the final model's).

    The tuner's choices are logged beside it (and recorded by :func:`_tuning_record`).
    """
    for k, prm in tuned_per_fold.items():
        _set_episode(folds_dir / f"af_rr_fold{k}.json", EPISODE_FIXED)
        logger.info(
            "fold %d: tuner's choice on the other folds %s; fixed %s", k, prm, EPISODE_FIXED
        )
    logger.info("shipped: tuner's choice %s; fixed %s", tuned_final, EPISODE_FIXED)
    return EPISODE_FIXED


def _tuning_record(
    tuned_per_fold: dict[int, EpisodeParams], tuned_final: EpisodeParams
) -> dict[str, Any]:
    """Return the card's record of the tuner's choices and of the fixed hysteresis."""
    return {
        "tuner_per_fold": {str(k): p.as_card() for k, p in tuned_per_fold.items()},
        "tuner_final": tuned_final.as_card(),
        "fixed": EPISODE_FIXED.as_card(),
        "why_fixed": "tools.af.build.EPISODE_FIXED: the tuner's faster choice raised more false"
        " AF in synthetic sinus rhythm (tools.af.sinus_check), on mitdb without AF and on afdb",
    }


def _write_tuning_table(folds_dir: Path, table: list[dict[str, Any]]) -> None:
    """Write the best :data:`TUNING_ROWS_KEPT` candidates to ``episode_tuning.json``."""
    table.sort(key=lambda row: -float(row["objective"]))
    rows = [{**row, "params": row["params"].as_card()} for row in table[:TUNING_ROWS_KEPT]]
    (folds_dir / "episode_tuning.json").write_text(
        json.dumps(rows, indent=1) + "\n", encoding="utf-8"
    )


def _cfg_dict(cfg: TrainConfig) -> dict[str, float | int]:
    return {
        "units": cfg.units,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "learning_rate": cfg.learning_rate,
        "stride": cfg.stride,
        **({"n_models": cfg.n_models} if cfg.n_models != 1 else {}),
    }


def _float_int8(model: KerasModel, rec: RrRecord, run: DetectorRun, acc: dict[str, int]) -> None:
    """Per-window accuracy at 0.5 of the float model and of the int8 detector run."""
    x, y, _src = record_windows(rec, stride=AF_HOP_BEATS)
    if len(x) != len(run.p_af):
        logger.warning("%s: %d windows vs %d detector windows", rec.name, len(x), len(run.p_af))
        return
    keep = y >= 0
    pf = predict_float(model, x) >= 0.5
    pi = run.p_af >= 0.5
    truth = y == 1
    acc["n"] += int(keep.sum())
    acc["float_correct"] += int(np.sum((pf == truth) & keep))
    acc["int8_correct"] += int(np.sum((pi == truth) & keep))
