"""RR → AF model input: shapes, scaling, implausible intervals and gaps."""

from __future__ import annotations

import numpy as np
import pytest

from agent.rhythm.af_features import (
    AF_N_FEATURES,
    AF_SEQ_LEN,
    GAP,
    CleanRr,
    RrCleaner,
    af_window_features,
    rr_clean,
)


def test_regular_window_is_zero_irregularity_and_scaled_rate() -> None:
    x = af_window_features(np.full(AF_SEQ_LEN, 1200.0))
    assert x.shape == (AF_SEQ_LEN, AF_N_FEATURES)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0], 0.0)
    np.testing.assert_allclose(x[:, 1], 0.0)
    # (1.2 s - 0.8 s) / 0.4 s = 1.0
    np.testing.assert_allclose(x[:, 2], 1.0, rtol=1e-6)


def test_batch_of_windows_and_log_ratio_to_median() -> None:
    rr = np.full((3, AF_SEQ_LEN), 800.0)
    rr[1, 5] = 1600.0  # a long interval: log(1600 / 800) = 0.693
    rr[2, 7] = 100.0  # below 200 ms: clipped to 200 → log(200 / 800) = -1.386 → clip -1
    x = af_window_features(rr)
    assert x.shape == (3, AF_SEQ_LEN, AF_N_FEATURES)
    assert x[1, 5, 0] == pytest.approx(np.log(2.0), rel=1e-5)
    # successive differences / median 800 ms: +800 → clipped +1, then -800 → -1
    assert (x[1, 5, 1], x[1, 6, 1], x[1, 4, 1]) == (1.0, -1.0, 0.0)
    assert x[2, 7, 0] == pytest.approx(-1.0)
    assert x[2, 7, 1] == pytest.approx(-0.75)  # (200 - 800) / 800
    assert x[2, 7, 2] == pytest.approx((0.2 - 0.8) / 0.4)
    rr[0, :] = np.arange(AF_SEQ_LEN) * 10.0 + 700.0  # median 855 ms, steps of 10 ms
    x = af_window_features(rr[0])
    assert x[0, 1] == 0.0  # no predecessor in the window
    np.testing.assert_allclose(x[1:, 1], 10.0 / 855.0, rtol=1e-5)


def test_wrong_window_length_is_rejected() -> None:
    with pytest.raises(ValueError, match="32 RR intervals"):
        af_window_features(np.full(AF_SEQ_LEN - 1, 800.0))


def test_cleaner_merges_short_and_breaks_on_long_intervals() -> None:
    c = RrCleaner()
    assert c.push(150.0, 10.15) is None  # false R-peak: held
    out = c.push(650.0, 10.80)
    assert out == CleanRr(rr_ms=800.0, t_s=10.80)
    assert isinstance(out, CleanRr)
    assert out.start_s == pytest.approx(10.0)
    assert c.push(3500.0, 14.3) is GAP
    assert c.push(float("nan"), 15.0) is GAP
    assert c.push(-5.0, 15.0) is GAP
    # a held short interval that would make a gap is dropped with it
    assert c.push(199.0, 15.2) is None
    assert c.push(2900.0, 18.1) is GAP
    assert c.push(900.0, 19.0) == CleanRr(rr_ms=900.0, t_s=19.0)


def test_rr_clean_splits_at_gaps_and_keeps_source_indices() -> None:
    rr = np.array([800, 800, 120, 680, 5000, 700, 710, 720], dtype=float)
    t = np.cumsum(rr) / 1000.0
    segs = rr_clean(rr, t)
    assert len(segs) == 2
    np.testing.assert_allclose(segs[0][0], [800, 800, 800])
    np.testing.assert_array_equal(segs[0][2], [0, 1, 3])
    np.testing.assert_allclose(segs[1][0], [700, 710, 720])
    np.testing.assert_array_equal(segs[1][2], [5, 6, 7])
    np.testing.assert_allclose(segs[1][1], t[5:])


def test_rr_clean_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        rr_clean([800.0, 800.0], [0.8])
