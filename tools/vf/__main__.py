"""``python -m tools.vf tune|evaluate|vt-tune --data ../shared/data --out reports``.

``vt-agent`` scores VT and VF through the agent itself (:mod:`tools.vf.agent_eval`) and
writes ``OUT/rhythm_ventricular.md/.json``. ``vt-tune`` tunes the waveform VT detector
(:mod:`tools.vf.vt`) leave-one-record-out on vfdb + all mitdb, writes
``OUT/rhythm_vt_tune.json`` and prints the shipped parameters. ``vt-leak-gate`` chooses the
detector's VF-filter-leakage noise gate out of fold (:func:`tools.vf.vt.leak_gate_study`) and
writes ``OUT/rhythm_vt_leak.json``; exit status 1 when it would choose another gate than the
shipped one.

``tune`` fits the detector on vfdb + MIT-BIH DS1 (all of them; DS2 is never read) and writes
``OUT/vf_params.json`` plus the ``VfParams(...)`` literal to paste into
``agent/rhythm/vf.py`` as ``VF_PARAMS_TUNED``. ``evaluate`` writes ``OUT/vf_report.md`` and
``OUT/vf_report.json`` (cross-validated and shipped figures).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from agent.rhythm.ventricular import VtParams
from agent.rhythm.vf import VF_PARAMS_TUNED, VfParams
from tools.vf.dataset import load_record, record_windows, tuning_records
from tools.vf.evaluate import evaluate_vf
from tools.vf.tune import tune_params

logger = logging.getLogger("tools.vf")


def _tune(data_dir: Path, out: Path, window_s: float) -> VfParams:
    base = VfParams(window_s=window_s)
    windows = []
    for db, name in tuning_records(data_dir):
        logger.info("windows %s/%s", db, name)
        windows.append(record_windows(load_record(data_dir, db, name), base))
    params = tune_params(windows, base)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vf_params.json").write_text(json.dumps(dataclasses.asdict(params), indent=1))
    return params


def _literal(p: VfParams) -> str:
    def tup(v: tuple[float, ...]) -> str:
        return "(" + ", ".join(f"{x:.6g}" for x in v) + ",)"

    return (
        "VfParams(\n"
        f"    window_s={p.window_s!r},\n    hop_s={p.hop_s!r},\n"
        f"    feature_mean={tup(p.feature_mean)},\n"
        f"    feature_scale={tup(p.feature_scale)},\n"
        f"    coef={tup(p.coef)},\n    intercept={p.intercept:.6g},\n"
        f"    threshold={p.threshold!r},\n    k_on={p.k_on},\n    n_on={p.n_on},\n"
        f"    n_off={p.n_off},\n)"
    )


def _vt_tune(data_dir: Path, out: Path, *, no_cv: bool, noise_negatives: bool) -> int:
    from tools.vf.vt import (
        NOISE_RECORDS,
        cross_validate,
        nstdb_folds,
        params_json,
        summary,
        vt_records,
        vt_tune,
        vt_windows,
    )

    base = VtParams()
    windows = []
    for db, name in vt_records(data_dir):
        logger.info("VT windows %s/%s", db, name)
        windows.append(vt_windows(data_dir, db, name, base))
    noise = (
        [vt_windows(data_dir, "nstdb", n, base) for n in NOISE_RECORDS] if noise_negatives else []
    )
    report: dict[str, object] = {}
    if not no_cv:
        scores, folds = cross_validate(windows, base, noise=noise)
        nst = (data_dir / "nstdb" / "RECORDS").read_text().split() if noise else []
        if noise:
            folds.update(nstdb_folds(windows, noise, base, nst))
        # the fold parameters vt-agent reads (OUT/work/vt_folds.json), so it does not re-tune
        work = out / "work"
        work.mkdir(parents=True, exist_ok=True)
        (work / "vt_folds.json").write_text(
            json.dumps({k: params_json(p) for k, p in folds.items()}) + "\n"
        )
        report["cv_all"] = summary(scores)
        for db in ("vfdb", "mitdb"):
            report[f"cv_{db}"] = summary([s for s in scores if s.key.startswith(db)])
        report["cv_records"] = [dataclasses.asdict(s) for s in scores]
    params = vt_tune(windows + noise, base)
    report["shipped"] = params_json(params)
    from tools.vf.vt import window_latency_ms, write_card

    latency_ms = window_latency_ms(data_dir)
    report["latency_ms_per_window"] = round(latency_ms, 3)
    print(f"VT window inference (features + logistic, 4 s at 250 Hz): {latency_ms:.3f} ms CPU")
    if not no_cv:
        cv = {k: report[k] for k in ("cv_all", "cv_vfdb", "cv_mitdb")}
        write_card(Path("models/vt_features.json"), params, cv, latency_ms)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rhythm_vt_tune.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "cv_records"}, indent=1))
    return 0


def _vt_leak_gate(data_dir: Path, out: Path) -> int:
    """Run :func:`tools.vf.vt.leak_gate_study`: print its table, write it to ``OUT``.

    Return 0 when the study chooses the shipped gate (:data:`tools.vf.vt.MAX_VF_LEAK`), 1
    when it chooses another.
    """
    from tools.vf.vt import MAX_VF_LEAK, leak_gate_study

    gate, rows = leak_gate_study(data_dir, VtParams())
    print(
        "| max_vf_leak | VT <= 10 s (CV) | VF <= 10 s (CV) | false (CV) | noise bw / em / ma"
        " | total cost | nstdb false | svdb false |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        cv = r["cv"]
        noise = r["noise_false"]
        assert isinstance(cv, dict)  # noqa: S101
        assert isinstance(noise, dict)  # noqa: S101
        print(
            f"| {r['max_vf_leak'] or 'none'} | {cv['VT']['within_10_s']}/{cv['VT']['episodes']}"
            f" | {cv['VF']['within_10_s']}/{cv['VF']['episodes']} | {cv['false']['n']}"
            f" | {' / '.join(str(v) for v in noise.values())} | {r['total_cost']}"
            f" | {r['nstdb_false']} | {r['svdb_false']} |"
        )
    print(f"chosen: {gate} (shipped MAX_VF_LEAK: {MAX_VF_LEAK})")
    out.mkdir(parents=True, exist_ok=True)
    (out / "rhythm_vt_leak.json").write_text(
        json.dumps({"chosen": gate, "rows": rows}, indent=1) + "\n", encoding="utf-8"
    )
    return 0 if gate == MAX_VF_LEAK else 1


def _vt_agent(data_dir: Path, out: Path) -> int:
    from agent.config import AgentConfig
    from agent.inference.bundle import load_models
    from tools.vf.agent_eval import evaluate_ventricular, ventricular_markdown

    rep = evaluate_ventricular(data_dir, load_models(AgentConfig().inference), work=out / "work")
    out.mkdir(parents=True, exist_ok=True)
    (out / "rhythm_ventricular.json").write_text(json.dumps(rep, indent=1, default=float) + "\n")
    text = ventricular_markdown(rep)
    (out / "rhythm_ventricular.md").write_text(text)
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    ap = argparse.ArgumentParser(prog="python -m tools.vf", description=__doc__)
    ap.add_argument("command", choices=("tune", "evaluate", "vt-tune", "vt-agent", "vt-leak-gate"))
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("reports"))
    ap.add_argument("--window-s", type=float, default=VF_PARAMS_TUNED.window_s)
    ap.add_argument("--no-cv", action="store_true", help="skip the cross-validation")
    ap.add_argument(
        "--noise-negatives",
        action="store_true",
        help="vt-tune: add nstdb bw/em/ma to every fold's training as negatives (an experiment,"
        " not what is shipped; nstdb then scored leave-noise-source-out)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not (args.data / "vfdb").is_dir():
        print(f"vfdb not found under {args.data}", file=sys.stderr)
        return 2
    if args.command == "vt-agent":
        return _vt_agent(args.data, args.out)
    if args.command == "vt-leak-gate":
        return _vt_leak_gate(args.data, args.out)
    if args.command == "vt-tune":
        return _vt_tune(args.data, args.out, no_cv=args.no_cv, noise_negatives=args.noise_negatives)
    if args.command == "tune":
        params = _tune(args.data, args.out, args.window_s)
        print(_literal(params))
        return 0
    report = evaluate_vf(args.data, cross_validated=not args.no_cv, progress=logger.info)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vf_report.md").write_text(report.to_markdown())
    (args.out / "vf_report.json").write_text(report.to_json())
    print(report.to_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
