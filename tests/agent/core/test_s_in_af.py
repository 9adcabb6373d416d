"""While AF is called, a beat the classifier labels S is reported N (``inference.s_in_af_as_n``).

mitdb 210, 0-240 s: atrial fibrillation from about 13 s, with ventricular ectopy. Before
this rule the agent labelled about 200 of the whole record's conducted AF beats S (24 in
these 240 s; its RR features are what AF does to every beat); the reference labels them N.
Run twice through ``analyze_record``, once with the rule and once without: the same R-peaks
and the same alarms; every beat that differs is an S turned N in an AF episode the agent called.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import wfdb

from agent.analyze import RecordResult, analyze_record
from agent.config import AgentConfig
from agent.inference.bundle import load_models
from agent.messages import AamiClass
from tests.records import cut_record

END_S = 240


@pytest.fixture(scope="module")
def af_strip(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mitdb 210, 0-240 s, channel 0, as a WFDB record in a temporary folder."""
    return cut_record(data_dir, "mitdb", "210", 0, END_S, tmp_path_factory.mktemp("mit210"))


def _run(record: Path, s_in_af_as_n: bool) -> RecordResult:
    cfg = AgentConfig.model_validate(
        {
            "dsp": {"powerline_hz": 60},
            "inference": {"s_in_af_as_n": s_in_af_as_n, "s_premature": None},
        }
    )
    return asyncio.run(analyze_record(record, cfg, load_models(cfg.inference)))


def test_s_beats_in_af_are_reported_n(af_strip: Path, data_dir: Path) -> None:
    on = _run(af_strip, True)
    off = _run(af_strip, False)

    assert [b.r_peak_idx for b in on.beats] == [b.r_peak_idx for b in off.beats]

    def timing(r: RecordResult) -> list[tuple[object, ...]]:
        return [(e.condition, e.lifecycle, e.onset_s, e.raised_s) for e in r.events]

    alarms = [timing(on), timing(off)]
    assert alarms[0] == alarms[1]

    af = on.episodes["AFIB"]
    assert af
    assert af[0][0] < 30.0  # the agent calls this record's AF
    changed = [(a, b) for a, b in zip(on.beats, off.beats, strict=True) if a != b]
    assert len(changed) >= 20
    for now, before in changed:
        assert before.aami_class is AamiClass.S
        assert now.aami_class is AamiClass.N
        assert now.confidence == before.confidence
        assert any(a <= now.r_peak_time_s <= b for a, b in af)

    # The reference agrees: the beats turned N are conducted beats (N) in AF.
    ann = wfdb.rdann(str(data_dir / "mitdb" / "210"), "atr", sampto=END_S * 360)
    ref = np.asarray(ann.sample)
    symbols = np.asarray(ann.symbol)
    ref_n = 0
    for now, _ in changed:
        j = int(np.argmin(np.abs(ref - now.r_peak_idx)))
        ref_n += abs(int(ref[j]) - now.r_peak_idx) <= 54 and symbols[j] == "N"
    assert ref_n >= 0.9 * len(changed)

    # Outside AF the rule changes nothing: S labels before the first AF call are kept.
    assert any(b.aami_class is AamiClass.S for b in off.beats)
