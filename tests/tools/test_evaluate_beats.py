"""``python -m tools.evaluate beats`` on one DS2 record: the agent's own labelled beats, scored."""

from __future__ import annotations

import json
from pathlib import Path

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
