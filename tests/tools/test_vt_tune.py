"""VT tuning helpers (tools.vf.vt): parameter JSON and the gated window probability."""

from __future__ import annotations

import json
import math

import numpy as np

from agent.rhythm.ventricular import MEAN_FREQ_IDX, N_VT_FEATURES, VF_LEAK_IDX, VtParams
from tools.vf.dataset import RecordData
from tools.vf.vt import VtWindows, params_from_json, params_json, window_probability


def test_parameters_survive_json_with_and_without_a_gate() -> None:
    for gate in (6.0, math.inf):
        p = VtParams(max_mean_freq_hz=gate, threshold=0.7, k_on=5, n_on=5)
        d = json.loads(json.dumps(params_json(p)))  # strict JSON: no Infinity
        assert d["max_mean_freq_hz"] == (None if gate == math.inf else 6.0)
        assert params_from_json(d) == p
    for leak in (0.65, math.inf):
        p = VtParams(max_mean_freq_hz=6.0, max_vf_leak=leak)
        d = json.loads(json.dumps(params_json(p)))
        assert d["max_vf_leak"] == (None if leak == math.inf else 0.65)
        assert params_from_json(d) == p


def test_windows_above_the_gate_or_below_the_amplitude_floor_do_not_vote() -> None:
    feats = np.zeros((3, N_VT_FEATURES))
    feats[:, 8] = 2.5  # log10 band std, µV: well above the asystole floor
    feats[:, MEAN_FREQ_IDX] = (4.0, 7.0, 4.0)
    feats[2, 8] = -1.0  # near flat
    rec = RecordData("x", "y", 250.0, np.zeros(10), (), (), ())
    ws = VtWindows(rec, np.arange(3), feats, np.zeros(3), np.zeros(3))
    p = VtParams(intercept=3.0, max_mean_freq_hz=6.0)  # logistic 0.95 everywhere
    prob = window_probability(ws, p)
    assert prob[0] == np.float64(1.0 / (1.0 + math.exp(-3.0)))
    assert prob[1] == 0.0
    assert prob[2] == 0.0
    assert window_probability(ws, VtParams(intercept=3.0))[1] > 0.9


def test_windows_above_the_leakage_gate_do_not_vote() -> None:
    feats = np.zeros((2, N_VT_FEATURES))
    feats[:, 8] = 2.5
    feats[:, MEAN_FREQ_IDX] = 4.0
    feats[:, VF_LEAK_IDX] = (0.6, 0.7)  # a VT-like window, an electrode-motion-like one
    rec = RecordData("x", "y", 250.0, np.zeros(10), (), (), ())
    ws = VtWindows(rec, np.arange(2), feats, np.zeros(2), np.zeros(2))
    gated = window_probability(ws, VtParams(intercept=3.0, max_vf_leak=0.65))
    assert gated[0] > 0.9
    assert gated[1] == 0.0
    assert window_probability(ws, VtParams(intercept=3.0))[1] > 0.9
