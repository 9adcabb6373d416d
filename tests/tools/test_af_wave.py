"""tools.af.wave: record calls, false calls and F1 as the tuning uses them."""

from __future__ import annotations

import neurokit2 as nk
import numpy as np
import pytest

from agent.rhythm.af_wave import (
    AF_WAVE_BEATS,
    AF_WAVE_HOP_BEATS,
    N_AF_WAVE_FEATURES,
    POST_S,
    PRE_S,
)
from tools.af.wave import AgentBeats, beat_windows, f1, false_calls, record_call


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


@pytest.mark.parametrize("window_beats", [13, AF_WAVE_BEATS, 25])
def test_beat_windows_cut_the_asked_number_of_beats_every_hop(window_beats: int) -> None:
    """A 60 s simulated ECG at 250 Hz (NeuroKit2 ECGSYN, 75 bpm): every window holds the last
    ``window_beats`` beats at a hop of 4 beats, counts its own ectopic beats, and only the
    windows whose first beat lacks its own segment (``PRE_S`` before the R-peak) or whose last
    beat's segment runs past the signal are left out (:func:`agent.rhythm.af_wave.window_start`)."""
    fs = 250
    x_mv = nk.ecg_simulate(duration=60, sampling_rate=fs, heart_rate=75, random_state=3)
    _, info = nk.ecg_peaks(nk.ecg_clean(x_mv, sampling_rate=fs), sampling_rate=fs)
    r = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
    ectopic = np.zeros(r.size, dtype=bool)
    ectopic[::5] = True
    beats = AgentBeats(r, ectopic, np.asarray(x_mv, dtype=np.float64) * 1000.0, float(fs))

    feats, spans, n_ect = beat_windows(beats, window_beats)

    pre, post = round(PRE_S * fs), round(POST_S * fs) + 1
    ends = [
        e
        for e in range(window_beats, r.size + 1, AF_WAVE_HOP_BEATS)
        if r[e - window_beats] >= pre and r[e - 1] + post <= x_mv.size
    ]
    assert r.size >= 70
    assert feats.shape == (len(ends), N_AF_WAVE_FEATURES)
    assert spans.tolist() == [[int(r[e - window_beats]), int(r[e - 1])] for e in ends]
    assert n_ect.tolist() == [int(ectopic[e - window_beats : e].sum()) for e in ends]
    assert np.isfinite(feats[:, :4]).all()  # the RR features of every window
