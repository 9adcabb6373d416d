"""The equivalence harness: a few recorded records still give identical outputs.

``python -m tools.golden check`` over all 96 records is the full check (about 15 min on two
cores); CI runs this slice: a record rich in alarms (mitdb 208), one with VF episodes (vfdb
418) and one RR-only AF record (afdb 04015).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import golden

SLICE = "mitdb/208,vfdb/418,afdb/04015"


def test_masking_hides_ids_and_wall_clock_only() -> None:
    line = json.dumps(
        {"alarm_id": "ab12", "ts_utc": "2026-01-01T00:00:00Z", "onset_utc": "x", "onset_s": 1.5}
    )
    masked = json.loads(golden.mask_line(line))
    assert masked == {"alarm_id": "*", "ts_utc": "*", "onset_utc": "*", "onset_s": 1.5}
    assert golden.masked_text("beats.csv", "a,b\n1,2\n") == "a,b\n1,2\n"


def test_a_changed_output_is_reported(tmp_path: Path, data_dir: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps({"vfdb/418": {"beats.csv": "0", "rhythm.csv": "0", "alarms.jsonl": "0"}}),
        encoding="utf-8",
    )
    status = golden.main(
        ["check", "--data", str(data_dir), "--records", "vfdb/418", "--sets", "vfdb",
         "--manifest", str(manifest), "--keep", str(tmp_path / "keep"), "--jobs", "1"]
    )  # fmt: skip
    assert status == 1


@pytest.mark.parametrize("records", [SLICE])
def test_slice_is_identical_to_the_recorded_outputs(
    tmp_path: Path, data_dir: Path, records: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = golden.main(
        ["check", "--data", str(data_dir), "--records", records, "--jobs", "2",
         "--keep", str(tmp_path)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0, out
    assert "3 of 3 record(s) identical" in out


def test_five_second_chunks_give_the_recorded_outputs(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the manifest was recorded with bedside analyze's 30 s chunks; the outputs must not
    # depend on the chunk size (vfdb 418: VT, VF, alarms with evidence and strips)
    status = golden.main(
        ["check", "--data", str(data_dir), "--records", "vfdb/418", "--sets", "vfdb",
         "--chunk-s", "5", "--jobs", "1", "--keep", str(tmp_path)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0, out
    assert "1 of 1 record(s) identical" in out
