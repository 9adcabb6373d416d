import json
from pathlib import Path

from tools.evaluate.__main__ import main


def test_qrs_report_on_two_records(data_dir: Path, tmp_path: Path) -> None:
    rc = main(
        [
            "qrs",
            "--data",
            str(data_dir),
            "--out",
            str(tmp_path),
            "--sets",
            "mitdb@130",
            "nstdb24",
            "--records",
            "100",
            "118e24",
        ]
    )
    assert rc == 0
    report = json.loads((tmp_path / "qrs.json").read_text(encoding="utf-8"))
    gross = report["gross"]
    assert set(gross) == {"mitdb@130", "nstdb24"}
    assert gross["mitdb@130"]["records"] == 1
    assert gross["mitdb@130"]["tp"] + gross["mitdb@130"]["fn"] == 2273  # beats in 100
    assert gross["mitdb@130"]["se_pct"] > 99.0
    assert gross["nstdb24"]["false_physiological_alarms"] == {}
    md = (tmp_path / "qrs.md").read_text(encoding="utf-8")
    assert "| mitdb@130 | 1 |" in md
    assert "150 ms" in md


def test_missing_data_is_an_error(tmp_path: Path) -> None:
    assert main(["qrs", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
