"""``python -m tools.af {all,smoke,evaluate,agent-out,agent-cv,episode-nested}``.

- ``all --data ../shared/data --out models``: the whole life cycle (:mod:`tools.af.build`);
  needs the training venv (``.venv-train``, TensorFlow + tf-keras).
- ``smoke --data ../shared/data --out DIR``: a few training steps on a slice of 2 afdb
  records, int8 conversion, one run through :func:`agent.inference.tflite.load_model`, and a
  check that the fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` op is there; exit status 1 on failure.
- ``evaluate --data ../shared/data [--out DIR] [--rr-source reference|agent]``: the report
  (:func:`tools.af.evaluate.evaluate_af`), no TensorFlow needed.
- ``agent-out --data ../shared/data --db mitdb FOLDER``: the ``afib`` alarms and AF rows of a
  ``bedside analyze`` output folder against the rhythm annotations (:mod:`tools.af.agent_out`);
  ``--db cinc2017``: record-level AF F1 against its ``REFERENCE.csv``.
- ``agent-cv --data ../shared/data --out DIR [--jobs N]``: ``bedside analyze`` over afdb's
  RR path with every record through the AF fold model that never saw it
  (:func:`tools.af.agent_out.run_fold_models`), then scored as ``agent-out`` does: the
  agent's afdb figures on unseen patients (the shipped model trained on all of afdb).
- ``episode-nested --data ../shared/data [--false-max 0.065]``: the AF episode rule chosen
  on four folds of afdb and scored on the fifth (:mod:`tools.af.nested`), beside the shipped
  rule; no TensorFlow needed.

The waveform AF model is trained by ``python -m tools.af.wave_mlp`` (``./run.sh train af-wave``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

FUSED_LSTM_OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"
"""The TFLite builtin the int8 LSTM must convert to (../shared/STACK.md)."""


def smoke(data_dir: Path, out_dir: Path) -> int:
    """Train briefly on 2 afdb records, convert, run; return 0 on success, 1 on failure.

    Then the same for a two-network seed ensemble (``TrainConfig.n_models``): its float
    P(AF) must be the mean of its members', and its int8 model must hold two fused LSTMs.
    """
    from agent.inference.tflite import load_model
    from tools.af.dataset import afdb_records, load_rr_record, record_windows
    from tools.af.train import (
        TrainConfig,
        convert_int8,
        predict_float,
        tflite_op_names,
        tflite_ops,
        train_model,
    )

    names = afdb_records(data_dir / "afdb")[:2]
    xs, ys = [], []
    for n in names:
        x, y, _src = record_windows(load_rr_record(data_dir / "afdb" / n), stride=16)
        keep = y >= 0
        xs.append(x[keep][:1024])
        ys.append(y[keep][:1024])
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
    cfg = TrainConfig(units=8, epochs=1, batch_size=128, n_models=1)
    model = train_model(x_all, y_all, cfg)
    data = convert_int8(model, x_all[:64], cfg.units)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "af_rr_smoke.tflite"
    path.write_bytes(data)
    ops = tflite_op_names(data)
    tfl = load_model(path)
    p = tfl.predict([x_all[:1]])[0]
    ok = FUSED_LSTM_OP in ops and tfl.inputs[0].dtype == np.int8 and p.shape == (1, 1)
    ok = ok and bool(np.all((p >= 0.0) & (p <= 1.0)))
    print(f"smoke: records {names}, {len(data)} bytes, ops {ops}, P(AF)={float(p[0, 0]):.3f}")
    # a two-network seed ensemble (TrainConfig.n_models): its P(AF) is the members' mean
    ens_cfg = replace(cfg, n_models=2)
    ens = train_model(x_all[:512], y_all[:512], ens_cfg)
    x8 = x_all[:8]
    branches = [ens.get_layer(f"p_af{i}")(ens.get_layer(f"lstm{i}")(x8)) for i in range(2)]
    mean_of_members = np.mean([np.asarray(b) for b in branches], axis=0)
    averaged = bool(np.allclose(predict_float(ens, x8), mean_of_members.reshape(-1), atol=1e-6))
    ens_path = out_dir / "af_rr_smoke_ensemble.tflite"
    ens_path.write_bytes(convert_int8(ens, x_all[:64], ens_cfg.units, ens_cfg.n_models))
    p_ens = float(load_model(ens_path).predict([x_all[:1]])[0][0, 0])
    n_lstm = tflite_ops(ens_path.read_bytes()).count(FUSED_LSTM_OP)
    ok = ok and averaged and n_lstm == 2 and 0.0 <= p_ens <= 1.0
    print(
        f"smoke: ensemble of 2, {ens_path.stat().st_size} bytes, {n_lstm} fused LSTMs,"
        f" P(AF)={p_ens:.3f}, P(AF) the mean of its members' (float): {averaged}"
    )
    print("smoke: OK" if ok else f"smoke: FAILED ({FUSED_LSTM_OP} missing or bad output)")
    return 0 if ok else 1


def episode_nested(data_dir: Path, false_max_per_h: float | None) -> int:
    """Print the nested episode-rule choice (:mod:`tools.af.nested`) beside the shipped rule.

    Return 0, or 2 when no candidate meets the ceiling on some fold's complement.
    """
    import json

    from tools.af.build import EPISODE_FIXED
    from tools.af.evaluate import (
        Counts,
        afdb_cv_runs,
        candidate_counts,
        fold_of_record,
        summarize,
    )
    from tools.af.nested import CANDIDATES, FALSE_MAX_PER_H, nested_choice

    ceiling = FALSE_MAX_PER_H if false_max_per_h is None else false_max_per_h
    runs = {rec.name: (rec, run) for rec, run in afdb_cv_runs(data_dir / "afdb")}
    fold_of = {name: card.stem for name, card in fold_of_record().items()}
    candidates = list(CANDIDATES)
    counts = candidate_counts(runs, candidates)
    try:
        result = nested_choice(counts, {n: fold_of[n] for n in runs}, len(candidates), ceiling)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shipped = Counts()
    for c in candidate_counts(runs, [EPISODE_FIXED]).values():
        shipped += c

    def rule(i: int) -> str:
        return f"{candidates[i].p_on} / {candidates[i].n_on}"

    print(
        json.dumps(
            {
                "false_max_per_h": ceiling,
                "chosen_per_fold": {f: rule(i) for f, i in result.per_fold.items()},
                "chosen_on_all": rule(result.on_all),
                "nested_held_out": result.held_out,
                "shipped": {
                    "rule": f"{EPISODE_FIXED.p_on} / {EPISODE_FIXED.n_on}",
                    **summarize(shipped),
                },
            },
            indent=2,
        )
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tools.af")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("all", "smoke", "evaluate", "retune"):
        p = sub.add_parser(name)
        p.add_argument("--data", type=Path, default=Path("../shared/data"))
        p.add_argument("--out", type=Path, default=Path("models" if name == "all" else "out/af"))
        if name == "all":
            p.add_argument("--epochs", type=int, default=None)
        if name == "evaluate":
            p.add_argument("--rr-source", choices=["reference", "agent"], default="reference")
    out = sub.add_parser("agent-out", help="score a bedside analyze output folder's AF calls")
    out.add_argument("--data", type=Path, default=Path("../shared/data"))
    out.add_argument("--db", default="mitdb", help="database folder under --data (annotations)")
    out.add_argument("folder", type=Path, help="bedside analyze --out folder")
    cv = sub.add_parser("agent-cv", help="afdb through the agent, each record out of fold")
    cv.add_argument("--data", type=Path, default=Path("../shared/data"))
    cv.add_argument("--out", type=Path, required=True, help="bedside analyze --out folder")
    cv.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    cv.add_argument("--records", nargs="+", default=None, help="only these afdb records")
    nested = sub.add_parser("episode-nested", help="the AF episode rule chosen fold by fold")
    nested.add_argument("--data", type=Path, default=Path("../shared/data"))
    nested.add_argument("--false-max", type=float, default=None, help="false AF episodes / h")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.cmd == "agent-out":
        import json

        from tools.af.agent_out import score_cinc_folder, score_folder

        db_dir = args.data / args.db
        try:
            if (db_dir / "REFERENCE.csv").is_file():  # CinC 2017: one label per recording
                scored = score_cinc_folder(db_dir / "REFERENCE.csv", args.folder)
            else:
                scored = score_folder(db_dir, args.folder)
            print(json.dumps(scored, indent=2))
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.cmd == "agent-cv":
        import json

        from tools.af.agent_out import agent_cv

        try:
            scored = agent_cv(args.data, args.out, jobs=args.jobs, records=args.records)
        except (FileNotFoundError, RuntimeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(scored, indent=2))
        return 0
    if not (args.data / "afdb").is_dir():
        print(f"error: afdb not found under {args.data}", file=sys.stderr)
        return 2
    if args.cmd == "smoke":
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        return smoke(args.data, args.out)
    if args.cmd == "all":
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        from tools.af.build import build_all
        from tools.af.train import TrainConfig

        cfg = TrainConfig() if args.epochs is None else TrainConfig(epochs=args.epochs)
        card = build_all(args.data, args.out, cfg=cfg)
        print(card.read_text(encoding="utf-8"))
        return 0
    if args.cmd == "episode-nested":
        return episode_nested(args.data, args.false_max)
    if args.cmd == "retune":
        from tools.af.build import retune_episodes

        print(retune_episodes(args.data).read_text(encoding="utf-8"))
        return 0
    from tools.af.evaluate import evaluate_af

    report = evaluate_af(args.data, rr_source=args.rr_source)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "af.md").write_text(report.to_markdown(), encoding="utf-8")
    (args.out / "af.json").write_text(report.to_json(), encoding="utf-8")
    print(report.to_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
