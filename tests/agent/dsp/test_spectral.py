"""WelchPsd gives SciPy's welch, bit for bit, for the AF waveform path's segment lengths."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from agent.dsp.spectral import WelchPsd


@pytest.mark.parametrize(
    ("n_samples", "fs_hz"),
    [
        (3745, 360.0),  # a 17-beat AF window at 360 Hz: nine 2 s segments
        (10001, 360.0),  # a slow window: more than eight segments (SciPy's pairwise mean)
        (4321, 300.0),  # CinC 2017
        (2600, 130.0),  # a wearable's rate
        (1000, 128.0),  # svdb
        (599, 300.0),  # shorter than 2 s: one segment of the whole window
        (721, 360.0),  # one sample over a segment
    ],
)
def test_equals_scipy_welch(n_samples: int, fs_hz: float) -> None:
    rng = np.random.default_rng(n_samples)
    x = np.cumsum(rng.normal(0.0, 20.0, n_samples)) + 150.0
    nperseg = min(n_samples, round(2 * fs_hz))
    f_ref, p_ref = signal.welch(x, fs=fs_hz, nperseg=nperseg)
    psd = WelchPsd(nperseg, fs_hz)
    np.testing.assert_array_equal(psd.freqs_hz, f_ref)
    np.testing.assert_array_equal(psd(x), p_ref)


def test_odd_segment_length_keeps_the_last_bin_doubled() -> None:
    x = np.random.default_rng(1).normal(size=999)
    np.testing.assert_array_equal(WelchPsd(333, 100.0)(x), signal.welch(x, 100.0, nperseg=333)[1])


def test_a_sine_puts_its_power_at_its_frequency() -> None:
    fs = 250.0
    t = np.arange(5000) / fs
    pxx = WelchPsd(500, fs)(3.0 * np.sin(2 * np.pi * 6.0 * t))
    freqs = WelchPsd(500, fs).freqs_hz
    assert freqs[np.argmax(pxx)] == pytest.approx(6.0)
    # Parseval: the density integrates to the sine's power, A^2 / 2
    assert float(pxx.sum() * (freqs[1] - freqs[0])) == pytest.approx(4.5, rel=0.02)


def test_short_input_and_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 100 samples"):
        WelchPsd(100, 50.0)(np.zeros(99))
    with pytest.raises(ValueError, match="nperseg >= 2"):
        WelchPsd(1, 50.0)
    with pytest.raises(ValueError, match="fs_hz > 0"):
        WelchPsd(64, 0.0)
