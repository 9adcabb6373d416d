"""PolyResampler gives SciPy's resample_poly, bit for bit, for the agent's rate ratios."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from agent.dsp.polyphase import PolyResampler


@pytest.mark.parametrize(
    ("up", "down", "n_in"),
    [
        (25, 72, 2520),  # VF window: 360 Hz -> 125 Hz, 7 s
        (1, 2, 1750),  # VF window: 250 Hz -> 125 Hz
        (16, 45, 461),  # beat segment: 360 Hz -> 128 Hz
        (64, 65, 167),  # beat segment: 130 Hz -> 128 Hz
        (128, 125, 90),  # upsampling
        (50, 100, 300),  # not reduced: SciPy reduces by the gcd too
    ],
)
def test_equals_resample_poly(up: int, down: int, n_in: int) -> None:
    rng = np.random.default_rng(up * 1000 + down)
    x = np.cumsum(rng.normal(0.0, 30.0, n_in))
    resampler = PolyResampler(up, down, n_in)
    y = resampler(x)
    np.testing.assert_array_equal(y, signal.resample_poly(x, up, down))
    assert y.shape == (resampler.n_out,)


def test_identity_ratio_copies() -> None:
    x = np.arange(10.0)
    y = PolyResampler(3, 3, 10)(x)
    np.testing.assert_array_equal(y, x)
    y[0] = 99.0
    assert x[0] == 0.0


def test_wrong_length_and_bad_factors_are_refused() -> None:
    with pytest.raises(ValueError, match="expected 100 samples"):
        PolyResampler(16, 45, 100)(np.zeros(99))
    with pytest.raises(ValueError, match=">= 1"):
        PolyResampler(0, 45, 100)
