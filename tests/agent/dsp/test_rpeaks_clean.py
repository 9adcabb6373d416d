"""The detector's cached cleaning is NeuroKit2 ``ecg_clean(method="neurokit")``, exactly."""

from __future__ import annotations

from typing import Literal

import neurokit2 as nk
import numpy as np
import pytest

from agent.dsp.rpeaks import StreamingRPeakDetector


@pytest.mark.parametrize(
    ("fs_hz", "powerline_hz"), [(360.0, 60), (250.0, 50), (130.0, 50), (130.0, 60), (500.0, 50)]
)
def test_cleaning_matches_neurokit(fs_hz: float, powerline_hz: Literal[50, 60]) -> None:
    rng = np.random.default_rng(7)
    n = round(10 * fs_hz)
    t = np.arange(n) / fs_hz
    x = 800 * np.sin(2 * np.pi * 1.2 * t) ** 31 + 300 * np.sin(2 * np.pi * 0.2 * t)
    x = x + 40 * np.sin(2 * np.pi * powerline_hz * t) + rng.normal(0, 20, n) - 5000
    det = StreamingRPeakDetector(fs_hz, powerline_hz)
    ours = det._ecg_clean(x)
    theirs = np.asarray(
        nk.ecg_clean(x, sampling_rate=fs_hz, method="neurokit", powerline=powerline_hz)
    )
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
