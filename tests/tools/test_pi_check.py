"""tools.pi_check compare: identical outputs pass; one beat, alarm or count apart fails."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tools.pi_check import compare, main, run_summary

ALARM = {
    "alarm_id": "a1",
    "ts_utc": "2026-11-30T10:00:00Z",
    "onset_utc": "2026-11-30T10:00:00Z",
    "device_id": "bedside-agent",
    "condition": "extreme_tachy",
    "lifecycle": "raised",
    "onset_s": 21.5,
    "evidence": {"rr_ms": [340.0, 344.0]},
}


def _write(root: Path, *, bed: str, alarm_id: str, beats: int = 2170) -> None:
    rec = root / "analyze" / "100"
    rec.mkdir(parents=True)
    (rec / "beats.csv").write_text("sample,time_s,aami_class,confidence\n370,1.028,N,0.99\n")
    (rec / "rhythm.csv").write_text("start_s,end_s,rhythm\n0.0,1805.6,N\n")
    (rec / "alarms.jsonl").write_text(json.dumps({**ALARM, "alarm_id": alarm_id}) + "\n")
    (root / "run").mkdir()
    status = {"state": "online", "counters": {"beats": beats, "frames_in": 120}}
    lines = [
        {"topic": f"bedside/v1/{bed}/status", "payload": json.dumps(status)},
        {
            "topic": f"bedside/v1/{bed}/alarms",
            "payload": json.dumps({**ALARM, "alarm_id": alarm_id}),
        },
        {"topic": f"bedside/v1/{bed}/vitals", "payload": json.dumps({"hr_bpm": 70})},
    ]
    (root / "run" / "mqtt.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_identical_up_to_wall_clock_fields(tmp_path: Path) -> None:
    _write(tmp_path / "x86", bed="pi/x86", alarm_id="a1")
    _write(tmp_path / "arm64", bed="pi/arm64", alarm_id="b2")
    assert compare(tmp_path / "x86", tmp_path / "arm64") == []
    assert main(["compare", str(tmp_path / "x86"), str(tmp_path / "arm64")]) == 0
    summary = run_summary(tmp_path / "x86" / "run" / "mqtt.jsonl")
    assert summary["conditions"] == ["raised extreme_tachy"]
    assert summary["status"] == {
        "beats": 2170,
        "frames_in": 120,
        "frames_dropped": -1,
        "alarm_events": -1,
    }


def test_one_beat_or_count_apart_fails(tmp_path: Path) -> None:
    _write(tmp_path / "x86", bed="pi/x86", alarm_id="a1")
    _write(tmp_path / "arm64", bed="pi/arm64", alarm_id="a1", beats=2169)
    beats = tmp_path / "arm64" / "analyze" / "100" / "beats.csv"
    beats.write_text(beats.read_text().replace("0.99", "0.98"))
    problems = compare(tmp_path / "x86", tmp_path / "arm64")
    assert any("beats.csv: first difference at line 2" in p for p in problems), problems
    assert any(p.startswith("run status") for p in problems), problems
    assert main(["compare", str(tmp_path / "x86"), str(tmp_path / "arm64")]) == 1


def test_missing_folder_is_one_line_exit_2(tmp_path: Path) -> None:
    _write(tmp_path / "x86", bed="pi/x86", alarm_id="a1")
    shutil.rmtree(tmp_path / "x86" / "run")
    assert main(["compare", str(tmp_path / "x86"), str(tmp_path / "x86")]) == 2
