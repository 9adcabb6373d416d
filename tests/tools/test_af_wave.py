"""tools.af.wave: record calls, false calls and F1 as the tuning uses them."""

from __future__ import annotations

import numpy as np

from tools.af.wave import f1, false_calls, record_call


def test_a_record_is_called_af_after_k_consecutive_windows() -> None:
    p = np.array([0.99, 0.2, 0.99, 0.99, 0.5])
    assert record_call(p, 0.98, 2)
    assert not record_call(p, 0.98, 3)
    assert not record_call(np.array([]), 0.5, 1)


def test_false_calls_count_confirmations_on_non_af_windows_once_per_run() -> None:
    p = np.array([0.99, 0.99, 0.99, 0.1, 0.99, 0.99, 0.99, 0.99])
    truth = np.array([False, False, False, False, True, True, True, True])
    assert false_calls(p, truth, 0.98, 2) == 1  # the first run; the second is true AF
    assert false_calls(p, ~truth, 0.98, 2) == 1


def test_f1_of_the_af_class() -> None:
    score, tp, fp, fn = f1([True, True, False, False], [True, False, True, False])
    assert (tp, fp, fn) == (1, 1, 1)
    assert score == 0.5
