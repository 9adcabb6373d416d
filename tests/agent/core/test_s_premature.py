"""A beat labelled S that is not premature is reported N (``inference.s_premature``).

An AAMI S beat is a premature supraventricular beat (EC57 Table 1); a beat on time against the
patient's conducted rhythm is not one, whatever its morphology made the classifier say. mitdb
209, 0-600 s (sinus rhythm with atrial premature beats and runs of SVTA; a DS1 record), run twice
through ``analyze_record``, with the test and without: the same R-peaks and the same alarms;
every beat that differs is an S turned N whose RR is at least 0.9 of the median RR of the
N-labelled beats among the 8 before it, and the reference calls at least half of them N.
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
    """mitdb 209, 0-600 s, channel 0, as a WFDB record in a temporary folder."""
    return cut_record(data_dir, "mitdb", "209", 0, END_S, tmp_path_factory.mktemp("mit209"))


def _run(record: Path, s_premature: float | None) -> RecordResult:
    cfg = AgentConfig.model_validate(
        {"dsp": {"powerline_hz": 60}, "inference": {"s_premature": s_premature}}
    )
    return asyncio.run(analyze_record(record, cfg, load_models(cfg.inference)))


def test_s_beats_on_time_are_reported_n(strip: Path, data_dir: Path) -> None:
    on = _run(strip, 0.9)
    off = _run(strip, None)
    assert [b.r_peak_idx for b in on.beats] == [b.r_peak_idx for b in off.beats]
    assert [(e.condition, e.lifecycle, e.onset_s) for e in on.events] == [
        (e.condition, e.lifecycle, e.onset_s) for e in off.events
    ]
    changed = [i for i, (a, b) in enumerate(zip(on.beats, off.beats, strict=True)) if a != b]
    assert len(changed) >= 5
    for i in changed:
        now, before = on.beats[i], off.beats[i]
        assert (before.aami_class, now.aami_class) == (AamiClass.S, AamiClass.N)
        assert now.confidence == before.confidence
        base = [
            b.rr_ms
            for b in off.beats[max(0, i - 8) : i]
            if b.aami_class is AamiClass.N and b.rr_ms is not None
        ]
        assert len(base) >= 4
        assert now.rr_ms is not None
        assert now.rr_ms >= 0.9 * statistics.median(base)
    # premature S beats keep their label
    assert any(b.aami_class is AamiClass.S for b in on.beats)

    ann = wfdb.rdann(str(data_dir / "mitdb" / "209"), "atr", sampto=END_S * 360)
    ref, symbols = np.asarray(ann.sample), np.asarray(ann.symbol)
    ref_n = 0
    for i in changed:
        j = int(np.argmin(np.abs(ref - on.beats[i].r_peak_idx)))
        ref_n += abs(int(ref[j]) - on.beats[i].r_peak_idx) <= 54 and symbols[j] == "N"
    assert ref_n >= 0.5 * len(changed)
