"""`bedside analyze` on RR-only input: afdb beat annotations and a CSV of RR intervals."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import wfdb


def _bedside(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_analyze_afdb_qrs_as_a_strap_would_send_it(data_dir: Path, tmp_path: Path) -> None:
    record = data_dir / "afdb" / "04015"
    proc = _bedside("analyze", str(record), "--rr-annotations", "qrs", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "04015"
    beats = list(csv.DictReader((out / "beats.csv").read_text(encoding="utf-8").splitlines()))
    ann = wfdb.rdann(str(record), "qrs")
    assert len(beats) == len(ann.sample)
    # sample numbers are the annotation's own (250 Hz), exactly
    assert [int(b["sample"]) for b in beats[:50]] == [int(s) for s in ann.sample[:50]]
    rhythm = list(csv.DictReader((out / "rhythm.csv").read_text(encoding="utf-8").splitlines()))
    af = [(float(r["start_s"]), float(r["end_s"])) for r in rhythm if r["rhythm"] == "AFIB"]
    # the reference AF episode 533-667 s is found
    assert any(start <= 560.0 and end >= 640.0 for start, end in af), af
    assert '"condition":"afib"' in (out / "alarms.jsonl").read_text(encoding="utf-8")


def test_analyze_rr_csv(tmp_path: Path) -> None:
    rr = tmp_path / "strap.csv"
    rows = ["rr_ms"] + ["800"] * 60 + ["3600"] + ["800"] * 20
    rr.write_text("\n".join(rows) + "\n", encoding="utf-8")
    proc = _bedside("analyze", str(rr), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out" / "strap"
    assert len((out / "beats.csv").read_text(encoding="utf-8").splitlines()) == 1 + 82
    alarms = (out / "alarms.jsonl").read_text(encoding="utf-8")
    assert '"condition":"pause"' in alarms  # the 3.6 s interval
    assert '"condition":"afib"' not in alarms  # a regular rhythm
