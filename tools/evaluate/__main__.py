"""``python -m tools.evaluate qrs|beats|beats-csv|rhythm|alarms [--data DIR] [--out DIR] ...``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.evaluate.alarms import ACK_AFTER_S
from tools.evaluate.alarms import DEFAULT_SETS as ALARM_DEFAULT_SETS
from tools.evaluate.alarms import SETS as ALARM_SETS
from tools.evaluate.qrs import DEFAULT_SETS, SETS, run_qrs_evaluation


def main(argv: Sequence[str] | None = None) -> int:
    """Run an evaluation; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tools.evaluate")
    sub = parser.add_subparsers(dest="what", required=True)
    qrs = sub.add_parser("qrs", help="R-peak detection, AAMI EC57 style (Se, +P, DER, timing)")
    qrs.add_argument("--data", type=Path, default=Path("../shared/data"), help="PhysioNet data")
    qrs.add_argument("--out", type=Path, default=Path("reports"), help="output folder")
    qrs.add_argument("--jobs", type=int, default=1, help="records analysed in parallel")
    qrs.add_argument("--sets", nargs="+", choices=sorted(SETS), default=list(DEFAULT_SETS))
    qrs.add_argument("--records", nargs="+", help="restrict to these record names")
    beats = sub.add_parser("beats", help="AAMI beat classes on MIT-BIH DS2 (Se, +P, accuracy)")
    beats.add_argument("--data", type=Path, default=Path("../shared/data"), help="PhysioNet data")
    beats.add_argument("--out", type=Path, default=Path("reports"), help="output folder")
    beats.add_argument("--records", nargs="+", help="restrict to these DS2 record names")
    beats.add_argument(
        "--no-130", action="store_true", help="skip the run resampled to 130 Hz (Polar H10)"
    )
    beats_csv = sub.add_parser(
        "beats-csv", help="score the beats.csv of a bedside analyze output folder (AAMI classes)"
    )
    beats_csv.add_argument("db", type=Path, help="database folder (reference .atr files)")
    beats_csv.add_argument("folder", type=Path, help="bedside analyze --out folder")
    rhythm = sub.add_parser(
        "rhythm", help="AF (afdb cross-validated, mitdb) and VF/VFL (vfdb, mitdb, nstdb)"
    )
    rhythm.add_argument("--data", type=Path, default=Path("../shared/data"), help="PhysioNet data")
    rhythm.add_argument("--out", type=Path, default=Path("reports"), help="output folder")
    rhythm.add_argument(
        "--rr-source",
        choices=("agent", "reference"),
        default="agent",
        help="mitdb beat times for AF: the agent's own R-peaks (default) or the annotations",
    )
    rhythm.add_argument(
        "--no-vf-cv", action="store_true", help="skip the VF cross-validation (the slow part)"
    )
    rhythm.add_argument(
        "--only",
        choices=("agent-afib", "agent-afdb"),
        help="re-run one section and replace it in OUT/rhythm.md (agent-afib: the agent's afib"
        " alarms on mitdb, about 7 min; agent-afdb: the agent on afdb's RR path with every"
        " record out of fold, about 6 min)",
    )
    alarms = sub.add_parser(
        "alarms", help="every raised alarm judged true/false (mitdb DS1/DS2/paced, svdb, nstdb)"
    )
    alarms.add_argument("--data", type=Path, default=Path("../shared/data"), help="PhysioNet data")
    alarms.add_argument("--out", type=Path, default=Path("reports"), help="report folder")
    alarms.add_argument(
        "--work", type=Path, default=Path("out/alarms"), help="bedside analyze output folder"
    )
    alarms.add_argument("--jobs", type=int, default=1, help="records analysed in parallel")
    alarms.add_argument(
        "--sets",
        nargs="+",
        choices=sorted(ALARM_SETS),
        default=list(ALARM_DEFAULT_SETS),
        help="default: every set but svdb-held-out (svdb's odd-numbered records, the independent"
        " test half, present only in a full download)",
    )
    alarms.add_argument("--records", nargs="+", help="restrict to these record names")
    alarms.add_argument(
        "--ack-after", type=float, default=ACK_AFTER_S, help="acknowledge latched alarms, s"
    )
    alarms.add_argument(
        "--reuse", action="store_true", help="score the alarms.jsonl already under --work"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.what == "beats-csv":
        from tools.evaluate.beats import score_output_folder

        try:
            print(score_output_folder(args.db, args.folder).to_markdown())
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    if not (args.data / "mitdb" / "100.hea").exists():
        print(f"error: PhysioNet data not found under {args.data}", file=sys.stderr)
        return 2
    if args.what == "alarms":
        from tools.evaluate.alarms import run_alarm_evaluation

        try:
            run_alarm_evaluation(
                args.data,
                args.out,
                args.work,
                sets=args.sets,
                ack_after_s=args.ack_after,
                jobs=args.jobs,
                reuse=args.reuse,
                only_records=args.records,
            )
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print((args.out / "alarms.md").read_text(encoding="utf-8"))
        return 0
    if args.what == "rhythm":
        from tools.evaluate.rhythm import (
            refresh_agent_afdb,
            refresh_agent_afib,
            run_rhythm_evaluation,
        )

        if args.only == "agent-afib":
            print(refresh_agent_afib(args.data, args.out))
            return 0
        if args.only == "agent-afdb":
            print(refresh_agent_afdb(args.data, args.out))
            return 0
        text = run_rhythm_evaluation(
            args.data, args.out, rr_source=args.rr_source, vf_cross_validated=not args.no_vf_cv
        )
        print(text)
        return 0
    if args.what == "beats":
        from tools.beats.dataset import DS2
        from tools.evaluate.beats import run_beats_evaluation

        run_beats_evaluation(
            args.data,
            args.out,
            records=args.records or DS2,
            rates=(None,) if args.no_130 else (None, 130.0),
        )
        print((args.out / "beats.md").read_text(encoding="utf-8"))
        return 0
    run_qrs_evaluation(
        args.data, args.out, sets=args.sets, jobs=args.jobs, only_records=args.records
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
