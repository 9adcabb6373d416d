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
    outside_h = (2 * 1805.556 - sum(d - c for c, d in af)) / 3600  # 100 has no AF
    assert report["hours_outside_af"] == pytest.approx(outside_h, abs=0.01)
    assert report["false_per_hour_outside_af"] == pytest.approx(2 / outside_h, abs=1e-3)
    assert report["episodes_min_60s"] == len(long_eps)
    assert report["alarmed_within_30s"] >= 1
    assert report["false_by_record"] == {"100": 1, "201": 1}
    (tmp_path / "empty").mkdir()
    assert main(["agent-out", "--data", str(data_dir), str(tmp_path / "empty")]) == 2


def test_af_rows_are_timed_apart_from_the_alarm(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 201's first long AF episode: an AFIB row from 5 s after onset, the alarm 40 s after
    af = reference_af(data_dir / "mitdb" / "201")
    a, b = next((a, b) for a, b in af if b - a >= 60.0)
    folder = tmp_path / "out" / "201"
    _write(folder, [(a + 40.0, b)], 1805.556)
    rows = f"start_s,end_s,rhythm\n0.000,{a + 5:.3f},N\n{a + 5:.3f},{b:.3f},AFIB\n"
    (folder / "rhythm.csv").write_text(rows + f"{b:.3f},1805.556,N\n")
    assert main(["agent-out", "--data", str(data_dir), "--db", "mitdb", str(tmp_path / "out")]) == 0
    report = json.loads(capsys.readouterr().out)
    n_long = report["episodes_min_60s"]
    assert report["af_row_within_30s"] == 1
    assert report["alarmed_within_30s"] == 0
    assert report["alarmed_within_60s"] == 1
    assert n_long >= 1


def test_cinc2017_recordings_are_scored_by_their_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "data" / "cinc2017"
    db.mkdir(parents=True)
    labels = {"A1": "A", "A2": "A", "A3": "A", "N1": "N", "O1": "O", "X1": "~"}
    (db / "REFERENCE.csv").write_text(
        "data_source,class\n" + "".join(f"{n},{lab}\n" for n, lab in labels.items())
    )
    called = {"A1", "A2", "O1"}  # tp 2, fn 1, fp 1: F1 = 4 / (4 + 1 + 1)
    for name in labels:
        rec = tmp_path / "out" / name
        rec.mkdir(parents=True)
        rhythm = "AFIB" if name in called else "N"
        (rec / "rhythm.csv").write_text(f"start_s,end_s,rhythm\n0.000,30.000,{rhythm}\n")
    argv = ["agent-out", "--data", str(tmp_path / "data"), "--db", "cinc2017"]
    assert main([*argv, str(tmp_path / "out")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["recordings"] == 6
    assert (report["tp"], report["fp"], report["fn"]) == (2, 1, 1)
    assert report["f1_af"] == pytest.approx(4 / 6, abs=1e-3)
    assert report["called_af_by_label"] == {"A": "2/3", "N": "0/1", "O": "1/1", "~": "0/1"}


def test_cinc2017_held_out_recordings_are_scored_apart_as_well(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "data" / "cinc2017"
    db.mkdir(parents=True)
    # A00001-A05000: the challenge's recordings the project never trains or tunes on
    labels = {"A00010": "A", "A00020": "N", "A05001": "A", "A06000": "O", "A07000": "A"}
    (db / "REFERENCE.csv").write_text(
        "data_source,class\n" + "".join(f"{n},{lab}\n" for n, lab in labels.items())
    )
    for name in labels:
        rec = tmp_path / "out" / name
        rec.mkdir(parents=True)
        rhythm = "AFIB" if name in {"A00010", "A05001", "A06000"} else "N"
        (rec / "rhythm.csv").write_text(f"start_s,end_s,rhythm\n0.000,30.000,{rhythm}\n")
    argv = ["agent-out", "--data", str(tmp_path / "data"), "--db", "cinc2017"]
    assert main([*argv, str(tmp_path / "out")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["tp"], report["fp"], report["fn"]) == (2, 1, 1)
    at_hand, held_out = report["by_part"]["at_hand"], report["by_part"]["held_out"]
    assert (at_hand["recordings"], at_hand["f1_af"]) == (3, 0.5)  # tp 1, fp 1, fn 1
    assert (held_out["recordings"], held_out["f1_af"]) == (2, 1.0)
    assert held_out["called_af_by_label"] == {"A": "1/1", "N": "0/1"}


def test_agent_cv_runs_each_afdb_record_through_the_fold_model_that_never_saw_it(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not (data_dir / "afdb" / "04015.qrs").is_file():
        pytest.skip(f"afdb not under {data_dir}")
    fold = next(
        c
        for c in sorted(Path("tools/af/folds").glob("af_rr_fold*.json"))
        if "04015" in json.loads(c.read_text())["training"]["test_records"]
    )
    assert "04015" not in json.loads(fold.read_text())["training"]["records"]
    out = tmp_path / "cv"
    argv = ["agent-cv", "--data", str(data_dir), "--out", str(out), "--records", "04015"]
    assert main([*argv, "--jobs", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["models"] == {"04015": fold.stem}
    assert report["records"] == 1
    # 04015 (AF in short paroxysms; af_rr-2.0.0's fold model also called 05091's, af_rr-3.0.0's
    # does not): AF is called, and its alarm names the fold model
    assert report["af_row_s"] > 0.0
    events = [json.loads(x) for x in (out / "04015" / "alarms.jsonl").read_text().splitlines()]
    afib = [e for e in events if e["condition"] == "afib" and e["lifecycle"] == "raised"]
    assert len(afib) == report["afib_alarms"] >= 1
    assert all(list(e["model_versions"]) == [fold.stem] for e in afib)


def test_an_episode_under_way_at_the_start_is_counted_apart(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 201 starts in AF (0-378 s, no onset to see) and has a later one of 190 s (1597-1787 s)
    af = [(a, b) for a, b in reference_af(data_dir / "mitdb" / "201") if b - a >= 60.0]
    (a0, b0), (a1, b1) = af[0], af[-1]
    assert a0 < 5.0 < a1
    folder = tmp_path / "out" / "201"
    _write(folder, [], 1805.556)
    rows = [(0.0, 40.0, "N"), (40.0, b0, "AFIB"), (b0, a1 + 10, "N"), (a1 + 10, b1, "AFIB")]
    (folder / "rhythm.csv").write_text(
        "start_s,end_s,rhythm\n" + "".join(f"{s:.3f},{e:.3f},{r}\n" for s, e, r in rows)
    )
    assert main(["agent-out", "--data", str(data_dir), "--db", "mitdb", str(tmp_path / "out")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["episodes_min_60s"] == len(af)
    assert report["episodes_observed_onset"] == len(af) - 1
    # the row 40 s into the first episode is late either way; the later one is on time
    assert report["af_row_within_30s"] == report["af_row_within_30s_observed_onset"] == 1
