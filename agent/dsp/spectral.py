"""Welch power spectral density of short windows, set up once per segment length.

:func:`scipy.signal.welch` builds a :class:`scipy.signal.ShortTimeFFT` (window, scaling) on
every call and then detrends and transforms one segment at a time in a Python loop. The AF
waveform path (:mod:`agent.rhythm.af_wave`) estimates the spectrum of a 12-20 s window every
four beats, about ten 2 s segments each, where that overhead was most of the cost (issue 11:
~0.4 ms of the ~2.7 ms per window). :class:`WelchPsd` builds the scaled window once and
transforms all segments in one call, with the same operations in the same order as SciPy
1.17 (``csd`` → ``ShortTimeFFT.spectrogram`` with ``scale_to="psd"``, constant detrend,
``scipy.fft.rfft``, the one-sided doubling, the mean over segments along a contiguous axis),
so its output is bit-for-bit that of ``welch(x, fs, nperseg=n)`` with the defaults (periodic
Hann window, 50 % overlap, ``nfft = nperseg``, ``detrend="constant"``, one-sided density,
mean); a test pins it.

Reference: Welch P. The use of the fast Fourier transform for the estimation of power spectra:
a method based on time averaging over short, modified periodograms. IEEE Trans Audio
Electroacoust 1967;15(2):70-73.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray
from scipy import signal

__all__ = ["WelchPsd"]


class WelchPsd:
    """One-sided Welch PSD with SciPy's defaults for one segment length and rate.

    Parameters
    ----------
    nperseg : int
        Samples per segment (also the FFT length); segments overlap by ``nperseg // 2``.
    fs_hz : float
        Sampling rate, Hz.

    Attributes
    ----------
    freqs_hz : NDArray[np.float64]
        Frequencies of the estimate, shape ``(nperseg // 2 + 1,)``, Hz.

    Raises
    ------
    ValueError
        If ``nperseg`` is below 2 or ``fs_hz`` is not positive.

    References
    ----------
    scipy.signal.welch / csd and ShortTimeFFT (SciPy 1.16 and 1.17 alike), whose scaling and
    order of operations this repeats.
    """

    def __init__(self, nperseg: int, fs_hz: float) -> None:
        if nperseg < 2 or not fs_hz > 0:
            msg = f"need nperseg >= 2 and fs_hz > 0, got {nperseg} and {fs_hz}"
            raise ValueError(msg)
        self.nperseg = int(nperseg)
        self.hop = self.nperseg - self.nperseg // 2
        win = np.asarray(signal.get_window("hann", self.nperseg), dtype=np.float64)
        # ShortTimeFFT.fac_psd: 1 / sqrt(sum |w|^2 / T), T = 1 / fs (Python's sum, as SciPy)
        self._win = win * (1 / np.sqrt(sum(win.real**2 + win.imag**2) / (1 / fs_hz)))
        self.freqs_hz: NDArray[np.float64] = scipy.fft.rfftfreq(self.nperseg, 1 / fs_hz)

    def __call__(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """PSD of ``x``; equal to ``scipy.signal.welch(x, fs_hz, nperseg=nperseg)[1]``.

        Parameters
        ----------
        x : NDArray[np.float64]
            Samples, shape ``(n_samples,)`` with ``n_samples >= nperseg``, in any unit u.

        Returns
        -------
        NDArray[np.float64]
            Power spectral density, shape ``(nperseg // 2 + 1,)``, u²/Hz.

        Raises
        ------
        ValueError
            If ``x`` is shorter than one segment.
        """
        n = self.nperseg
        if x.shape[0] < n:
            msg = f"need at least {n} samples for one segment, got {x.shape[0]}"
            raise ValueError(msg)
        p = (x.shape[0] - n // 2) // self.hop
        frames = sliding_window_view(x, n)[: (p - 1) * self.hop + 1 : self.hop]
        frames = frames - np.mean(frames, axis=-1, keepdims=True)
        spec = scipy.fft.rfft(frames * self._win, n=n, axis=-1)
        # (frequency, segment), contiguous: SciPy averages along the segments of that layout
        pxx = np.ascontiguousarray((spec.real**2 + spec.imag**2).T)
        pxx[1 : -1 if n % 2 == 0 else None] *= 2
        psd: NDArray[np.float64] = pxx.mean(axis=-1)
        return psd
