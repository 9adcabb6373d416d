"""AF scoring arithmetic (per beat, episodes, durations, delay, false alarms) and the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agent.rhythm.af import EpisodeParams
from tools.af.dataset import RrRecord, load_rr_record
from tools.af.evaluate import (
    DetectorRun,
    evaluate_af,
    replay_episodes,
    score_record,
    summarize,
)


def _record() -> RrRecord:
    # 1 beat/s for an hour; AF from 1000 s to 2000 s and from 3000 s to 3010 s
    t = np.arange(1.0, 3601.0)
    label = (((t >= 1000) & (t < 2000)) | ((t >= 3000) & (t < 3010))).astype(np.int8)
    return RrRecord(
        name="synthetic",
        rr_ms=np.full(t.size, 1000.0),
        t_s=t,
        label=label,
        afib_only=label == 1,
        duration_s=3600.0,
        af_intervals=[(1000.0, 2000.0), (3000.0, 3010.0)],
    )


def test_score_record_counts_beats_episodes_durations_and_delay() -> None:
    rec = _record()
    # detected: 1020-2010 (confirmed at 1040 s) and a false one 500-600 (confirmed 520 s)
    episodes = [(500.0, 600.0), (1020.0, 2010.0)]
    c = score_record(rec, episodes, [520.0, 1040.0])
    f = summarize(c)
    # AF beats: t in [1000, 2000) → 1000, + 10; detected 1020..1999 → 980
    assert (c.beats_tp, c.beats_fn) == (980, 30)
    # false: 500..599 (100 beats) + 2000..2009 (10 beats)
    assert c.beats_fp == 110
    assert f["beat_se_pct"] == pytest.approx(100 * 980 / 1010, abs=0.01)
    assert f["episode_se_pct"] == 50.0  # the 10 s episode was missed
    assert f["episode_ppv_pct"] == 50.0
    assert f["long_episode_se_pct"] == 100.0
    assert f["duration_se_pct"] == pytest.approx(100 * 980 / 1010, abs=0.01)
    assert f["duration_ppv_pct"] == pytest.approx(100 * 980 / 1090, abs=0.01)
    assert f["long_delay_median_s"] == 40.0
    assert f["long_within_60s_pct"] == 100.0
    assert f["false_alarms_per_hour"] == 1.0


def test_replay_applies_hysteresis_counts_and_resets_on_segments() -> None:
    p = np.array([0.9, 0.9, 0.9, 0.1, 0.9, 0.1, 0.1, 0.9, 0.9, 0.9], dtype=np.float32)
    run = DetectorRun(
        p_af=p,
        centre_start_s=np.arange(10.0),
        t_s=np.arange(10.0) + 16.0,
        segment=np.array([0] * 8 + [1] * 2),
    )
    eps, conf = replay_episodes(run, EpisodeParams(p_on=0.5, n_on=2, p_off=0.5, n_off=2), 99.0)
    # on at window 1 (run began at 0), off after windows 5-6 (began at 5); the run starting
    # at 7 is cut by the segment change (a gap) at 8, so AF restarts at 8, confirmed at 9
    assert eps == [(0.0, 5.0), (8.0, 99.0)]
    assert conf == [17.0, 25.0]


def test_episode_params_are_validated() -> None:
    with pytest.raises(ValueError, match="p_off <= p_on"):
        EpisodeParams(p_on=0.4, p_off=0.6)
    with pytest.raises(ValueError, match="counts >= 1"):
        EpisodeParams(n_on=0)
    with pytest.raises(ValueError, match="counts >= 1"):
        EpisodeParams(n_on_reentry=0)
    with pytest.raises(ValueError, match="times >= 0"):
        EpisodeParams(reentry_min_episode_s=-5.0)
    with pytest.raises(ValueError, match="0 < p_hold <= p_on"):
        EpisodeParams(p_on=0.9, p_hold=0.95)


def test_mitdb_rr_labels_from_reference(data_dir: Path) -> None:
    rec = load_rr_record(data_dir / "mitdb" / "201", beats="atr")
    assert rec.duration_s == pytest.approx(1805.56, abs=0.01)
    assert rec.rr_ms.size > 1900
    assert 0.2 < float(np.mean(rec.label == 1)) < 0.5  # 201 has AF, AFL and other rhythms
    assert all(b > a for a, b in rec.af_intervals)


def test_report_on_mitdb_af_records(data_dir: Path) -> None:
    report = evaluate_af(data_dir, sets=("mitdb_af",))
    (score,) = report.sets
    assert score.records == ["201", "202", "203", "210", "217", "219", "221", "222"]
    f = score.figures
    assert f["af_beats"] is not None
    assert isinstance(f["af_beats"], int)
    assert f["af_beats"] > 5000
    md = report.to_markdown()
    assert "| mitdb_af | reference |" in md
    assert json.loads(report.to_json())["sets"][0]["name"] == "mitdb_af"
