"""``python -m tools.evaluate qrs [--out DIR] [--data DIR] [--jobs N] [--sets ...]``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if not (args.data / "mitdb" / "100.hea").exists():
        print(f"error: PhysioNet data not found under {args.data}", file=sys.stderr)
        return 2
    run_qrs_evaluation(
        args.data, args.out, sets=args.sets, jobs=args.jobs, only_records=args.records
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
