"""``python -m tools.af agent-out``: afib alarms of an output folder judged against mitdb."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.af.__main__ import main
from tools.af.agent_out import reference_af


def _write(folder: Path, alarms: list[tuple[float, float]], end_s: float) -> None:
    folder.mkdir(parents=True)
    (folder / "rhythm.csv").write_text(f"start_s,end_s,rhythm\n0.000,{end_s:.3f},N\n")
    lines = []
    for k, (raised, cleared) in enumerate(alarms):
        base = {"alarm_id": f"a{k}", "condition": "afib", "onset_s": raised}
        lines.append(json.dumps({**base, "lifecycle": "raised", "raised_s": raised}))
        lines.append(json.dumps({**base, "lifecycle": "cleared", "cleared_s": cleared}))
    (folder / "alarms.jsonl").write_text("\n".join(lines) + "\n")


def test_afib_alarms_are_judged_against_the_annotated_af(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    af = reference_af(data_dir / "mitdb" / "201")
    long_eps = [(a, b) for a, b in af if b - a >= 60.0]
    assert long_eps  # 201 has AF episodes of minutes
    a, b = long_eps[0]
    # 201: one alarm 12 s into its first long AF episode (true, delay 12 s), one between its
    # first two episodes, more than 5 s from both (false); 100 (no AF): one alarm (false)
    gap = (af[0][1] + 20.0, af[1][0] - 20.0)
    assert gap[1] - gap[0] > 20.0
    _write(tmp_path / "out" / "201", [(a + 12.0, b), gap], 1805.556)
    _write(tmp_path / "out" / "100", [(600.0, 700.0)], 1805.556)
    argv = ["agent-out", "--data", str(data_dir), "--db", "mitdb", str(tmp_path / "out")]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["afib_alarms"] == 3
    assert report["false_alarms_non_af_records"] == 1
    assert report["false_alarms_af_records"] == 1
    assert report["false_per_hour_non_af"] == pytest.approx(1 / (1805.556 / 3600), abs=1e-3)
    assert report["episodes_min_60s"] == len(long_eps)
    assert report["alarmed_within_30s"] >= 1
    assert report["false_by_record"] == {"100": 1, "201": 1}
    (tmp_path / "empty").mkdir()
    assert main(["agent-out", "--data", str(data_dir), str(tmp_path / "empty")]) == 2
