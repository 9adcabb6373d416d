"""A V label on the patient's own beat is reported N (``inference.v_dominant_as_n``).

mitdb 118 (right bundle-branch block, a DS1 record), 0-600 s: the cross-patient CNN calls some
of the patient's wide conducted beats V. Run twice through ``analyze_record``, with the test and
without: the same R-peaks; every beat that differs is a V turned N that matches the running
template (>= 0.95) and is not premature (RR >= 80 % of the median RR of the N- or S-labelled
beats among the 8 before it), and the reference calls nearly all of them conducted beats.
"""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path

import numpy as np
import pytest
import wfdb

from agent.analyze import RecordResult, analyze_record
from agent.config import AgentConfig
from agent.inference.bundle import load_models
from agent.messages import AamiClass
from tests.records import cut_record

END_S = 600


@pytest.fixture(scope="module")
def strip(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mitdb 118, 0-600 s, channel 0, as a WFDB record in a temporary folder."""
    return cut_record(data_dir, "mitdb", "118", 0, END_S, tmp_path_factory.mktemp("mit118"))


def _run(record: Path, on: bool) -> RecordResult:
    cfg = AgentConfig.model_validate(
        {"dsp": {"powerline_hz": 60}, "inference": {"v_dominant_as_n": on}}
    )
    return asyncio.run(analyze_record(record, cfg, load_models(cfg.inference)))


def test_v_calls_on_the_patients_own_beat_are_reported_n(strip: Path, data_dir: Path) -> None:
    on, off = _run(strip, True), _run(strip, False)
    assert [b.r_peak_idx for b in on.beats] == [b.r_peak_idx for b in off.beats]
    changed = [i for i, (a, b) in enumerate(zip(on.beats, off.beats, strict=True)) if a != b]
    assert len(changed) >= 10
    for i in changed:
        now, before = on.beats[i], off.beats[i]
        assert (before.aami_class, now.aami_class) == (AamiClass.V, AamiClass.N)
        assert now.confidence == before.confidence
        assert now.template_corr is not None
        assert now.template_corr >= 0.95
        base = [
            b.rr_ms
            for b in off.beats[max(0, i - 8) : i]
            if b.aami_class in (AamiClass.N, AamiClass.S) and b.rr_ms is not None
        ]
        assert len(base) >= 4
        assert now.rr_ms is not None
        assert now.rr_ms >= 0.8 * statistics.median(base)
    assert any(b.aami_class is AamiClass.V for b in on.beats)  # real PVCs keep their label

    ann = wfdb.rdann(str(data_dir / "mitdb" / "118"), "atr", sampto=END_S * 360)
    ref, symbols = np.asarray(ann.sample), np.asarray(ann.symbol)
    conducted = 0
    for i in changed:
        j = int(np.argmin(np.abs(ref - on.beats[i].r_peak_idx)))
        conducted += abs(int(ref[j]) - on.beats[i].r_peak_idx) <= 54 and symbols[j] in "NLRAaJSej"
    assert conducted >= 0.9 * len(changed)
