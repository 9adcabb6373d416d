"""``dsp.invert_ecg``: a reversed lead, turned over, is analysed exactly as the upright one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import wfdb

from agent.analyze import RecordResult, analyze_record
from agent.config import AgentConfig, DspConfig
from agent.inference.bundle import ModelBundle, load_models

SECONDS = 300


def write_lead(src: Path, dst: Path, sign: float) -> Path:
    """Write the first ``SECONDS`` of a record's channel 0, times ``sign``, as a WFDB record."""
    rec = wfdb.rdrecord(str(src), channels=[0], sampto=int(360 * SECONDS))
    wfdb.wrsamp(
        dst.name,
        fs=rec.fs,
        units=rec.units,
        sig_name=rec.sig_name,
        p_signal=sign * rec.p_signal,
        fmt=["16"],
        adc_gain=rec.adc_gain,
        baseline=rec.baseline,
        write_dir=str(dst.parent),
    )
    return dst


def run(path: Path, models: ModelBundle, *, invert: bool) -> RecordResult:
    cfg = AgentConfig(dsp=DspConfig(powerline_hz=60, invert_ecg=invert))
    return asyncio.run(analyze_record(path, cfg, models))


def classes(res: RecordResult) -> list[tuple[int, str | None]]:
    return [(b.r_peak_idx, b.aami_class.value if b.aami_class else None) for b in res.beats]


def test_reversed_208_with_invert_ecg_matches_the_upright_lead(mitdb: Path, tmp_path: Path) -> None:
    """mitdb 208 (frequent PVCs, fusion beats): the beat model misreads it upside down."""
    models = load_models(AgentConfig(dsp=DspConfig(powerline_hz=60)).inference)
    upright = run(write_lead(mitdb / "208", tmp_path / "up", 1.0), models, invert=False)
    reversed_ = write_lead(mitdb / "208", tmp_path / "rev", -1.0)
    as_is = run(reversed_, models, invert=False)
    turned = run(reversed_, models, invert=True)

    assert len(upright.beats) > 300
    # the reversed lead is noticed (a warning names the record), the others are not
    assert as_is.lead_reversed
    assert as_is.lead_reversed[0][0] < 60.0
    assert not upright.lead_reversed
    assert not turned.lead_reversed
    assert classes(turned) == classes(upright)
    assert [(e.condition, e.lifecycle, e.onset_s) for e in turned.events] == [
        (e.condition, e.lifecycle, e.onset_s) for e in upright.events
    ]
    # without the setting the same beats are found, but many are labelled differently
    same = np.mean([a == b for a, b in zip(classes(as_is), classes(upright), strict=False)])
    assert same < 0.9
