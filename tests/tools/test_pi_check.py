"""tools.pi_check compare: what may differ between x86 and arm64, and what may not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tools.pi_check import _compare, compare, main, run_summary

ALARM = {
    "alarm_id": "a1",
    "ts_utc": "2026-11-30T10:00:00Z",
    "onset_utc": "2026-11-30T10:00:00Z",
    "device_id": "bedside-agent",
    "kind": "physiological",
    "condition": "extreme_tachy",
    "lifecycle": "raised",
    "onset_s": 21.5,
    "evidence": {
        "rr_ms": [340.0, 344.0],
        "beats": [{"t_s": 21.1, "aami_class": "N", "confidence": 0.66}],
        "strip": {"fs_hz": 250.0, "samples_uv": [0, 10, 1100, 5]},
    },
}
TECHNICAL = {**ALARM, "kind": "technical", "condition": "sensor_disconnected", "evidence": {}}


def _write(
    root: Path,
    *,
    bed: str,
    alarm_id: str,
    beats: int = 2170,
    technical: bool = False,
    beat_row: str = "370,1.028,N,0.992",
    strip_uv: tuple[int, ...] = (0, 10, 1100, 5),
) -> None:
    rec = root / "analyze" / "100"
    rec.mkdir(parents=True)
    (rec / "beats.csv").write_text(f"sample,time_s,aami_class,confidence\n{beat_row}\n")
    (rec / "rhythm.csv").write_text("start_s,end_s,rhythm\n0.0,1805.6,N\n")
    (rec / "alarms.jsonl").write_text(json.dumps({**ALARM, "alarm_id": alarm_id}) + "\n")
    (root / "run").mkdir()
    status = {"state": "online", "counters": {"beats": beats, "frames_in": 120}}
    alarm = json.loads(json.dumps({**ALARM, "alarm_id": alarm_id}))
    alarm["evidence"]["strip"]["samples_uv"] = list(strip_uv)
    lines = [{"topic": f"bedside/v1/{bed}/alarms", "payload": json.dumps(alarm)}]
    if technical:
        lines.append({"topic": f"bedside/v1/{bed}/alarms", "payload": json.dumps(TECHNICAL)})
    lines += [
        {"topic": f"bedside/v1/{bed}/status", "payload": json.dumps(status)},
        {"topic": f"bedside/v1/{bed}/vitals", "payload": json.dumps({"hr_bpm": 70})},
    ]
    (root / "run" / "mqtt.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_same_up_to_wall_clock_fields_and_technical_alarms(tmp_path: Path) -> None:
    _write(tmp_path / "x86", bed="pi/x86", alarm_id="a1")
    _write(tmp_path / "arm64", bed="pi/arm64", alarm_id="b2", technical=True)
    assert compare(tmp_path / "x86", tmp_path / "arm64") == []
    assert main(["compare", str(tmp_path / "x86"), str(tmp_path / "arm64")]) == 0
    summary = run_summary(tmp_path / "arm64" / "run" / "mqtt.jsonl")
    assert summary["conditions"] == ["raised extreme_tachy"]
    assert summary["technical"] == ["raised sensor_disconnected"]
    assert summary["status"] == {"beats": 2170, "frames_in": 120, "frames_dropped": -1}


def test_confidence_steps_and_strip_within_50_uv_are_tolerated(tmp_path: Path) -> None:
    _write(tmp_path / "x86", bed="pi/x86", alarm_id="a1")
    _write(
        tmp_path / "arm64",
        bed="pi/arm64",
        alarm_id="a1",
        beat_row="370,1.028,N,0.965",  # 7/256 lower, the most measured (mitdb 232)
        strip_uv=(0, 12, 1078, 5),  # 22 µV off at most
    )
    diff = _compare(tmp_path / "x86", tmp_path / "arm64")
    assert diff.problems == []
    assert (diff.close, diff.strip_close, diff.strip_worst_uv) == (1, 2, 22)


def test_a_class_a_far_confidence_a_count_or_a_strip_apart_fails(tmp_path: Path) -> None:
    _write(tmp_path / "x86", bed="pi/x86", alarm_id="a1")
    _write(tmp_path / "arm64", bed="pi/arm64", alarm_id="a1", beats=2169, strip_uv=(0, 10, 1000, 5))
    problems = compare(tmp_path / "x86", tmp_path / "arm64")
    assert any(p.startswith("run status") for p in problems), problems
    assert any("strip samples up to 100 µV apart" in p for p in problems), problems
    assert main(["compare", str(tmp_path / "x86"), str(tmp_path / "arm64")]) == 1
    for row, wanted in (("370,1.028,V,0.992", "beat #0 differs"), ("370,1.028,N,0.9", "0.9")):
        shutil.rmtree(tmp_path / "arm64")
        _write(tmp_path / "arm64", bed="pi/arm64", alarm_id="a1", beat_row=row)
        problems = compare(tmp_path / "x86", tmp_path / "arm64")
        assert any(wanted in p for p in problems), problems


def test_missing_folder_is_one_line_exit_2(tmp_path: Path) -> None:
    _write(tmp_path / "x86", bed="pi/x86", alarm_id="a1")
    shutil.rmtree(tmp_path / "x86" / "run")
    assert main(["compare", str(tmp_path / "x86"), str(tmp_path / "x86")]) == 2
