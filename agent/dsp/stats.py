"""Small reductions the streaming stages call thousands of times, bit for bit as NumPy's.

``np.median`` on a short array spends most of its ~30 µs in generic machinery (axis and NaN
handling, keyword parsing), not in the partition (issue 11: about 10,000 calls per 30-minute
record from the signal-quality index, EDR and AF windows). These helpers do the same
arithmetic in the same order, so every output stays identical (pinned by
``tests/agent/dsp/test_stats.py``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def median_finite(x: NDArray[np.float64]) -> float:
    """``float(np.median(x))`` of a finite, non-empty 1-D float64 array, bit for bit.

    ``np.median`` partitions around the middle and returns the middle value, or the mean of
    the two middle values (their float64 sum halved) for an even count; this does the same
    without its generic axis and NaN handling. Callers guarantee finite values (a NaN would
    be partitioned to the end instead of propagating).

    Raises
    ------
    IndexError
        If ``x`` is empty.
    """
    n = x.size
    k = n // 2
    if n % 2:
        return float(np.partition(x, k)[k])
    p = np.partition(x, (k - 1, k))
    return float((p[k - 1] + p[k]) / 2)


def median_rows(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``np.median(x, axis=1)`` of a 2-D float64 array with at least one column, bit for bit.

    Each row's median as :func:`median_finite` computes it; a row holding a NaN gives NaN, as
    ``np.median`` does. The signal-quality monitor takes two such medians per chunk, about
    one block each (issue 11: the per-chunk cost the live agent pays at every notification).

    Parameters
    ----------
    x : NDArray[np.float64]
        Shape ``(n_rows, n_cols)``, ``n_cols >= 1``.

    Returns
    -------
    NDArray[np.float64]
        Shape ``(n_rows,)``.
    """
    n = x.shape[1]
    k = n // 2
    if n % 2:
        out = np.partition(x, k, axis=1)[:, k]
    else:
        p = np.partition(x, (k - 1, k), axis=1)
        out = (p[:, k - 1] + p[:, k]) / 2
    nan_rows = np.isnan(x).any(axis=1)
    if nan_rows.any():
        out = np.where(nan_rows, np.nan, out)
    return out


def median_columns(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``np.median(x, axis=0)`` of a finite 2-D float64 array with at least one row, bit for bit.

    For a few rows of many columns (the aligned beats of an AF window: about 16 beats of a few
    hundred samples) ``np.median`` partitions every column on its own; sorting the columns at
    once and taking the middle row, or the float64 sum of the two middle rows halved (its own
    arithmetic), costs a third (issue 11). Callers guarantee finite values (a NaN would be
    sorted to the end instead of propagating).

    Parameters
    ----------
    x : NDArray[np.float64]
        Shape ``(n_rows, n_cols)``, ``n_rows >= 1``.

    Returns
    -------
    NDArray[np.float64]
        Shape ``(n_cols,)``.
    """
    n = x.shape[0]
    s = np.sort(x, axis=0)
    k = n // 2
    if n % 2:
        middle: NDArray[np.float64] = s[k]
        return middle
    out: NDArray[np.float64] = (s[k - 1] + s[k]) / 2
    return out
