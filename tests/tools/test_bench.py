"""Smoke test of ``python -m tools.bench``: the building blocks on small inputs.

No timing thresholds here (speed is what the benchmark reports, not what a test asserts): only
that every figure is present, finite and positive, and that the report is valid JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures_mqtt import find_mosquitto
from tools import bench


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_percentile_summary() -> None:
    assert bench.percentile_summary([1.0, 2.0, 3.0]) == {
        "n": 3,
        "p50_ms": 2.0,
        "p99_ms": 2.98,
        "max_ms": 3.0,
    }
    empty = bench.percentile_summary([])
    assert empty["n"] == 0
    assert math.isnan(empty["p99_ms"])


@pytest.mark.slow
def test_offline_one_record_at_130_hz(data_dir: Path) -> None:
    r = bench.bench_offline(data_dir, "100", 130.0, bench.default_cpu())
    assert r["record"] == "100"
    assert r["fs_hz"] == 130.0
    assert r["source_fs_hz"] == 360.0
    assert r["duration_s"] > 1800
    assert r["beats"] > 2000
    for key in ("wall_s", "cpu_s", "max_rss_mb", "x_realtime_cpu", "x_realtime_wall"):
        assert _positive(r["cli"][key]), key
    assert _positive(r["x_realtime_analyze"])
    for stage in bench.STAGES:
        assert _positive(r["stages_s"][stage]), stage
    assert abs(sum(r["stages_pct"].values()) - 100.0) < 1.0
    assert r["stage_calls"]["rpeaks"] > 55  # one per 30 s chunk over 30 min
    # one classification per beat with a waveform around it
    assert r["beats"] - 10 <= r["stage_calls"]["beat_classifier"] <= r["beats"]


def test_comparison_lists_every_headline_figure() -> None:
    def report(x: float, ref: str) -> dict[str, object]:
        return {
            "meta": {"git": ref},
            "offline": [
                {
                    "record": "100",
                    "fs_hz": 360.0,
                    "cli": {"x_realtime_cpu": x, "wall_s": 9.0, "max_rss_mb": 180.0},
                    "x_realtime_analyze": 2 * x,
                }
            ],
            "live": [{"fs_hz": 130.0, "cpu_pct_one_core": 1.5, "rss_mb": 150.0}],
        }

    text = bench.format_comparison(report(100.0, "old"), report(150.0, "new"))
    assert "Before (old) and after (new)" in text
    row = next(ln for ln in text.splitlines() if "100@360Hz x real time (CPU" in ln)
    assert row.split()[-2:] == ["100.0", "150.0"]
    assert sum("live 130 Hz" in ln for ln in text.splitlines()) == 2


def test_options_for_the_baseline_drop_only_baseline_and_json() -> None:
    argv = ["--quick", "--baseline", "HEAD~1", "--json=x.json", "--only", "offline"]
    assert bench._without_options(argv, {"--baseline": 1, "--json": 1}) == [
        "--quick",
        "--only",
        "offline",
    ]


def test_the_baseline_gets_the_data_folder_as_an_absolute_path(tmp_path: Path) -> None:
    # the baseline runs in a temporary worktree: a relative --data would point nowhere there
    argv = ["--quick", "--data", "../shared/data", "--baseline", "HEAD~1", "--only", "offline"]
    got = bench.baseline_argv(argv, Path("../shared/data"))
    assert got[:3] == ["--quick", "--only", "offline"]
    assert got[3] == "--data"
    assert Path(got[4]).is_absolute()
    assert Path(got[4]) == Path("../shared/data").resolve()


@pytest.mark.slow
def test_quick_live_and_latency_report(data_dir: Path, tmp_path: Path) -> None:
    if find_mosquitto() is None:
        pytest.skip("mosquitto not found in PATH or /usr/sbin (apt-get install mosquitto)")
    out = tmp_path / "bench.json"
    rc = bench.main(
        [
            "--quick",
            "--data",
            str(data_dir),
            "--only",
            "live",
            "latency",
            "--live-s",
            "6",
            "--warmup-s",
            "3",
            "--speed",
            "40",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert set(report) == {"meta", "live", "latency", "simulate", "targets"}
    assert _positive(report["simulate"]["cpu_s_per_min_175bpm"])
    (live,) = report["live"]
    assert live["fs_hz"] == 130.0
    for key in ("measured_s", "cpu_pct_one_core", "rss_mb", "hwm_mb"):
        assert _positive(live[key]), key
    lat = report["latency"]
    assert lat["record"] == "232"
    assert lat["n"] >= 1  # the quick slice holds an asystole and pauses
    assert lat["unreceived"] == 0
    for key in ("p50_ms", "p99_ms", "max_ms"):
        assert _positive(lat[key]), key
        assert _positive(lat["handover"][key]), key
        assert _positive(lat["mqtt_hop"][key]), key
    assert lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    names = {t["name"] for t in report["targets"]}
    assert "alarm publish p99 ms" in names
    assert "live 130Hz CPU % of one core" in names
    assert {t["status"] for t in report["targets"]} <= {"PASS", "MISS"}
    assert "Targets" in bench.format_report(report)


def test_missing_data_is_an_error(tmp_path: Path) -> None:
    assert bench.main(["--quick", "--data", str(tmp_path)]) == 2


def test_live_agent_imports_no_offline_only_module() -> None:
    """The live agent's imports pull in none of pandas, wfdb, matplotlib, NeuroKit2, ..."""
    got = bench.bench_imports(bench.default_cpu())
    assert got["heavy_modules"] == []
    assert got["import_cpu_s"] > 0.0
    assert 20.0 < got["hwm_mb"] < 1000.0


def test_analysis_cpu_is_read_from_the_final_line() -> None:
    out = "progress...\nanalyzed 48 record(s), 1444.5 min in 95.3 s CPU (909x real time) → x\n"
    assert bench._analysis_cpu_s(out) == 95.3
    with pytest.raises(RuntimeError, match="no final line"):
        bench._analysis_cpu_s("Traceback ...\n")


@pytest.mark.slow
def test_live_pairs_run_both_checkouts_at_once(data_dir: Path, tmp_path: Path) -> None:
    """``--only live-pairs --baseline HEAD``: one pair, HEAD's agent from a worktree first."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto not found in PATH or /usr/sbin (apt-get install mosquitto)")
    out = tmp_path / "pairs.json"
    argv = ["--data", str(data_dir), "--only", "live-pairs", "--baseline", "HEAD"]
    argv += ["--pairs", "1", "--live-s", "6", "--warmup-s", "3", "--json", str(out)]
    assert bench.main(argv) == 0
    report = json.loads(out.read_text(encoding="utf-8"))["live_pairs"]
    (pair,) = report["pairs"]
    assert pair["first"] == "baseline"
    assert _positive(pair["baseline_pct"])
    assert _positive(pair["this_pct"])
    assert report["baseline_mean_pct"] == pair["baseline_pct"]
    assert report["lower_in"] == int(pair["this_pct"] < pair["baseline_pct"])
    assert "lower in" in bench.format_live_pairs(report)


def test_live_pairs_need_a_baseline_and_run_alone(data_dir: Path) -> None:
    assert bench.main(["--data", str(data_dir), "--only", "live-pairs"]) == 2
    argv = ["--data", str(data_dir), "--only", "live-pairs", "live", "--baseline", "HEAD"]
    assert bench.main(argv) == 2
