"""The patient's-own-beat test against the on-time template, through the whole agent.

mitdb 208 runs couplet, conducted beat, couplet: more V beats than conducted ones, so the
beat model's own template of every recent beat becomes the PVC's shape. Labelled by the beat
fold model that never saw 208 (as a new patient would be), the conducted beat after each
compensatory pause is also called V, does not match that template, and six beats at about
100 bpm complete a false V-tach (7.1 and 120.1 s, and later at 474 and 539 s). Against the
template of the recent on-time beats (``inference.dominant_template = "on_time"``, the
default) the conducted beat is the patient's own and breaks the run. mitdb 205's VT (fold
model too) is still alarmed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import agent.analyze as analyze
from agent.config import AgentConfig
from agent.inference.bundle import load_models
from agent.messages import AlarmCode, AlarmLifecycle
from tests.records import cut_record
from tools.evaluate.alarms import beat_fold_card


def _vtach_onsets(record: Path, patient: str, dominant: str) -> list[float]:
    """Onsets (s of the cut) of every `vtach` raised, latched alarms acknowledged after 30 s."""
    cfg = AgentConfig.model_validate(
        {
            "dsp": {"powerline_hz": 60},
            "inference": {
                "beat_model": str(beat_fold_card(patient)),
                "dominant_template": dominant,
            },
        }
    )
    result = asyncio.run(
        analyze.analyze_record(record, cfg, load_models(cfg.inference), ack_after_s=30.0)
    )
    return [
        e.onset_s
        for e in result.events
        if e.condition is AlarmCode.VTACH and e.lifecycle is AlarmLifecycle.RAISED
    ]


@pytest.fixture(scope="module")
def couplets(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mitdb 208, 0-130 s: couplets with single conducted beats between them."""
    return cut_record(data_dir, "mitdb", "208", 0, 130, tmp_path_factory.mktemp("mit208"))


@pytest.fixture(scope="module")
def vt_205(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mitdb 205, 1400-1500 s: a VT run from 1460.6 s (reference VT)."""
    return cut_record(data_dir, "mitdb", "205", 1400, 1500, tmp_path_factory.mktemp("mit205"))


def test_couplets_raise_no_vtach_against_the_on_time_template(couplets: Path) -> None:
    """The running template raises V-tach at 7.1 and 120.1 s; the on-time one only at 7.1 s,
    in its first seconds, before it holds four on-time beats (until then the test falls back
    to the running template; the couplets start at 3.8 s)."""
    running = _vtach_onsets(couplets, "208", "running")
    assert running == [pytest.approx(7.1, abs=0.1), pytest.approx(120.1, abs=0.1)]
    assert _vtach_onsets(couplets, "208", "on_time") == [pytest.approx(7.1, abs=0.1)]


def test_a_real_vt_is_still_vtach(vt_205: Path) -> None:
    onsets = _vtach_onsets(vt_205, "205", "on_time")
    assert len(onsets) == 1
    assert onsets[0] == pytest.approx(60.6, abs=1.5)  # 1460.6 s of the record
