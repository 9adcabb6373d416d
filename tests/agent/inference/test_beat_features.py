"""Beat windows and streaming RR features (agent.inference.beat_features)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb
from scipy import signal

from agent.inference.beat_features import (
    LOCAL_RR_BEATS,
    MODEL_FS_HZ,
    N_RR_FEATURES,
    N_WINDOW_CHANNELS,
    SEGMENT_POST_S,
    SEGMENT_PRE_S,
    WINDOW_LEN,
    WINDOW_PRE_S,
    BeatTemplateTracker,
    RrFeatures,
    RrFeatureTracker,
    _mean_std,
    beat_correlation,
    beat_window,
    segment_bounds,
)

R_IDX = round(WINDOW_PRE_S * MODEL_FS_HZ)  # 32: the R-peak's index in the window


def synthetic_beat(fs_hz: float, *, amplitude_uv: float = 1000.0) -> tuple[np.ndarray, int]:
    """A 2.5 s segment with one Gaussian QRS (10 ms SD) at its R offset."""
    start, stop = segment_bounds(10_000, fs_hz)
    t_s = (np.arange(start, stop) - 10_000) / fs_hz
    x = amplitude_uv * np.exp(-0.5 * (t_s / 0.010) ** 2) + 50.0 * np.sin(2 * np.pi * 0.3 * t_s)
    return x.astype(np.float32), 10_000 - start


@pytest.mark.parametrize("fs_hz", [128.0, 130.0, 250.0, 360.0, 500.0, 1000.0])
def test_window_has_fixed_length_and_peak_at_r(fs_hz: float) -> None:
    seg, r = synthetic_beat(fs_hz)
    w = beat_window(seg, fs_hz, r)
    assert w is not None
    assert w.shape == (WINDOW_LEN,)
    assert w.dtype == np.float32
    assert int(np.argmax(w)) == R_IDX
    assert float(np.std(w)) == pytest.approx(1.0, abs=1e-4)  # zscore scaling


def test_fixed_mv_scaling_keeps_amplitude() -> None:
    seg, r = synthetic_beat(360.0, amplitude_uv=1000.0)
    big = beat_window(seg * 2, 360.0, r, scaling="fixed_mv")
    small = beat_window(seg, 360.0, r, scaling="fixed_mv")
    assert big is not None
    assert small is not None
    np.testing.assert_allclose(big, 2 * small, rtol=1e-5, atol=1e-6)
    assert 0.3 < float(small.max()) < 1.0  # band-passed 1 mV QRS, in mV


def test_extra_margin_does_not_change_the_window() -> None:
    seg, r = synthetic_beat(360.0)
    padded = np.concatenate([np.zeros(500, np.float32), seg, np.zeros(300, np.float32)])
    a = beat_window(seg, 360.0, r)
    b = beat_window(padded, 360.0, r + 500)
    assert a is not None
    assert b is not None
    np.testing.assert_array_equal(a, b)


def test_nan_short_and_flat_segments_give_none() -> None:
    seg, r = synthetic_beat(360.0)
    with_nan = seg.copy()
    with_nan[r + 100] = np.nan
    assert beat_window(with_nan, 360.0, r) is None
    assert beat_window(seg[: r + int(SEGMENT_POST_S * 360) - 5], 360.0, r) is None
    assert beat_window(seg[5:], 360.0, r - 5) is None  # less than SEGMENT_PRE_S before R
    assert beat_window(np.full_like(seg, 250.0), 360.0, r) is None


def test_bad_rate_or_shape_raises() -> None:
    seg, r = synthetic_beat(360.0)
    with pytest.raises(ValueError, match="fs_hz"):
        beat_window(seg, 50.0, r)
    with pytest.raises(ValueError, match="1-D"):
        beat_window(np.stack([seg, seg]), 360.0, r)


def test_segment_bounds_cover_the_margins() -> None:
    start, stop = segment_bounds(1000, 130.0)
    assert 1000 - start >= SEGMENT_PRE_S * 130
    assert stop - 1 - 1000 >= SEGMENT_POST_S * 130


@pytest.mark.data
def test_130_and_360_hz_windows_agree_on_real_beats(mitdb: Path) -> None:
    """Record 119 (N and V beats) at 360 Hz and resampled to 130 Hz (a wearable's rate)."""
    rec = wfdb.rdrecord(str(mitdb / "119"), channel_names=["MLII"], sampto=360 * 120)
    ann = wfdb.rdann(str(mitdb / "119"), "atr", sampto=360 * 118)
    x360 = (rec.p_signal[:, 0] * 1000).astype(np.float64)
    x130 = signal.resample_poly(x360, 13, 36)
    corr = []
    for s, sym in zip(ann.sample, ann.symbol, strict=True):
        if sym not in "NV" or s < 3 * 360:
            continue
        a, b = segment_bounds(int(s), 360.0)
        w360 = beat_window(x360[a:b].astype(np.float32), 360.0, int(s) - a)
        r130 = round(s * 130 / 360)
        a2, b2 = segment_bounds(r130, 130.0)
        w130 = beat_window(x130[a2:b2].astype(np.float32), 130.0, r130 - a2)
        assert w360 is not None
        assert w130 is not None
        corr.append(np.corrcoef(w360, w130)[0, 1])
    assert len(corr) > 100
    assert float(np.median(corr)) > 0.98
    assert float(np.min(corr)) > 0.9  # R rounded to the 130 Hz grid: up to 3.8 ms off


def test_rr_features_values() -> None:
    tracker = RrFeatureTracker()
    times = [0.0, 0.8, 1.6, 2.1, 3.2]  # beat 3 premature (0.5 s), compensatory 1.1 s
    out = [tracker.push(t) for t in times]
    assert out[0] is None
    assert out[1] is None  # beat 0 has no pre-RR
    f3 = out[4]
    assert f3 is not None
    assert f3.r_peak_time_s == pytest.approx(2.1)
    assert f3.pre_rr_s == pytest.approx(0.5)
    assert f3.post_rr_s == pytest.approx(1.1)
    assert f3.local_rr_s == pytest.approx((0.8 + 0.8 + 0.5 + 1.1) / 4)
    assert f3.long_rr_s == pytest.approx(0.8)
    arr = f3.as_array()
    assert arr.shape == (N_RR_FEATURES,)
    assert arr[4] == pytest.approx(0.5 / 0.8)  # pre / local
    assert arr[7] == pytest.approx(1.1 / 0.5)  # post / pre


def test_rr_features_use_no_beat_after_k_plus_1() -> None:
    """Beat k's features are final at beat k+1: what comes later cannot change them."""
    rng = np.random.default_rng(1)
    base = np.cumsum(rng.uniform(0.5, 1.2, size=40))
    alt = base.copy()
    alt[21:] = base[20] + np.cumsum(rng.uniform(0.3, 2.0, size=19))  # different future
    t1, t2 = RrFeatureTracker(), RrFeatureTracker()
    f1 = [t1.push(float(t)) for t in base[:21]]
    f2 = [t2.push(float(t)) for t in alt[:21]]
    assert f1[20] == f2[20]  # features of beat 19, emitted at beat 20
    assert isinstance(f1[20], RrFeatures)
    assert f1[20].post_rr_s == pytest.approx(base[20] - base[19])


def test_local_average_spans_the_last_beats() -> None:
    tracker = RrFeatureTracker()
    times = np.concatenate([np.arange(0, 20) * 1.0, 19 + np.arange(1, 20) * 0.5])
    feats = [f for f in (tracker.push(float(t)) for t in times) if f is not None]
    last = feats[-1]
    assert last.local_rr_s == pytest.approx(0.5)  # only the last LOCAL_RR_BEATS, all 0.5 s
    assert LOCAL_RR_BEATS == 10
    assert last.long_rr_s == pytest.approx((19 * 1.0 + 19 * 0.5) / 38)


def test_long_average_forgets_after_five_minutes() -> None:
    tracker = RrFeatureTracker(long_window_s=300.0)
    t = 0.0
    for _ in range(400):  # 400 s at 1 s RR
        tracker.push(t)
        t += 1.0
    for _ in range(700):  # then 350 s at 0.5 s RR
        tracker.push(t)
        t += 0.5
    f = tracker.push(t)
    assert f is not None
    assert f.long_rr_s == pytest.approx(0.5)


def test_reset_forgets_the_pending_beat_and_times_must_increase() -> None:
    tracker = RrFeatureTracker()
    for t in (0.0, 1.0, 2.0):
        tracker.push(t)
    tracker.reset()
    assert tracker.push(10.0) is None
    assert tracker.push(11.0) is None  # beat at 10 s has no pre-RR after the gap
    f = tracker.push(12.0)
    assert f is not None
    assert f.pre_rr_s == pytest.approx(1.0)
    with pytest.raises(ValueError, match="increase"):
        tracker.push(12.0)
    with pytest.raises(ValueError, match="finite"):
        tracker.push(float("nan"))


def test_template_is_the_median_of_preceding_beats() -> None:
    tracker = BeatTemplateTracker(n_beats=3)
    ones = np.ones(WINDOW_LEN, np.float32)
    first = tracker.push(ones)
    assert first.shape == (WINDOW_LEN, N_WINDOW_CHANNELS)
    np.testing.assert_array_equal(first[:, 1], ones)  # no history: the beat itself
    tracker.push(2 * ones)
    tracker.push(3 * ones)
    out = tracker.push(10 * ones)  # history 1, 2, 3 → median 2; the beat is not included
    np.testing.assert_array_equal(out[:, 0], 10 * ones)
    np.testing.assert_array_equal(out[:, 1], 2 * ones)
    out = tracker.push(ones)  # history 2, 3, 10 (oldest dropped) → median 3
    np.testing.assert_array_equal(out[:, 1], 3 * ones)
    tracker.reset()
    np.testing.assert_array_equal(tracker.push(5 * ones)[:, 1], 5 * ones)
    with pytest.raises(ValueError, match="shape"):
        tracker.push(np.ones(10, np.float32))


def test_template_equals_numpy_median_bit_for_bit() -> None:
    """The ring-buffer median is ``np.median`` of the preceding windows, to the last bit."""
    rng = np.random.default_rng(11)
    for n_beats in (1, 2, 5, 20):
        tracker = BeatTemplateTracker(n_beats=n_beats)
        history: list[np.ndarray] = []
        for i in range(60):
            if i == 33:
                tracker.reset()
                history.clear()
            w = rng.standard_normal(WINDOW_LEN).astype(np.float32)
            out = tracker.push(w)
            expected = np.median(np.stack(history[-n_beats:]), axis=0) if history else w
            assert out.dtype == np.float32
            assert out[:, 1].tobytes() == expected.astype(np.float32).tobytes()
            assert out[:, 0].tobytes() == w.tobytes()
            history.append(w)


def _reference_shifted_correlation(beat: np.ndarray, other: np.ndarray) -> float | None:
    """The sliding-window form the gathered-index form replaced (issue 11)."""
    lag = 10
    a, b = 16, 64
    x = beat[a:b] - beat[a:b].mean()
    nx = float(np.sqrt(x @ x))
    if nx == 0.0:
        return None
    shifted = np.lib.stride_tricks.sliding_window_view(other[a - lag : b + lag], b - a)
    y = shifted - shifted.mean(axis=1, keepdims=True)
    ny = np.sqrt(np.einsum("ij,ij->i", y, y))
    ok = ny > 0.0
    if not ok.any():
        return None
    r = (y[ok] @ x) / (ny[ok] * nx)
    return float(np.clip(r.max(), -1.0, 1.0))


def test_beat_correlation_equals_the_sliding_window_form() -> None:
    rng = np.random.default_rng(12)
    for i in range(500):
        a = rng.standard_normal(WINDOW_LEN)
        b = rng.standard_normal(WINDOW_LEN) * 3.0 + (a if i % 2 else 0.0)
        if i % 25 == 0:
            b[20:70] = 0.0  # some shifts flat
        assert beat_correlation(a, b) == _reference_shifted_correlation(a, b)
    flat = np.zeros(WINDOW_LEN)
    assert beat_correlation(flat, rng.standard_normal(WINDOW_LEN)) is None
    assert beat_correlation(rng.standard_normal(WINDOW_LEN), flat) is None
    a = rng.standard_normal(WINDOW_LEN)
    assert beat_correlation(a, a) == pytest.approx(1.0)


def test_std_helper_equals_numpy_bit_for_bit() -> None:
    rng = np.random.default_rng(13)
    for n in [*range(1, 30), 901, 902]:
        for k in range(10):
            x = rng.standard_normal(n) * 300.0
            if k % 2:
                x = np.round(x)  # ties
            assert _mean_std(x) == (float(np.mean(x)), float(np.std(x)))
