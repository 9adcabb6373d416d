"""The zero-phase filters set up once give SciPy's sosfiltfilt / filtfilt, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from agent.dsp.zerophase import ZeroPhaseBa, ZeroPhaseSos, sosfilt_stateful


@pytest.mark.parametrize("fs_hz", [125.0, 130.0, 360.0])
@pytest.mark.parametrize("n_samples", [61, 460, 3600])
def test_sos_equals_sosfiltfilt(fs_hz: float, n_samples: int) -> None:
    rng = np.random.default_rng(int(fs_hz) + n_samples)
    x = np.cumsum(rng.normal(0.0, 50.0, n_samples))  # wandering, like an ECG baseline
    for sos in (
        signal.butter(5, 0.5, btype="highpass", fs=fs_hz, output="sos"),
        signal.butter(2, (1.0, 30.0), btype="bandpass", fs=fs_hz, output="sos"),
    ):
        filt = ZeroPhaseSos(sos)
        if n_samples <= filt.edge:
            with pytest.raises(ValueError, match="more than"):
                filt(x)
            continue
        np.testing.assert_array_equal(filt(x), signal.sosfiltfilt(sos, x))
        # the input is not modified and a second call gives the same result
        np.testing.assert_array_equal(filt(x), signal.sosfiltfilt(sos, x))


@pytest.mark.parametrize("taps", [2, 6, 7])
def test_ba_equals_filtfilt_pad(taps: int) -> None:
    rng = np.random.default_rng(taps)
    x = rng.normal(0.0, 100.0, 2000)
    b = np.ones(taps)
    a = np.array([float(taps)])
    np.testing.assert_array_equal(ZeroPhaseBa(b, a)(x), signal.filtfilt(b, a, x, method="pad"))


def test_ba_with_poles_equals_filtfilt_pad() -> None:
    # the IIR path (lfilter); the FIR path above is a direct convolution
    rng = np.random.default_rng(3)
    x = np.cumsum(rng.normal(0.0, 30.0, 1500))
    b, a = signal.butter(2, 0.5, btype="highpass", fs=360.0)
    np.testing.assert_array_equal(ZeroPhaseBa(b, a)(x), signal.filtfilt(b, a, x, method="pad"))


@pytest.mark.parametrize("fs_hz", [130.0, 360.0])
def test_stateful_sosfilt_equals_sosfilt_chunk_by_chunk(fs_hz: float) -> None:
    rng = np.random.default_rng(int(fs_hz))
    x = np.cumsum(rng.normal(0.0, 50.0, 2000))
    sos = signal.butter(2, (8.0, 20.0), btype="bandpass", fs=fs_hz, output="sos")
    zi_ref = zi = signal.sosfilt_zi(sos) * x[0]
    for start in range(0, len(x), 33):
        chunk = x[start : start + 33]
        want, zi_ref = signal.sosfilt(sos, chunk, zi=zi_ref)
        got, zi = sosfilt_stateful(sos, chunk, zi)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(zi, zi_ref)
        assert zi.shape == (sos.shape[0], 2)
    zi0 = signal.sosfilt_zi(sos) * x[0]
    sosfilt_stateful(sos, x[:10], zi0)
    np.testing.assert_array_equal(zi0, signal.sosfilt_zi(sos) * x[0])  # the state is not modified
