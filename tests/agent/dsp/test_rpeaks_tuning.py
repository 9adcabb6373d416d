"""RPeakTuning: the detector's constants as one value, so studies never patch the module."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import wfdb

from agent.dsp import rpeaks
from agent.dsp.rpeaks import DEFAULT_TUNING, RPeakTuning, StreamingRPeakDetector


def test_default_tuning_is_the_module_constants() -> None:
    for f in dataclasses.fields(RPeakTuning):
        assert getattr(DEFAULT_TUNING, f.name) == getattr(rpeaks, f.name.upper()), f.name
    assert RPeakTuning() == DEFAULT_TUNING


def _peaks(x: np.ndarray, tuning: RPeakTuning = DEFAULT_TUNING) -> list[int]:
    det = StreamingRPeakDetector(360.0, 60, tuning=tuning)
    steps = [det.push(x), det.flush()]
    return [p.r_peak_idx for s in steps for p in s.r_peaks]


def test_a_changed_tuning_changes_only_that_detector(mitdb: Path) -> None:
    rec = wfdb.rdrecord(str(mitdb / "100"), channels=[0], sampto=360 * 30)
    x = (rec.p_signal[:, 0] * 1000.0).astype(np.float32)
    shipped = _peaks(x)
    assert len(shipped) > 20
    # a QRS floor no beat reaches: nothing is detected, and only by this detector
    deaf = dataclasses.replace(DEFAULT_TUNING, min_qrs_pp_uv=1e9)
    assert _peaks(x, deaf) == []
    assert rpeaks.MIN_QRS_PP_UV == 150.0
    assert _peaks(x) == shipped
