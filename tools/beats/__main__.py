"""``python -m tools.beats {all,smoke,agent} --data DIR``: rebuild, test or score the beat CNN.

``all``: dataset (DS1, DS2) → patient-wise cross-validation on DS1 → training on all of DS1 →
float and int8 TFLite → DS2 evaluation (once) → model card. ``smoke``: a few training steps on
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
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from tools.beats.dataset import DS1, DS2, BeatSet, build_dataset

logger = logging.getLogger("tools.beats")

VERSION = "1.0.0"
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


def _dataset(mitdb: Path, work: Path, name: str, records: Sequence[str], scaling: str) -> BeatSet:
    path = work / f"{name}_{scaling}_{_code_key()}.npz"
    if path.exists():
        logger.info("dataset %s: cached %s", name, path)
        return BeatSet.load(path)
    data = build_dataset(mitdb, tuple(records), scaling=scaling)  # type: ignore[arg-type]
    data.save(path)
    return data


def run_all(data_dir: Path, out: Path, work: Path) -> int:
    """Build, cross-validate, train, convert, evaluate and write the card; return 0."""
    from tools.beats.card import write_card
    from tools.beats.convert import edgetpu_report, to_tflite
    from tools.beats.evaluate import latency, predict_tflite, scores_of
    from tools.beats.score import confusion_from_labels
    from tools.beats.train import (
        FOLDS,
        TrainConfig,
        cross_validate,
        limit_threads,
        train_model,
    )

    t_start = time.perf_counter()
    limit_threads()
    config = TrainConfig()
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    mitdb = data_dir / "mitdb"
    ds1 = _dataset(mitdb, work, "ds1", DS1, config.scaling)
    ds2 = _dataset(mitdb, work, "ds2", DS2, config.scaling)
    logger.info("DS1 %s, DS2 %s", ds1.counts(), ds2.counts())
    oof = cross_validate(ds1, config)
    cv = confusion_from_labels(ds1.labels, np.argmax(oof, axis=1))
    (work / "ds1_cv.md").write_text(cv.to_markdown() + "\n", encoding="utf-8")
    logger.info("DS1 patient-wise CV (Keras float):\n%s", cv.to_markdown())
    model = train_model(ds1, config)
    model.save(work / "beat_cnn.keras")
    float_path = work / "beat_cnn_float.tflite"
    float_path.write_bytes(to_tflite(model, None))
    int8_path = out / "beat_cnn.tflite"
    int8_path.write_bytes(to_tflite(model, ds1))
    # DS2: evaluated once, after every choice above was made on DS1.
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
    metrics = {
        "how": "reference R-peaks (annotations), every beat matched; Se = TP/(TP+FN),"
        " +P = TP/(TP+FP) per AAMI class (tools.beats.score)",
        "ds2_test": {"float32": s_float.as_dict(), "int8": s_int8.as_dict()},
        "ds2_test_130hz": {
            "how": "DS2 records resampled 360 → 130 Hz (resample_poly), annotations rounded",
            "int8": s_130.as_dict(),
        },
        "ds1_patient_cv": {
            "folds": [list(f) for f in FOLDS],
            "float32_keras": cv.as_dict(),
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
            "float_size_bytes": float_path.stat().st_size,
            "n_train_beats": ds1.counts(),
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


def run_agent(data_dir: Path, work: Path, records: Sequence[str]) -> int:
    """Score the shipped classifier on the agent's own R-peaks; write ``agent_beats.md``."""
    from agent.inference.beat_classifier import BeatClassifier
    from tools.beats.agent_eval import score_agent

    scores = score_agent(data_dir / "mitdb", records, BeatClassifier())
    work.mkdir(parents=True, exist_ok=True)
    text = (
        f"# Beat classes on the agent's own R-peaks ({len(records)} records: "
        f"{' '.join(records)})\n\n{scores.to_markdown()}\n"
    )
    (work / "agent_beats.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tools.beats")
    parser.add_argument("what", choices=["all", "smoke", "agent"])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="PhysioNet")
    parser.add_argument("--out", type=Path, default=Path("models"), help="model output folder")
    parser.add_argument(
        "--work", type=Path, default=Path("build/beats"), help="datasets, Keras model, reports"
    )
    parser.add_argument(
        "--records", nargs="+", help="agent: records to score (default DS2)", default=list(DS2)
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if not (args.data / "mitdb" / "100.hea").exists():
        print(f"error: mitdb not found under {args.data}", file=sys.stderr)
        return 2
    if args.what == "smoke":
        return run_smoke(args.data, args.out)
    if args.what == "agent":
        return run_agent(args.data, args.work, args.records)
    return run_all(args.data, args.out, args.work)


if __name__ == "__main__":
    raise SystemExit(main())
