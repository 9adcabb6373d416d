"""``python -m tools.evaluate beats`` on one DS2 record: the agent's own labelled beats, scored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import wfdb

from tools.beats.dataset import AAMI_CLASS_OF_SYMBOL
from tools.evaluate.__main__ import main


def test_evaluate_beats_one_record(data_dir: Path, tmp_path: Path) -> None:
    rc = main(
        ["beats", "--data", str(data_dir), "--out", str(tmp_path), "--records", "233", "--no-130"]
    )
    assert rc == 0
    report = json.loads((tmp_path / "beats.json").read_text(encoding="utf-8"))
    gross = report["agent_int8"]["record rate (360 Hz)"]["gross"]
    # 233 is rich in PVCs (831 V beats); the int8 CNN on the agent's own R-peaks finds most
    # of them (measured 96.6 / 89.8); its N beats are often called F (see reports/beats.md)
    assert gross["classes"]["V"]["se_pct"] > 90.0
    assert gross["classes"]["V"]["ppv_pct"] > 85.0
    assert gross["accuracy_pct"] > 60.0
    assert report["latency"]["median_us"] > 0.0  # measured (the 1 ms budget is in the card)
    text = (tmp_path / "beats.md").read_text(encoding="utf-8")
    assert "| V Se / +P % |" in text
    # the shipped card's patient-wise svdb cross-validation is carried into the report
    assert "## svdb, patient-wise cross-validated" in text
    svdb = report["card_patient_cv"]["agent_int8"]["svdb"]
    assert svdb["n_reference"] > 95_000


def test_beats_csv_scores_an_output_folder(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # beats.csv written from 233's own annotations, every 10th V relabelled N: V Se drops by
    # what was relabelled, V +P stays 100, and the relabelled beats are N's false positives.
    ann = wfdb.rdann(str(data_dir / "mitdb" / "233"), "atr")
    rows = ["sample,time_s,aami_class,confidence,template_corr"]
    n_v = relabelled = 0
    for s, sym in zip(ann.sample, ann.symbol, strict=True):
        cls = AAMI_CLASS_OF_SYMBOL.get(sym)
        if cls is None:
            continue
        if cls == "V":
            n_v += 1
            if n_v % 10 == 0:
                cls, relabelled = "N", relabelled + 1
        rows.append(f"{s},{s / 360.0:.3f},{cls},1.0,")
    (tmp_path / "out" / "233").mkdir(parents=True)
    (tmp_path / "out" / "233" / "beats.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert main(["beats-csv", str(data_dir / "mitdb"), str(tmp_path / "out")]) == 0
    table = capsys.readouterr().out
    v_row = next(line for line in table.splitlines() if line.startswith("| V |"))
    assert v_row == f"| V | {n_v} | {100 * (n_v - relabelled) / n_v:.2f} | 100.00 |"
    (tmp_path / "empty").mkdir()
    assert main(["beats-csv", str(data_dir / "mitdb"), str(tmp_path / "empty")]) == 2
