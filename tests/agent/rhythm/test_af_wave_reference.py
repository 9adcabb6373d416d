"""The AF waveform features, bit for bit against SciPy's public filter and Welch functions.

:func:`agent.rhythm.af_wave.af_wave_features` filters with a band-pass set up once per rate
(:class:`agent.dsp.zerophase.ZeroPhaseSos`) and estimates the f-wave spectrum with a Welch
estimator set up once per segment length (:class:`agent.dsp.spectral.WelchPsd`), instead of
``sosfiltfilt`` and ``welch`` on every window (issue 11: about half of the path's cost). The
features, and so the model's votes and the afib alarm, must not move: every feature must be
*equal* to the one computed with SciPy's public functions, on windows of real records.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import wfdb
from numpy.typing import NDArray
from scipy import signal

from agent.rhythm import af_wave
from agent.rhythm.af_wave import AF_WAVE_BEATS, af_wave_features, window_start

BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ")


def _plain_bandpass(fs_hz: float) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    sos = signal.butter(2, af_wave.BAND_HZ, btype="bandpass", fs=fs_hz, output="sos")
    return lambda x: np.asarray(signal.sosfiltfilt(sos, x))


class _PlainWelch:
    def __init__(self, nperseg: int, fs_hz: float) -> None:
        self.nperseg, self.fs_hz = nperseg, fs_hz
        self.freqs_hz = signal.welch(np.zeros(nperseg), fs=fs_hz, nperseg=nperseg)[0]

    def __call__(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(signal.welch(x, fs=self.fs_hz, nperseg=self.nperseg)[1])


def _windows(
    path: Path, start_s: float, stop_s: float
) -> list[tuple[NDArray[np.int64], NDArray[np.float64], int, float]]:
    rec = wfdb.rdrecord(str(path), channels=[0], physical=True)
    fs = float(rec.fs)
    raw = rec.p_signal[:, 0] * 1000.0  # mV -> µV
    ann = wfdb.rdann(str(path), "atr", sampfrom=round(start_s * fs), sampto=round(stop_s * fs))
    beat = [s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in BEAT_SYMBOLS]
    r = np.asarray(beat)
    out = []
    for i in range(0, r.size - AF_WAVE_BEATS, 4):
        beats = r[i : i + AF_WAVE_BEATS].astype(np.int64)
        first = window_start(int(beats[0]), fs)
        assert first is not None
        stop = int(beats[-1]) + round(af_wave.POST_S * fs) + 1
        out.append((beats, raw[first:stop].astype(np.float64), first, fs))
    return out


@pytest.mark.parametrize(
    ("record", "start_s"),
    [
        ("mitdb/201", 0.0),  # AF with aberrant beats
        ("mitdb/100", 60.0),  # sinus rhythm
        ("mitdb/208", 300.0),  # frequent PVCs and couplets
        ("svdb/800", 120.0),  # 128 Hz, SVTA
    ],
)
def test_real_windows_are_bit_for_bit(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, record: str, start_s: float
) -> None:
    windows = _windows(data_dir / record, start_s, start_s + 90.0)
    assert len(windows) >= 10
    got = [af_wave_features(*w) for w in windows]
    monkeypatch.setattr(af_wave, "_bandpass", _plain_bandpass)
    monkeypatch.setattr(af_wave, "_welch", _PlainWelch)
    want = [af_wave_features(*w) for w in windows]
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w), (record, g - w)
    # the f-wave features were computed, not left at their too-short defaults
    assert sum(g[-2] != 0.0 for g in got) >= len(got) // 2
