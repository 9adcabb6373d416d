"""``python -m tools.beats {all,smoke,agent} --data DIR``: rebuild, test or score the beat CNN.

``all``: datasets (DS1, svdb, DS2) → patient-wise cross-validation on DS1 + svdb (float, int8
fold models, and the fold models on the agent's own R-peaks) → training on DS1 + svdb → float
and int8 TFLite → DS2 evaluation (once) → model card. ``cv``: the cross-validation of one
configuration (``--set key=value``), for choices. ``smoke``: a few training steps on
two DS1 records, int8 conversion and one run in the runtime interpreter (CI keeps the tools
alive with it). Both need TensorFlow (``.venv-train``). ``agent``: the shipped model on the
agent's own R-peaks (detector + classifier), scored per AAMI EC57 (no TensorFlow needed).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tools.beats.dataset import (
    DS1,
    DS2,
    NEGATED_TAG,
    SECOND_LEAD_TAG,
    SVDB,
    BeatSet,
    build_dataset,
    is_negated,
    is_original,
    is_scored,
    negate,
    patient_of,
    second_lead_dataset,
    svdb_records,
)

logger = logging.getLogger("tools.beats")

VERSION = "2.0.0"
"""Version written into the card of a model built by ``all``."""

SMOKE_RECORDS = ("119", "208")
"""Two DS1 records with N, V and F beats, for the smoke run."""


def _code_key() -> str:
    """Short hash of the code that makes examples: a change invalidates cached datasets."""
    import agent.inference.beat_features as features
    import tools.beats.dataset as dataset

    digest = hashlib.sha256()
    for module in (features, dataset):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:10]


def _dataset(
    db_dir: Path,
    work: Path,
    name: str,
    records: Sequence[str],
    scaling: str,
    *,
    negated: bool = False,
) -> BeatSet:
    """One database's examples, cached under ``work``; ``negated``: the reversed-lead copies."""
    suffix = f"_{NEGATED_TAG}" if negated else ""
    path = work / f"{name}{suffix}_{scaling}_{_code_key()}.npz"
    if path.exists():
        logger.info("dataset %s%s: cached %s", name, suffix, path)
        return BeatSet.load(path)
    data = build_dataset(
        db_dir,
        tuple(records),
        scaling=scaling,  # type: ignore[arg-type]
        transform=negate if negated else None,
        tag=NEGATED_TAG if negated else "",
    )
    data.save(path)
    return data


def _cached(path: Path, build: Callable[[], BeatSet]) -> BeatSet:
    """Return the set saved at ``path``, or build it and save it there first."""
    if path.exists():
        return BeatSet.load(path)
    data = build()
    data.save(path)
    return data


def _training_set(
    data_dir: Path, work: Path, scaling: str, noise: bool = False, second_lead: bool = False
) -> BeatSet:
    """DS1 + the svdb records at hand, their reversed-lead copies (+ noisy, second-lead copies).

    The reversed-lead copies are always there: trained on only with
    ``TrainConfig.polarity_augment``, scored out of fold either way. The noisy and the
    second-lead copies are training data only.
    """
    mitdb, svdb_dir, svdb_recs = data_dir / "mitdb", data_dir / SVDB, svdb_records(data_dir)
    sets = [
        _dataset(mitdb, work, "ds1", DS1, scaling),
        _dataset(svdb_dir, work, "svdb", svdb_recs, scaling),
        _dataset(mitdb, work, "ds1", DS1, scaling, negated=True),
        _dataset(svdb_dir, work, "svdb", svdb_recs, scaling, negated=True),
    ]
    both = [(mitdb, DS1), (svdb_dir, svdb_recs)]
    if noise:
        import tools.beats.augment as augment
        from tools.beats.augment import noisy_dataset

        aug_key = hashlib.sha256(Path(str(augment.__file__)).read_bytes()).hexdigest()[:6]
        sets.append(
            _cached(
                work / f"noisy_{scaling}_{_code_key()}{aug_key}.npz",
                lambda: noisy_dataset(both, data_dir / "nstdb", scaling=scaling),  # type: ignore[arg-type]
            )
        )
    if second_lead:
        sets.append(
            _cached(
                work / f"{SECOND_LEAD_TAG}_{scaling}_{_code_key()}.npz",
                lambda: second_lead_dataset(both, scaling=scaling),  # type: ignore[arg-type]
            )
        )
    return BeatSet.concat(sets)


def _cv_report(data: BeatSet, oof: np.ndarray) -> dict[str, object]:
    """Out-of-fold scores: DS1, svdb, both, the reversed copies, and each patient's S/V Se.

    ``per_patient`` holds :func:`tools.beats.score.per_patient_sensitivity` of S and V for
    the DS1 and the svdb patients.
    """
    from tools.beats.score import confusion_from_labels, per_patient_sensitivity

    pred = np.argmax(oof, axis=1)
    scored = is_original(data.records)
    reversed_ = is_negated(data.records)
    is_ds1 = np.isin(patient_of(data.records), list(DS1))
    out: dict[str, object] = {}
    for name, mask in (
        ("ds1", scored & is_ds1),
        ("svdb", scored & ~is_ds1),
        ("all", scored),
        ("ds1_reversed", reversed_ & is_ds1),
        ("svdb_reversed", reversed_ & ~is_ds1),
    ):
        out[name] = confusion_from_labels(data.labels[mask], pred[mask]).as_dict()
    patients = patient_of(data.records)
    out["per_patient"] = {
        name: {
            c: per_patient_sensitivity(data.labels[mask], pred[mask], patients[mask], c)
            for c in ("S", "V")
        }
        for name, mask in (("ds1", scored & is_ds1), ("svdb", scored & ~is_ds1))
    }
    return out


def run_cv(
    data_dir: Path, work: Path, tag: str, overrides: Sequence[str], *, save_folds: bool = False
) -> int:
    """Patient-wise cross-validation of one configuration (``--set key=value``); return 0.

    Writes ``cv_<tag>.json`` (config and out-of-fold scores on DS1, svdb and both) and
    ``cv_<tag>.npz`` (out-of-fold probabilities) under ``work``; with ``save_folds``, each
    fold's int8 model and card under ``cv_<tag>/fold<k>/`` (for :func:`run_agent_cv`). DS2 is
    not read. Returns 2 on an unknown or malformed setting.
    """
    from tools.beats.train import FOLDS, TrainConfig, cross_validate, limit_threads

    limit_threads()
    base = TrainConfig()
    fields: dict[str, Callable[[str], Any]] = {k: type(v) for k, v in base.as_dict().items()}
    changes: dict[str, Any] = {}
    for item in overrides:
        key, _, value = item.partition("=")
        if key not in fields:
            print(f"error: unknown setting {key!r} (known: {', '.join(fields)})", file=sys.stderr)
            return 2
        changes[key] = (
            value.lower() in {"1", "true", "yes"} if fields[key] is bool else fields[key](value)
        )
    config = replace(base, **changes)
    work.mkdir(parents=True, exist_ok=True)
    data = _training_set(
        data_dir, work, config.scaling, config.noise_augment, config.second_lead_augment
    )
    t0 = time.perf_counter()

    def keep_fold(k: int, model: Any, train: BeatSet) -> None:  # noqa: ANN401
        from tools.beats.card import write_card
        from tools.beats.convert import to_tflite

        folder = work / f"cv_{tag}" / f"fold{k}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "beat_cnn.tflite"
        path.write_bytes(to_tflite(model, train))
        write_card(
            path,
            version=f"{VERSION}-cv{k}",
            training={**config.as_dict(), "held_out": list(FOLDS[k])},
            metrics={},
            latency={},
            edgetpu={},
        )

    oof = cross_validate(data, config, on_fold=keep_fold if save_folds else None)
    report: dict[str, Any] = {
        "tag": tag,
        "code_key": _code_key(),
        "config": config.as_dict(),
        "wall_s": round(time.perf_counter() - t0),
        **_cv_report(data, oof),
    }
    import json

    (work / f"cv_{tag}.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    np.savez_compressed(work / f"cv_{tag}.npz", oof=oof, labels=data.labels, records=data.records)
    print(_cv_line(report))
    return 0


def _cv_line(report: dict[str, Any]) -> str:
    parts = [str(report["tag"])]
    for part in ("ds1", "svdb", "all", "ds1_reversed", "svdb_reversed"):
        d = report[part]
        pc = d["classes"]
        parts.append(
            f"{part}: S {pc['S']['se_pct']:.1f}/{pc['S']['ppv_pct']:.1f}"
            f" V {pc['V']['se_pct']:.1f}/{pc['V']['ppv_pct']:.1f} acc {d['accuracy_pct']:.1f}"
        )
    per_patient = report.get("per_patient", {})
    for part, by_class in per_patient.items():
        means = " ".join(f"{c} {_pct(v['mean_se_pct'])}" for c, v in by_class.items())
        parts.append(f"{part} Se per patient: {means}")
    return " | ".join(parts)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _fold_cards(work: Path, tag: str) -> list[Path]:
    from tools.beats.train import FOLDS

    return [work / f"cv_{tag}" / f"fold{k}" / "beat_cnn.json" for k in range(len(FOLDS))]


def _int8_oof(data: BeatSet, cards: list[Path]) -> np.ndarray:
    """Out-of-fold probabilities of the int8 fold models (each fold's held-out scored beats)."""
    from tools.beats.evaluate import predict_tflite
    from tools.beats.train import FOLDS

    probs = np.zeros((len(data), 5), dtype=np.float32)
    patients = patient_of(data.records)
    scorable = is_scored(data.records)
    for fold, card in zip(FOLDS, cards, strict=True):
        held = np.isin(patients, list(fold)) & scorable
        probs[held] = predict_tflite(card.with_suffix(".tflite"), data.subset(held))
    return probs


def run_all(data_dir: Path, out: Path, work: Path, *, reuse_cv: bool = False) -> int:
    """Build, cross-validate, train, convert, evaluate and write the card; return 0.

    With ``reuse_cv``, the out-of-fold results and fold models of an earlier
    ``cv --tag shipped --save-folds`` run with the same configuration are used instead of
    training the folds again (the shipped model itself is always trained here).
    """
    import json

    from agent.inference.beat_classifier import BeatClassifier
    from tools.beats.agent_eval import score_agent
    from tools.beats.card import write_card
    from tools.beats.convert import edgetpu_report, to_tflite
    from tools.beats.evaluate import latency, predict_tflite, scores_of
    from tools.beats.train import (
        DS1_FOLDS,
        FOLDS,
        SVDB_FOLDS,
        TrainConfig,
        limit_threads,
        train_model,
        training_beats,
    )

    t_start = time.perf_counter()
    limit_threads()
    config = TrainConfig()
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    mitdb = data_dir / "mitdb"
    train = _training_set(
        data_dir, work, config.scaling, config.noise_augment, config.second_lead_augment
    )
    ds2 = _dataset(mitdb, work, "ds2", DS2, config.scaling)
    logger.info("training %s, DS2 %s", train.counts(), ds2.counts())
    cv_json = work / "cv_shipped.json"
    cached = json.loads(cv_json.read_text(encoding="utf-8")) if cv_json.exists() else None
    same = (
        cached is not None
        and cached["config"] == json.loads(json.dumps(config.as_dict()))
        and cached.get("code_key") == _code_key()
    )
    if not (reuse_cv and same):
        run_cv(data_dir, work, "shipped", [], save_folds=True)
    cards = _fold_cards(work, "shipped")
    with np.load(work / "cv_shipped.npz") as z:
        oof_float = z["oof"]
    oof_int8 = _int8_oof(train, cards)
    cv_float = _cv_report(train, oof_float)
    cv_int8 = _cv_report(train, oof_int8)
    agent_cv: dict[str, object] = {}
    for db, folds, present in (
        (SVDB, SVDB_FOLDS, set(svdb_records(data_dir))),
        ("mitdb", DS1_FOLDS, set(DS1)),
    ):
        total = None
        for fold, card in zip(folds, cards, strict=True):
            s = score_agent(data_dir / db, [r for r in fold if r in present], BeatClassifier(card))
            total = s if total is None else total + s
        assert total is not None  # noqa: S101  (folds are never empty)
        agent_cv["svdb" if db == SVDB else "ds1"] = total.as_dict()
        logger.info("agent, own R-peaks, %s CV int8:\n%s", db, total.to_markdown())
    fit_on = training_beats(train, config)
    model = train_model(fit_on, config)
    model.save(work / "beat_cnn.keras")
    float_path = work / "beat_cnn_float.tflite"
    float_path.write_bytes(to_tflite(model, None))
    int8_path = out / "beat_cnn.tflite"
    int8_path.write_bytes(to_tflite(model, fit_on))
    # DS2: evaluated once, after every choice above was made on the DS1 + svdb folds.
    s_float = scores_of(predict_tflite(float_path, ds2), ds2)
    s_int8 = scores_of(predict_tflite(int8_path, ds2), ds2)
    (work / "ds2.md").write_text(
        "## float32\n\n" + s_float.to_markdown() + "\n\n## int8\n\n" + s_int8.to_markdown() + "\n",
        encoding="utf-8",
    )
    logger.info("DS2 float:\n%s\nDS2 int8:\n%s", s_float.to_markdown(), s_int8.to_markdown())
    # The same test beats from the records resampled to 130 Hz (a wearable's rate), int8 only.
    ds2_130 = build_dataset(mitdb, DS2, scaling=config.scaling, resample_hz=130.0)
    s_130 = scores_of(predict_tflite(int8_path, ds2_130), ds2_130)
    logger.info("DS2 at 130 Hz, int8:\n%s", s_130.to_markdown())
    # And with the lead turned over (a strap worn upside down), int8 only.
    ds2_rev = _dataset(mitdb, work, "ds2", DS2, config.scaling, negated=True)
    s_rev = scores_of(predict_tflite(int8_path, ds2_rev), ds2_rev)
    logger.info("DS2 reversed lead, int8:\n%s", s_rev.to_markdown())
    metrics = {
        "how": "reference R-peaks (annotations), every beat matched; Se = TP/(TP+FN),"
        " +P = TP/(TP+FP) per AAMI class (tools.beats.score)",
        "ds2_test": {"float32": s_float.as_dict(), "int8": s_int8.as_dict()},
        "ds2_test_130hz": {
            "how": "DS2 records resampled 360 → 130 Hz (resample_poly), annotations rounded",
            "int8": s_130.as_dict(),
        },
        "ds2_test_reversed": {
            "how": "DS2 records with the ECG turned over (-x: a reversed lead), reference R-peaks",
            "int8": s_rev.as_dict(),
        },
        "patient_cv": {
            "how": "4 patient-wise folds, fold k = DS1 fold k + svdb fold k; each beat predicted"
            " by a model (same configuration) trained on the other 3 folds; float32 = Keras,"
            " int8 = the fold's converted model; agent = the fold's int8 model on the agent's own"
            " R-peaks (StreamingRPeakDetector, 150 ms matching, tools.beats.agent_eval)",
            "folds": [list(f) for f in FOLDS],
            "float32_keras": cv_float,
            "int8": cv_int8,
            "agent_int8": agent_cv,
        },
    }
    lat = latency(int8_path, ds2)
    card = write_card(
        int8_path,
        version=VERSION,
        training={
            **config.as_dict(),
            "command": ".venv-train/bin/python -m tools.beats all --data ../shared/data"
            " --out models",
            "framework": "keras 3 (TensorFlow backend), tf.lite converter",
            "data": "mitdb DS1 (de Chazal 2004) + the 40 even-numbered svdb records at hand"
            + (
                " + one nstdb-noise copy of each (tools.beats.augment)"
                if config.noise_augment
                else ""
            )
            + (
                " + a reversed-lead copy of each record (the ECG turned over, every beat)"
                if config.polarity_augment
                else ""
            )
            + (
                " + a second-lead copy of each record (mitdb V1/V2/V4/V5, svdb ECG2)"
                if config.second_lead_augment
                else ""
            ),
            "float_size_bytes": float_path.stat().st_size,
            "n_train_beats": fit_on.counts(),
            "n_test_beats": ds2.counts(),
            "wall_s": round(time.perf_counter() - t_start),
        },
        metrics=metrics,
        latency=lat,
        edgetpu=edgetpu_report(int8_path),
    )
    logger.info("wrote %s and %s in %.0f s", int8_path, card, time.perf_counter() - t_start)
    return 0


def run_smoke(data_dir: Path, out: Path) -> int:
    """Train briefly on two records, convert to int8, run it; return 0, or 1 on failure."""
    from agent.inference.tflite import load_model
    from tools.beats.convert import edgetpu_report, to_tflite
    from tools.beats.train import TrainConfig, limit_threads, train_model

    limit_threads()
    out.mkdir(parents=True, exist_ok=True)
    data = build_dataset(data_dir / "mitdb", SMOKE_RECORDS)
    config = replace(TrainConfig(), epochs=1, n_models=1)
    model = train_model(data, config)
    path = out / "beat_cnn_smoke.tflite"
    path.write_bytes(to_tflite(model, data))
    tflite = load_model(path, num_threads=1)
    probs = np.stack(
        [
            tflite.predict({"window": data.windows[i], "rr": data.rr[i]})[0].reshape(-1)
            for i in range(0, len(data), max(1, len(data) // 50))
        ]
    )
    ok = bool(
        np.all(np.isfinite(probs))
        and np.allclose(probs.sum(axis=1), 1.0, atol=0.05)
        and all(t.dtype == np.int8 for t in (*tflite.inputs, *tflite.outputs))
    )
    report = edgetpu_report(path)
    print(
        f"smoke: {len(data)} beats, model {path.stat().st_size} bytes, ops {report['ops']},"
        f" outputs sum to 1: {ok}"
    )
    return 0 if ok else 1


def run_agent(data_dir: Path, work: Path, records: Sequence[str], db: str = "mitdb") -> int:
    """Score the shipped classifier on the agent's own R-peaks; write ``agent_beats_<db>.md``."""
    import json

    from agent.inference.beat_classifier import BeatClassifier
    from tools.beats.agent_eval import score_agent

    scores = score_agent(data_dir / db, records, BeatClassifier())
    work.mkdir(parents=True, exist_ok=True)
    text = (
        f"# Beat classes on the agent's own R-peaks ({db}, {len(records)} records: "
        f"{' '.join(records)})\n\n{scores.to_markdown()}\n"
    )
    (work / f"agent_beats_{db}.md").write_text(text, encoding="utf-8")
    (work / f"agent_beats_{db}.json").write_text(
        json.dumps({"db": db, "records": list(records), **scores.as_dict()}, indent=1) + "\n",
        encoding="utf-8",
    )
    print(text)
    return 0


def run_agent_cv(data_dir: Path, work: Path, cv_dir: Path, db: str) -> int:
    """Score the agent patient-wise: each record by the fold model that did not see it.

    The fold models are those of ``cv_dir`` (``cv --save-folds``); writes
    ``agent_beats_<db>_cv.md`` and ``.json`` under ``work``. Returns 2 when a fold model is missing.
    """
    import json

    from agent.inference.beat_classifier import BeatClassifier
    from tools.beats.agent_eval import score_agent
    from tools.beats.score import ClassScores
    from tools.beats.train import DS1_FOLDS, SVDB_FOLDS

    folds = SVDB_FOLDS if db == SVDB else DS1_FOLDS
    present = set(svdb_records(data_dir)) if db == SVDB else set(DS1)
    total: ClassScores | None = None
    per_fold = []
    for k, fold in enumerate(folds):
        card = cv_dir / f"fold{k}" / "beat_cnn.json"
        if not card.exists():
            print(f"error: no fold model {card} (run cv --save-folds)", file=sys.stderr)
            return 2
        records = [r for r in fold if r in present]
        scores = score_agent(data_dir / db, records, BeatClassifier(card))
        per_fold.append({"fold": k, "records": records, **scores.as_dict()})
        total = scores if total is None else total + scores
    assert total is not None  # noqa: S101 (folds are never empty)
    work.mkdir(parents=True, exist_ok=True)
    text = (
        f"# Beat classes on the agent's own R-peaks ({db}, patient-wise cross-validated:"
        f" each record by the fold model of {cv_dir} that did not see it)\n\n"
        f"{total.to_markdown()}\n"
    )
    (work / f"agent_beats_{db}_cv.md").write_text(text, encoding="utf-8")
    (work / f"agent_beats_{db}_cv.json").write_text(
        json.dumps({"db": db, "cv_dir": str(cv_dir), **total.as_dict(), "folds": per_fold}) + "\n",
        encoding="utf-8",
    )
    print(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tools.beats")
    parser.add_argument("what", choices=["all", "smoke", "agent", "cv"])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="PhysioNet")
    parser.add_argument("--out", type=Path, default=Path("models"), help="model output folder")
    parser.add_argument(
        "--work", type=Path, default=Path("build/beats"), help="datasets, Keras model, reports"
    )
    parser.add_argument(
        "--records", nargs="+", help="agent: records to score (default DS2, or all of svdb)"
    )
    parser.add_argument(
        "--db", choices=["mitdb", SVDB], default="mitdb", help="agent: database folder"
    )
    parser.add_argument(
        "--cv", type=Path, help="agent: score with the fold models of this cv --save-folds run"
    )
    parser.add_argument("--tag", default="run", help="cv: name of the run's output files")
    parser.add_argument(
        "--reuse-cv",
        action="store_true",
        help="all: reuse build/beats cv_shipped.* when made with the same configuration",
    )
    parser.add_argument(
        "--save-folds", action="store_true", help="cv: keep each fold's int8 model and card"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="cv: override a TrainConfig field (repeatable)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if not (args.data / "mitdb" / "100.hea").exists():
        print(f"error: mitdb not found under {args.data}", file=sys.stderr)
        return 2
    if args.what == "smoke":
        return run_smoke(args.data, args.out)
    if args.what == "agent" and args.cv is not None:
        return run_agent_cv(args.data, args.work, args.cv, args.db)
    if args.what == "agent":
        if args.records:
            records = args.records
        else:
            records = list(DS2) if args.db == "mitdb" else list(svdb_records(args.data))
        return run_agent(args.data, args.work, records, args.db)
    if args.what == "cv":
        return run_cv(args.data, args.work, args.tag, args.set, save_folds=args.save_folds)
    return run_all(args.data, args.out, args.work, reuse_cv=args.reuse_cv)


if __name__ == "__main__":
    raise SystemExit(main())
