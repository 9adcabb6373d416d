"""``python -m tools.evaluate alarms``: the matching rules against real reference annotations.

Positions are read off the mitdb annotations: 106 has a reference (VT from 176.7 s (V beats
176.92-177.88 s), couplets from 91.3 s and a (B bigeminy episode 166.3-170.8 s; 208 has
trigeminy from 62.3 s, its longest RR gap (3.13 s) at 1270.8 s and none of 3.7 s or more
(so its old asystole at 1387.4 s was false); 203 is in (AFIB from the start; 119's reference
heart rate never exceeds 83 bpm.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.config import AlarmConfig
from agent.messages import AlarmCode, AlarmCondition, AlarmEvent
from tools.evaluate.alarms import (
    Reference,
    judge,
    load_reference,
    run_alarm_evaluation,
    score_record_alarms,
    summarize,
)

CFG = AlarmConfig()


def _event(
    code: AlarmCode,
    onset_s: float,
    raised_s: float,
    lifecycle: str = "raised",
    kind: AlarmCondition = AlarmCondition.PHYSIOLOGICAL,
) -> AlarmEvent:
    return AlarmEvent.model_validate(
        {
            "device_id": "test",
            "ts_utc": datetime(2026, 1, 1, tzinfo=UTC),
            "alarm_id": uuid.uuid4().hex,
            "condition": code,
            "priority": "medium",
            "kind": kind,
            "lifecycle": lifecycle,
            "onset_s": onset_s,
            "onset_utc": datetime(2026, 1, 1, tzinfo=UTC),
            "raised_s": raised_s,
            "cleared_s": raised_s + 10.0 if lifecycle == "cleared" else None,
            "message": code.value,
        }
    )


@pytest.fixture(scope="module")
def refs(mitdb: Path) -> dict[str, Reference]:
    return {name: load_reference(mitdb / name) for name in ("106", "208", "203", "119")}


@pytest.mark.parametrize(
    ("record", "code", "onset_s", "raised_s", "expected"),
    [
        ("106", AlarmCode.RUN_PVCS, 176.9, 178.3, True),
        ("106", AlarmCode.RUN_PVCS, 300.0, 301.0, False),
        ("106", AlarmCode.VTACH, 176.9, 178.0, True),
        ("106", AlarmCode.VTACH, 91.3, 92.3, False),  # a couplet is not V-tach
        ("106", AlarmCode.PAIR_PVCS, 91.3, 92.3, True),
        ("106", AlarmCode.BIGEMINY, 166.0, 168.5, True),
        ("106", AlarmCode.BIGEMINY, 600.0, 603.0, False),
        ("208", AlarmCode.TRIGEMINY, 63.2, 68.0, True),
        ("208", AlarmCode.PAUSE, 1273.8, 1273.9, True),  # 3.13 s >= 3 - 0.3
        ("208", AlarmCode.ASYSTOLE, 1387.353, 1388.647, False),  # longest gap 3.13 s
        ("203", AlarmCode.AFIB, 10.0, 40.0, True),
        ("203", AlarmCode.VFIB, 10.0, 16.0, False),
        ("119", AlarmCode.AFIB, 10.0, 40.0, False),
        ("119", AlarmCode.HR_HIGH, 500.0, 505.0, False),  # reference HR <= 83 bpm
        ("119", AlarmCode.EXTREME_BRADY, 500.0, 505.0, False),
    ],
)
def test_matching_rules_on_real_annotations(
    refs: dict[str, Reference],
    record: str,
    code: AlarmCode,
    onset_s: float,
    raised_s: float,
    expected: bool,
) -> None:
    assert judge(_event(code, onset_s, raised_s), refs[record], CFG) is expected


def test_scores_count_raised_alarms_only_and_sum_gross(refs: dict[str, Reference]) -> None:
    events = [
        _event(AlarmCode.PAIR_PVCS, 91.3, 92.3),
        _event(AlarmCode.PAIR_PVCS, 91.3, 92.3, lifecycle="cleared"),  # not counted again
        _event(AlarmCode.PAIR_PVCS, 300.0, 301.0),
        _event(AlarmCode.RUN_PVCS, 176.9, 178.3),
        _event(AlarmCode.NEWS2_URGENT, 10.0, 70.0),
        _event(AlarmCode.SIGNAL_POOR, 50.0, 50.0, kind=AlarmCondition.TECHNICAL),
        _event(
            AlarmCode.SIGNAL_POOR, 50.0, 50.0, lifecycle="cleared", kind=AlarmCondition.TECHNICAL
        ),
    ]
    rec = score_record_alarms(events, refs["106"], CFG)
    assert (rec.conditions["pair_pvcs"].true, rec.conditions["pair_pvcs"].false) == (1, 1)
    assert rec.not_judged == {"news2_urgent": 1}
    assert rec.technical == {"signal_poor": 1}
    # 119 has no two V beats in a row: both of its pairs are false
    summary = summarize([rec, score_record_alarms(events[:3], refs["119"], CFG)])
    pair = summary["gross"]["pair_pvcs"]
    assert (pair["true"], pair["false"]) == (1, 3)
    assert pair["ppv_pct"] == 25.0
    assert pair["false_per_hour"] == pytest.approx(3 / summary["hours"], abs=1e-3)
    assert summary["ectopy_total"]["raised"] == 5
    assert summary["technical"]["signal_poor"] == {"raised": 1, "active_s": 10.0}


def test_two_records_end_to_end(data_dir: Path, tmp_path: Path) -> None:
    """``bedside analyze --ack-after 30`` over mitdb 119 and 208, judged and written."""
    report = run_alarm_evaluation(
        data_dir,
        tmp_path / "reports",
        tmp_path / "work",
        sets=["mitdb-ds1"],
        only_records=["119", "208"],
    )
    ds1 = report["sets"]["mitdb-ds1"]
    assert set(ds1["per_record"]) == {"119", "208"}
    assert ds1["hours"] == pytest.approx(2 * 1805.556 / 3600, abs=1e-3)
    bigeminy = ds1["gross"]["bigeminy"]
    assert bigeminy["true"] >= 1
    assert bigeminy["ppv_pct"] == pytest.approx(100 * bigeminy["true"] / bigeminy["raised"], 0.1)
    assert "asystole" not in ds1["per_record"]["208"]["alarms"]
    assert ds1["high_priority_total"]["false"] == 0
    saved = json.loads((tmp_path / "reports" / "alarms.json").read_text(encoding="utf-8"))
    assert saved["sets"]["mitdb-ds1"]["gross"] == ds1["gross"]
    assert "## mitdb-ds1" in (tmp_path / "reports" / "alarms.md").read_text(encoding="utf-8")


def test_out_of_fold_set_labels_with_the_fold_model(data_dir: Path, tmp_path: Path) -> None:
    """``mitdb-ds1-cv`` analyses 118 with the beat model trained without it: same R-peaks as
    the shipped model's run, other labels (118's wide beats read differently); the aggregate
    high-priority rates stay unset while their sets are incomplete."""
    report = run_alarm_evaluation(
        data_dir,
        tmp_path / "reports",
        tmp_path / "work",
        sets=["mitdb-ds1", "mitdb-ds1-cv"],
        only_records=["118"],
    )
    shipped = (tmp_path / "work" / "mitdb-ds1" / "118" / "beats.csv").read_text().splitlines()
    fold = (tmp_path / "work" / "mitdb-ds1-cv" / "118" / "beats.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in shipped] == [r.split(",")[0] for r in fold]
    changed = sum(a.split(",")[2] != b.split(",")[2] for a, b in zip(shipped, fold, strict=True))
    assert changed > 10
    assert set(report["sets"]["mitdb-ds1-cv"]["per_record"]) == {"118"}
    assert report["high_priority_false_per_hour"] is None
    assert report["high_priority_false_per_hour_unseen"] is None
