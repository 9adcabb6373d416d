"""The VF / VT window features, bit for bit against a straightforward reference.

:func:`agent.rhythm.vf.vf_window_features` and
:func:`agent.rhythm.ventricular.vt_window_features` cache what depends only on the rate and the
window length (band masks as slices, the TCSC taper, the resampling ratio and filter, the
autocorrelation's overlap divisor) and call NumPy's reductions directly (issue 11: the live
agent's CPU). The reference below is the plain formulation they were written from (SciPy's
public ``resample_poly`` and ``sosfiltfilt``, boolean masks, ``np.mean`` / ``np.std``); every
feature must be *equal*, not close: the detectors' votes, and so the alarms, must not move.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import wfdb
from numpy.typing import NDArray
from scipy import signal

from agent.rhythm.ventricular import vt_window_features
from agent.rhythm.vf import MARGIN_S, vf_resample_ratio, vf_window_features

CANONICAL = 125.0
SOS = signal.butter(2, (1.0, 30.0), btype="bandpass", fs=CANONICAL, output="sos")


def _ref_prep(
    raw: NDArray[np.float64], fs: float, window_s: float
) -> tuple[NDArray[np.float64], float]:
    frac = Fraction(CANONICAL / fs).limit_denominator(256)
    up, down = frac.numerator, frac.denominator
    fs_c = fs * up / down
    y = raw - float(np.mean(raw))
    if up != down:
        y = signal.resample_poly(y, up, down)
    y = signal.sosfiltfilt(SOS, y)
    return y[-round(window_s * fs_c) :], fs_c


def _ref_tcsc(y: NDArray[np.float64], fs: float) -> float:
    blk, step, taper_n = round(3.0 * fs), round(1.0 * fs), round(0.25 * fs)
    w = np.ones(blk)
    ramp = 0.5 * (1.0 - np.cos(np.pi * np.arange(taper_n) / taper_n))
    w[:taper_n] = ramp
    w[-taper_n:] = ramp[::-1]
    blocks = np.lib.stride_tricks.sliding_window_view(y, blk)[::step]
    segs = np.abs(blocks * w)
    mx = segs.max(axis=1, keepdims=True)
    mx[mx == 0.0] = 1.0
    return float(np.mean(segs / mx > 0.2)) * 100.0


def _ref_leak(y: NDArray[np.float64]) -> float:
    dsum = float(np.sum(np.abs(np.diff(y))))
    period = math.floor(math.pi * float(np.sum(np.abs(y))) / max(dsum, 1e-12) + 0.5)
    period = min(max(period, 1), y.size - 1)
    a, b = y[period:], y[:-period]
    return float(np.sum(np.abs(a + b)) / max(float(np.sum(np.abs(a) + np.abs(b))), 1e-12))


def _ref_features(y: NDArray[np.float64], fs: float) -> NDArray[np.float64]:
    n = y.size
    f = np.fft.rfftfreq(n, 1.0 / fs)
    spec = np.abs(np.fft.rfft(y * np.hamming(n)))
    power = spec**2
    hf = float(np.sum(power[(f >= 12.0) & (f <= 30.0)]))
    full = float(np.sum(power[(f >= 1.0) & (f <= 30.0)]))
    spec[spec < 0.05 * spec.max()] = 0.0
    in_peak = (f >= 0.5) & (f <= 9.0)
    peak_hz = float(f[in_peak][np.argmax(spec[in_peak])])
    tot_m = (f >= 0.5) & (f <= min(20.0 * peak_hz, 0.5 * fs))
    tot = max(float(np.sum(spec[tot_m])), 1e-12)
    a2 = float(np.sum(spec[(f >= 0.7 * peak_hz) & (f <= 1.4 * peak_hz)])) / tot
    fsmn = float(np.sum(spec[tot_m] * f[tot_m])) / tot / max(peak_hz, 1e-6)
    tau = round(0.5 * fs)
    z = (y - y.min()) / max(float(np.ptp(y)), 1e-12)
    ix = np.minimum((z * 40).astype(np.int64), 39)
    psr = np.count_nonzero(np.bincount(ix[tau:] * 40 + ix[:-tau], minlength=1600)) / 1600
    dev = y - float(np.mean(y))
    m2 = max(float(np.mean(dev**2)), 1e-12)
    kurt = float(np.mean(np.square(dev**2))) / m2**2 - 3.0
    return np.array(
        [
            _ref_tcsc(y, fs),
            _ref_leak(y),
            a2,
            fsmn,
            peak_hz,
            psr,
            hf / max(full, 1e-12),
            kurt,
            math.log10(max(float(np.std(y)), 1e-3)),
        ]
    )


def _ref_extra(y: NDArray[np.float64], fs: float) -> NDArray[np.float64]:
    y = y - float(np.mean(y))
    n = y.size
    acf = np.fft.irfft(np.abs(np.fft.rfft(y, 2 * n)) ** 2)[:n]
    acf0 = max(float(acf[0]), 1e-12)
    lo, hi = round(0.25 * fs), min(round(1.5 * fs), n - 1)
    seg = acf[lo : hi + 1] / acf0 * n / (n - np.arange(lo, hi + 1))
    k = int(np.argmax(seg))
    std = max(float(np.std(y)), 1e-12)
    mean_freq = float(np.mean(np.abs(np.diff(y)))) * fs / (2.0 * math.pi * std)
    return np.array([float(seg[k]), 60.0 * fs / (lo + k), mean_freq])


def ref_vf(raw: NDArray[np.float64], fs: float, window_s: float) -> NDArray[np.float64]:
    """The nine VF features, written plainly."""
    y, fs_c = _ref_prep(raw, fs, window_s)
    return _ref_features(y, fs_c)


def ref_vt(raw: NDArray[np.float64], fs: float, window_s: float) -> NDArray[np.float64]:
    """The twelve VT features, written plainly."""
    y, fs_c = _ref_prep(raw, fs, window_s)
    return np.concatenate([_ref_features(y, fs_c), _ref_extra(y, fs_c)])


def _windows(
    x: NDArray[np.float64], fs: float, window_s: float, hops: int
) -> list[NDArray[np.float64]]:
    need = round((window_s + MARGIN_S) * fs)
    hop = round(fs)
    return [x[i * hop : i * hop + need] for i in range(hops) if i * hop + need <= x.size]


RATES = (100.0, 125.0, 128.0, 130.0, 250.0, 360.0, 500.0, 1000.0)


@pytest.mark.parametrize("fs", RATES)
def test_random_windows_are_bit_for_bit(fs: float) -> None:
    rng = np.random.default_rng(int(fs))
    for trial in range(6):
        scale = (5.0, 50.0, 300.0, 2000.0, 1e-9, 0.0)[trial]
        for window_s, fn, ref in (
            (6.0, vf_window_features, ref_vf),
            (4.0, vt_window_features, ref_vt),
        ):
            n = round((window_s + MARGIN_S) * fs)
            x = rng.normal(0.0, scale, n) + rng.normal(0.0, 100.0)
            if trial == 2:  # sharp spikes on a quiet baseline, as QRS complexes are
                x[:: round(0.8 * fs)] += 1500.0
            got, want = fn(x, fs, window_s), ref(x, fs, window_s)
            assert np.array_equal(got, want), (fs, trial, window_s, got - want)


@pytest.mark.parametrize("fs", [130.0, 250.0, 360.0])
def test_resample_ratio_is_the_reduced_fraction(fs: float) -> None:
    frac = Fraction(CANONICAL / fs).limit_denominator(256)
    assert vf_resample_ratio(fs) == (frac.numerator, frac.denominator)


def _read(
    path: Path, start_s: float, stop_s: float, fs_out: float | None
) -> tuple[NDArray[np.float64], float]:
    fs = float(wfdb.rdheader(str(path)).fs)
    rec = wfdb.rdrecord(
        str(path), channels=[0], sampfrom=round(start_s * fs), sampto=round(stop_s * fs)
    )
    x = np.asarray(rec.p_signal[:, 0], dtype=np.float64) * 1000.0
    x = x[np.isfinite(x)]
    if fs_out is None:
        return x, fs
    frac = Fraction(fs_out / fs).limit_denominator(1000)
    return signal.resample_poly(x, frac.numerator, frac.denominator), fs_out


@pytest.mark.parametrize(
    ("record", "start_s", "fs_out"),
    [
        ("mitdb/100", 60.0, None),
        ("mitdb/100", 60.0, 130.0),
        ("mitdb/119", 300.0, 130.0),
        ("vfdb/418", 600.0, None),
        ("vfdb/418", 600.0, 130.0),
        ("vfdb/425", 925.0, 130.0),
        ("nstdb/118e06", 420.0, 130.0),
    ],
)
def test_real_windows_are_bit_for_bit(
    data_dir: Path, record: str, start_s: float, fs_out: float | None
) -> None:
    x, fs = _read(data_dir / record, start_s, start_s + 20.0, fs_out)
    for window_s, fn, ref in ((6.0, vf_window_features, ref_vf), (4.0, vt_window_features, ref_vt)):
        for w in _windows(x, fs, window_s, 12):
            got, want = fn(w, fs, window_s), ref(w, fs, window_s)
            assert np.array_equal(got, want), (record, window_s, got - want)
