"""The streaming stages' median equals ``np.median`` bit for bit (issue 11's speed work)."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from agent.dsp.stats import median_columns, median_finite, median_rows


def test_median_finite_equals_numpy_bit_for_bit() -> None:
    rng = np.random.default_rng(13)
    for n in [*range(1, 30), 150, 901, 902]:
        for k in range(10):
            x = rng.standard_normal(n) * 300.0
            if k % 2:
                x = np.round(x)  # ties
            if k % 3 == 2:
                x = np.abs(x) * 1e-3  # the small positive levels of the quality index
            assert median_finite(x) == float(np.median(x))


def test_median_finite_of_a_deque_as_the_quality_index_calls_it() -> None:
    # quality.py hands it the window's block medians (a deque of Python floats)
    levels = deque([12.5, 3.25, 7.0, 7.0, 1e-9, 250.0], maxlen=8)
    arr = np.fromiter(levels, np.float64, len(levels))
    assert median_finite(arr) == float(np.median(levels)) == 7.0


def test_median_finite_of_nothing_raises() -> None:
    with pytest.raises(IndexError):
        median_finite(np.zeros(0))


@pytest.mark.parametrize("n_cols", [1, 2, 3, 45, 65, 90, 180])
def test_median_rows_equals_numpy_bit_for_bit(n_cols: int) -> None:
    rng = np.random.default_rng(n_cols)
    x = np.abs(rng.standard_normal((5, n_cols))) * 40.0  # rectified band blocks, µV
    x[1] = np.round(x[1])  # ties
    x[3, n_cols // 2] = np.nan  # a block with an invalid sample
    got, want = median_rows(x), np.median(x, axis=1)
    assert np.isnan(got[3])
    assert np.isnan(want[3])
    assert got.tobytes() == want.tobytes()
    assert median_rows(x[:0]).shape == (0,)


@pytest.mark.parametrize("n_rows", [1, 2, 3, 15, 16, 17])
def test_median_columns_equals_numpy_bit_for_bit(n_rows: int) -> None:
    rng = np.random.default_rng(100 + n_rows)
    x = rng.standard_normal((n_rows, 324)) * 150.0  # aligned beats of an AF window, µV
    x[:, ::7] = np.round(x[:, ::7])  # ties
    got, want = median_columns(x), np.median(x, axis=0)
    assert got.shape == (324,)
    assert got.tobytes() == want.tobytes()
