"""Rational-rate resampling of fixed-length windows, set up once.

:func:`scipy.signal.resample_poly` designs its anti-aliasing filter and lays out its padding
on every call. The agent resamples thousands of windows of one fixed length per record (a VF
window every second, a window per beat), so :class:`PolyResampler` does that set-up once per
(rate ratio, window length) and then calls :func:`scipy.signal.upfirdn` exactly as
``resample_poly`` does (same filter: ``firwin`` with a Kaiser window, beta 5, 10 taps per
phase; same zero padding and trimming), so the output is bit-for-bit that of
``resample_poly(x, up, down)``; a test pins it. The polyphase filter bank that ``upfirdn``
lays out on every call (SciPy's private ``_UpFIRDn``, about 40 µs a call) is laid out once too
when this SciPy has it; its ``apply_filter`` is what ``upfirdn`` calls, so the output is the
same.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import signal

try:  # the filter bank behind upfirdn, reusable across calls (same kernel, same output)
    from scipy.signal._upfirdn import _UpFIRDn
except ImportError:  # pragma: no cover - another SciPy layout: the public function
    _UpFIRDn = None

__all__ = ["PolyResampler"]


def _upfirdn_len(n_h: int, n_in: int, up: int, down: int) -> int:
    """Length of ``upfirdn``'s output (SciPy's documented formula)."""
    return ((n_in - 1) * up + n_h - 1) // down + 1


class PolyResampler:
    """Resample windows of ``n_in`` samples by ``up / down`` (FIR polyphase, zero phase).

    Parameters
    ----------
    up, down : int
        Rate change factors (reduced by their greatest common divisor, as SciPy does).
    n_in : int
        Length of every input window, samples.

    Attributes
    ----------
    n_out : int
        Length of every output window: ``ceil(n_in * up / down)``.

    Raises
    ------
    ValueError
        If a factor or ``n_in`` is below 1.

    References
    ----------
    scipy.signal.resample_poly (SciPy 1.16 and 1.17 alike), whose filter design and padding
    this repeats.
    """

    def __init__(self, up: int, down: int, n_in: int) -> None:
        if up < 1 or down < 1 or n_in < 1:
            msg = f"up, down and n_in must be >= 1, got {up}, {down}, {n_in}"
            raise ValueError(msg)
        g = math.gcd(up, down)
        self.up, self.down, self.n_in = up // g, down // g, n_in
        self.n_out = -(-n_in * self.up // self.down)
        self._h: NDArray[np.float64] | None = None
        self._bank: Any = None  # scipy.signal._upfirdn._UpFIRDn when SciPy has it
        self._first = 0
        if self.up == self.down == 1:
            return
        max_rate = max(self.up, self.down)
        half_len = 10 * max_rate
        h = signal.firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0))
        h = np.asarray(h, dtype=np.float64) * self.up
        n_pre_pad = self.down - half_len % self.down
        self._first = (half_len + n_pre_pad) // self.down
        n_post_pad = 0
        while (
            _upfirdn_len(h.size + n_pre_pad + n_post_pad, n_in, self.up, self.down)
            < self.n_out + self._first
        ):
            n_post_pad += 1
        self._h = np.concatenate((np.zeros(n_pre_pad), h, np.zeros(n_post_pad)))
        self._bank = None if _UpFIRDn is None else _UpFIRDn(self._h, np.float64, self.up, self.down)

    def __call__(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Resample one window; equal to ``scipy.signal.resample_poly(x, up, down)``.

        Parameters
        ----------
        x : NDArray[np.float64]
            Samples, shape ``(n_in,)``.

        Returns
        -------
        NDArray[np.float64]
            Shape ``(n_out,)``.

        Raises
        ------
        ValueError
            If ``x`` does not have ``n_in`` samples.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.n_in,):
            msg = f"expected {self.n_in} samples, got shape {x.shape}"
            raise ValueError(msg)
        if self._h is None:
            return x.copy()
        if self._bank is not None:
            y = self._bank.apply_filter(x)
        else:  # pragma: no cover - no _UpFIRDn in this SciPy
            y = signal.upfirdn(self._h, x, self.up, self.down)
        out: NDArray[np.float64] = y[self._first : self._first + self.n_out]
        return out
