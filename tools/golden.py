"""Equivalence harness: prove that a change left ``bedside analyze``'s outputs as they were.

``record`` runs ``bedside analyze`` (a real subprocess, the command a researcher types) over a
set of records and stores, per record, the SHA-256 of each output file after masking what
legitimately differs between two runs: alarm ids (UUID4) and wall-clock stamps (``ts_utc``,
``onset_utc``). The digests go to a small committed manifest; the masked files themselves go
to a local folder (``out/golden/`` by default, not committed) so that a later ``check`` can
show the first line that changed.

``check`` re-runs the same records and prints a table: record, identical yes/no, and which
files changed (with the first differing line when the stored copy is there). It exits 1 when
any record differs, 2 when a record could not be analysed or the manifest lacks it.

Sets (``../shared/data`` by default, ``--data`` or ``BEDSIDE_DATA_DIR`` to change):

=========  =====================================================================
``mitdb``  the 48 MIT-BIH Arrhythmia records, waveform (channel 0, 360 Hz)
``nstdb``  the 12 noise-stress records (118e*, 119e*), waveform
``vfdb``   the vfdb records present (11), waveform (250 Hz)
``afdb``   the afdb records, RR only from their ``.qrs`` beat annotations
=========  =====================================================================

Usage::

    python -m tools.golden record [--sets mitdb,nstdb,vfdb,afdb] [--jobs 2]
    python -m tools.golden check  [--sets ...] [--records mitdb/100,vfdb/418]
    python -m tools.golden check  --sets mitdb,nstdb,vfdb --chunk-s 5   # chunk-size independence
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parent.parent
MANIFEST: Final = REPO / "tests" / "golden" / "manifest.json"
"""Committed digests of the masked outputs, ``{"mitdb/100": {"beats.csv": sha256, ...}}``."""

DEFAULT_KEEP: Final = REPO / "out" / "golden"
OUTPUT_FILES: Final = ("beats.csv", "rhythm.csv", "alarms.jsonl")
MASKED_KEYS: Final = frozenset({"alarm_id", "ts_utc", "onset_utc"})
"""Fields that differ between two identical runs: a fresh UUID4 and wall-clock times."""

BATCH: Final = 6
"""Records per ``bedside analyze`` process (amortises the interpreter's start-up)."""


@dataclass(frozen=True, slots=True)
class GoldenSet:
    """One family of records and how ``bedside analyze`` is called on it."""

    name: str
    folder: str
    extra_args: tuple[str, ...] = ()

    def records(self, data: Path) -> list[str]:
        """Record names of this set present under ``data`` (empty when absent)."""
        folder = data / self.folder
        if self.name == "afdb":
            return sorted(p.stem for p in folder.glob("*.qrs"))
        listing = folder / "RECORDS"
        if not listing.exists():
            return []
        names = [n.strip() for n in listing.read_text(encoding="utf-8").split()]
        if self.name == "nstdb":  # bw, em, ma are noise only: no ECG
            names = [n for n in names if n[:3] in {"118", "119"}]
        if self.name == "vfdb":  # a full download's other 11 are the independent test set
            from tools.vf.dataset import VFDB_AT_HAND

            names = [n for n in names if n in VFDB_AT_HAND]
        return [n for n in names if (folder / f"{n}.hea").exists()]


SETS: Final = {
    s.name: s
    for s in (
        GoldenSet("mitdb", "mitdb"),
        GoldenSet("nstdb", "nstdb"),
        GoldenSet("vfdb", "vfdb"),
        GoldenSet("afdb", "afdb", ("--rr-annotations", "qrs")),
    )
}


def mask_line(line: str) -> str:
    """Return one ``alarms.jsonl`` line with ids and wall-clock stamps replaced by ``*``."""
    obj = json.loads(line)
    for key in MASKED_KEYS & obj.keys():
        obj[key] = "*"
    return json.dumps(obj, sort_keys=True)


def masked_text(name: str, text: str) -> str:
    """Return an output file's text as it is compared (alarms masked, others verbatim)."""
    if name != "alarms.jsonl":
        return text
    return "".join(mask_line(line) + "\n" for line in text.splitlines() if line.strip())


def _analyze(
    gset: GoldenSet, names: Sequence[str], data: Path, out: Path, chunk_s: float | None = None
) -> str | None:
    """Run ``bedside analyze`` over ``names``; return None, or stderr's tail on failure."""
    cmd = [sys.executable, "-m", "agent", "-q", "analyze", "--jobs", "1"]
    if chunk_s is not None:
        cmd += ["--chunk-s", str(chunk_s)]
    cmd += [str(data / gset.folder / n) for n in names]
    cmd += ["--out", str(out), *gset.extra_args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
    return None


def run_sets(
    sets: Sequence[GoldenSet],
    data: Path,
    keep: Path,
    jobs: int,
    only: set[str] | None,
    chunk_s: float | None = None,
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Analyse every record of ``sets``; store masked copies under ``keep/<set>/<record>/``.

    ``chunk_s`` is given to ``bedside analyze --chunk-s`` (None: its default).

    Returns
    -------
    tuple
        ``{"set/record": {file: sha256}}`` and ``{"set/record": error}`` for failures.
    """
    batches: list[tuple[GoldenSet, list[str]]] = []
    for gset in sets:
        names = [n for n in gset.records(data) if only is None or f"{gset.name}/{n}" in only]
        batches += [(gset, names[i : i + BATCH]) for i in range(0, len(names), BATCH)]
    digests: dict[str, dict[str, str]] = {}
    errors: dict[str, str] = {}
    with (
        tempfile.TemporaryDirectory(prefix="golden-") as tmp,
        concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool,
    ):
        futures = {
            pool.submit(_analyze, gset, names, data, Path(tmp) / gset.name, chunk_s): (
                gset,
                names,
            )
            for gset, names in batches
        }
        for fut in concurrent.futures.as_completed(futures):
            gset, names = futures[fut]
            err = fut.result()
            for name in names:
                key = f"{gset.name}/{name}"
                if err is not None:
                    errors[key] = err
                    continue
                digests[key] = _store(Path(tmp) / gset.name / name, keep / key)
    return dict(sorted(digests.items())), errors


def _store(src: Path, dst: Path) -> dict[str, str]:
    dst.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}
    for fname in OUTPUT_FILES:
        text = masked_text(fname, (src / fname).read_text(encoding="utf-8"))
        (dst / fname).write_text(text, encoding="utf-8")
        out[fname] = hashlib.sha256(text.encode()).hexdigest()
    return out


def _first_difference(reference: Path, current: Path) -> str:
    if not reference.exists():
        return "(no stored copy to compare)"
    ref = reference.read_text(encoding="utf-8").splitlines()
    cur = current.read_text(encoding="utf-8").splitlines()
    for i, (a, b) in enumerate(zip(ref, cur, strict=False)):
        if a != b:
            return f"line {i + 1}: {a[:100]!r} → {b[:100]!r}"
    return f"{len(ref)} lines → {len(cur)} lines"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.golden", description=__doc__)
    parser.add_argument("action", choices=["record", "check"])
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("BEDSIDE_DATA_DIR", REPO.parent / "shared/data")),
    )
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated set names")
    parser.add_argument("--records", help="only these, comma-separated set/record")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--keep", type=Path, default=DEFAULT_KEEP, help="masked copies go here")
    parser.add_argument(
        "--chunk-s",
        type=float,
        help="run `bedside analyze --chunk-s S` (the outputs must not depend on it)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 identical, 1 changed, 2 could not check)."""
    args = _parse(argv)
    sets = [SETS[name] for name in args.sets.split(",")]
    only = set(args.records.split(",")) if args.records else None
    if args.action == "record":
        digests, errors = run_sets(
            sets, args.data, args.keep / "reference", args.jobs, only, args.chunk_s
        )
        for key, err in errors.items():
            print(f"{key}: FAILED {err}", file=sys.stderr)
        manifest = _load(args.manifest)
        manifest.update(digests)
        args.manifest.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(dict(sorted(manifest.items())), indent=1)
        args.manifest.write_text(text + "\n", encoding="utf-8")
        print(f"recorded {len(digests)} record(s) → {args.manifest}")
        return 2 if errors else 0
    manifest = _load(args.manifest)
    digests, errors = run_sets(
        sets, args.data, args.keep / "current", args.jobs, only, args.chunk_s
    )
    status = 0
    print(f"{'record':<16} identical  changed")
    for key in sorted(digests.keys() | errors.keys()):
        if key in errors:
            print(f"{key:<16} {'error':<10} {errors[key]}")
            status = 2
            continue
        want = manifest.get(key)
        if want is None:
            print(f"{key:<16} {'unknown':<10} not in {args.manifest.name}")
            status = 2
            continue
        changed = [f for f in OUTPUT_FILES if want.get(f) != digests[key][f]]
        print(f"{key:<16} {'no' if changed else 'yes':<10} {', '.join(changed)}")
        for fname in changed:
            ref, cur = (args.keep / d / key / fname for d in ("reference", "current"))
            print(f"{'':<16} {fname}: {_first_difference(ref, cur)}")
        status = max(status, 1 if changed else 0)
    same = sum(1 for k in digests if k in manifest and manifest[k] == digests[k])
    print(f"{same} of {len(digests) + len(errors)} record(s) identical")
    return status


def _load(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    data: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    return data


if __name__ == "__main__":
    raise SystemExit(main())
