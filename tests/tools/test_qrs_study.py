"""tools.qrs_study: --const builds a detector tuning, it never patches agent.dsp.rpeaks."""

from __future__ import annotations

import pytest

from agent.dsp import rpeaks
from agent.dsp.rpeaks import DEFAULT_TUNING
from tools.qrs_study import tuning_from_args


def test_const_items_become_a_tuning() -> None:
    tuning = tuning_from_args(["THRESHOLD_COEF=0.25", "qrs_band_hz=(5.0, 15.0)"])
    assert tuning.threshold_coef == 0.25
    assert tuning.qrs_band_hz == (5.0, 15.0)
    assert tuning.refractory_ms == DEFAULT_TUNING.refractory_ms
    assert DEFAULT_TUNING.threshold_coef == rpeaks.THRESHOLD_COEF == 0.3125  # module untouched
    assert tuning_from_args([]) == DEFAULT_TUNING


@pytest.mark.parametrize("item", ["NO_SUCH=1", "THRESHOLD_COEF", "NK_CLEAN_HIGHPASS_HZ=1.0"])
def test_unknown_or_malformed_const_is_refused(item: str) -> None:
    with pytest.raises(ValueError, match="no tuning constant"):
        tuning_from_args([item])
