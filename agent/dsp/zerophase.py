"""Zero-phase filters designed once, for the many short windows the streaming stages filter.

SciPy's :func:`scipy.signal.sosfiltfilt` and :func:`scipy.signal.filtfilt` recompute the
filter's steady-state initial conditions (``sosfilt_zi`` / ``lfilter_zi``, a linear solve) and
re-validate their arguments on every call. The agent calls them on thousands of short windows
per record (an R-peak window every 2 s, a VF window every 1 s, a window per beat), where that
overhead was most of their cost (issue 11: 4.3 s of a 9.2 s record, half of it in
``sosfilt_zi``). :class:`ZeroPhaseSos` and :class:`ZeroPhaseBa` compute the initial
conditions once and then run SciPy's own ``sosfilt`` / ``lfilter`` exactly as SciPy's
forward-backward functions do (odd extension of ``3 * ntaps`` samples at both ends, the
steady state scaled by the first sample, forward, reverse, backward, reverse, trim), so their
output is bit-for-bit that of ``sosfiltfilt`` / ``filtfilt(method="pad")``; a test pins it.

Reference: Gustafsson F. Determining the initial states in forward-backward filtering. IEEE
Trans Signal Process 1996;44(4):988-992 (the steady-state initial conditions SciPy uses).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import signal

__all__ = ["ZeroPhaseBa", "ZeroPhaseSos", "sosfilt_stateful"]

_Kernel = Callable[[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]], None]
try:  # SciPy's compiled cascade behind sosfilt (in place on (n, samples) and (n, sections, 2))
    from scipy.signal._sosfilt import _sosfilt as _compiled
except ImportError:  # pragma: no cover - another SciPy layout: the public function, same result
    _compiled = None
_sos_kernel: _Kernel | None = _compiled


def _sosfilt(
    sos: NDArray[np.float64], x: NDArray[np.float64], zi: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``scipy.signal.sosfilt(sos, x, zi=zi)[0]`` for 1-D float64 ``x``.

    The public function spends about 0.1 ms per call validating and reshaping its arguments;
    the agent filters short windows thousands of times per record, so the compiled kernel
    behind it is called directly when SciPy has it (the same kernel, so the same output; a
    test pins it to ``sosfilt``).
    """
    if _sos_kernel is None:
        y, _ = signal.sosfilt(sos, x, zi=zi)
        filtered: NDArray[np.float64] = np.asarray(y, dtype=np.float64)
        return filtered
    out = np.array(x, dtype=np.float64, order="C", ndmin=2)
    state = np.array(zi, dtype=np.float64, order="C", ndmin=3)
    _sos_kernel(sos, out, state)
    filtered_in_place: NDArray[np.float64] = out[0]
    return filtered_in_place


def sosfilt_stateful(
    sos: NDArray[np.float64], x: NDArray[np.float64], zi: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``scipy.signal.sosfilt(sos, x, zi=zi)`` for 1-D float64 ``x``, bit for bit.

    For a filter that runs over a stream chunk by chunk, carrying its state: the compiled
    kernel behind ``sosfilt`` is called directly (as :func:`_sosfilt` does), which saves the
    public function's argument checks and reshapes on every chunk (issue 11: about a tenth
    of the live agent's per-chunk cost). A test pins it to ``sosfilt``.

    Parameters
    ----------
    sos : NDArray[np.float64]
        Second-order sections, shape ``(n_sections, 6)``, C-contiguous float64.
    x : NDArray[np.float64]
        Samples, shape ``(n_samples,)``.
    zi : NDArray[np.float64]
        Filter state before ``x``, shape ``(n_sections, 2)``; not modified.

    Returns
    -------
    tuple[NDArray[np.float64], NDArray[np.float64]]
        The filtered samples, shape ``(n_samples,)``, and the state after them,
        shape ``(n_sections, 2)``.
    """
    if _sos_kernel is None:
        y, zf = signal.sosfilt(sos, x, zi=zi)
        return np.asarray(y, dtype=np.float64), np.asarray(zf, dtype=np.float64)
    out = np.array(x, dtype=np.float64, order="C", ndmin=2)
    state = np.array(zi, dtype=np.float64, order="C", ndmin=3)
    _sos_kernel(sos, out, state)
    filtered: NDArray[np.float64] = out[0]
    final: NDArray[np.float64] = state[0]
    return filtered, final


def _odd_ext(x: NDArray[np.float64], edge: int) -> NDArray[np.float64]:
    """Odd extension by ``edge`` samples at both ends (as ``scipy.signal`` pads filtfilt)."""
    left = 2.0 * x[0] - x[edge:0:-1]
    right = 2.0 * x[-1] - x[-2 : -(edge + 2) : -1]
    return np.concatenate((left, x, right))


def _forward_backward(
    x: NDArray[np.float64],
    edge: int,
    forward: Callable[[NDArray[np.float64]], NDArray[np.float64]],
) -> NDArray[np.float64]:
    """SciPy's filtfilt "pad" method: odd extension, forward, reverse, forward, reverse, trim.

    ``forward(v)`` filters ``v`` from the steady state scaled by ``v[0]``.

    Raises
    ------
    ValueError
        If ``x`` is not longer than ``edge``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] <= edge:
        msg = f"need more than {edge} samples to filter, got {x.shape[0]}"
        raise ValueError(msg)
    y = forward(_odd_ext(x, edge))
    y = forward(y[::-1])
    out: NDArray[np.float64] = y[::-1][edge:-edge]
    return out


class ZeroPhaseSos:
    """Forward-backward IIR filter in second-order sections, set up once.

    Parameters
    ----------
    sos : NDArray[np.float64]
        Second-order sections, shape ``(n_sections, 6)``, e.g. from ``scipy.signal.butter(...,
        output="sos")``.

    Attributes
    ----------
    edge : int
        Samples of odd extension at each end; an input must be longer than this.
    """

    def __init__(self, sos: NDArray[np.float64]) -> None:
        self.sos = np.ascontiguousarray(sos, dtype=np.float64)
        n_sections = self.sos.shape[0]
        ntaps = 2 * n_sections + 1
        ntaps -= min(int((self.sos[:, 2] == 0).sum()), int((self.sos[:, 5] == 0).sum()))
        self.edge = 3 * ntaps
        self._zi = signal.sosfilt_zi(self.sos)  # shape (n_sections, 2)

    def __call__(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Filter ``x`` forward and backward; equal to ``sosfiltfilt(sos, x)``.

        Parameters
        ----------
        x : NDArray[np.float64]
            Samples, shape ``(n_samples,)`` with ``n_samples > edge``, no NaN.

        Returns
        -------
        NDArray[np.float64]
            Filtered samples, shape ``(n_samples,)``.

        Raises
        ------
        ValueError
            If ``x`` is not longer than :attr:`edge`.
        """
        return _forward_backward(x, self.edge, lambda v: _sosfilt(self.sos, v, self._zi * v[0]))


class ZeroPhaseBa:
    """Forward-backward filter in transfer-function form ``(b, a)``, set up once.

    Parameters
    ----------
    b, a : NDArray[np.float64]
        Numerator and denominator coefficients, shape ``(n_b,)`` and ``(n_a,)`` (an FIR moving
        average is ``b = ones(n)``, ``a = [n]``).

    Attributes
    ----------
    edge : int
        Samples of odd extension at each end; an input must be longer than this.
    """

    def __init__(self, b: NDArray[np.float64], a: NDArray[np.float64]) -> None:
        self.b = np.atleast_1d(np.asarray(b, dtype=np.float64))
        self.a = np.atleast_1d(np.asarray(a, dtype=np.float64))
        self.edge = 3 * max(len(self.a), len(self.b))
        self._zi = signal.lfilter_zi(self.b, self.a)
        # An FIR filter (one denominator coefficient) is what ``lfilter`` computes as a full
        # convolution with ``b / a[0]`` through ``np.apply_along_axis``, whose wrapper cost
        # most of the call on the R-peak detector's windows (issue 11); ``_forward`` does the
        # same convolution and the same additions directly, so the same bits.
        self._fir: NDArray[np.float64] | None = None
        if self.a.size == 1:
            self._fir = self.b / self.a[0]

    def __call__(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Filter ``x`` forward and backward; equal to ``filtfilt(b, a, x, method="pad")``.

        Parameters
        ----------
        x : NDArray[np.float64]
            Samples, shape ``(n_samples,)`` with ``n_samples > edge``, no NaN.

        Returns
        -------
        NDArray[np.float64]
            Filtered samples, shape ``(n_samples,)``.

        Raises
        ------
        ValueError
            If ``x`` is not longer than :attr:`edge`.
        """
        return _forward_backward(x, self.edge, self._forward)

    def _forward(self, v: NDArray[np.float64]) -> NDArray[np.float64]:
        if self._fir is not None:
            full = np.convolve(self._fir, v)
            full[: self._zi.size] += self._zi * v[0]
            fir_out: NDArray[np.float64] = full[: v.size]
            return fir_out
        y, _ = signal.lfilter(self.b, self.a, v, zi=self._zi * v[0])
        out: NDArray[np.float64] = y
        return out
