"""Decision-rule choice of the waveform AF tuner (tools.af.wave_mlp): bound first, then F1."""

from __future__ import annotations

import numpy as np

from agent.rhythm.af_wave import AF_WAVE_FEATURE_NAMES, N_AF_WAVE_FEATURES
from tools.af.wave import RecordWindows, false_calls, record_call
from tools.af.wave_mlp import choose_rule, gated


def test_record_is_called_only_after_k_consecutive_windows_reach_p_on() -> None:
    p = np.array([0.95, 0.2, 0.95, 0.96, 0.97])
    assert record_call(p, 0.9, 3)
    assert not record_call(p, 0.9, 4)
    assert not record_call(p, 0.99, 1)


def test_false_calls_count_each_confirmed_run_outside_af_once() -> None:
    p = np.array([0.95, 0.95, 0.95, 0.1, 0.95, 0.95, 0.95, 0.95])
    truth = np.array([False, False, False, False, True, True, True, True])
    assert false_calls(p, truth, 0.9, 2) == 1


def _rec(
    name: str, af: bool, p_corr: float, n: int, window_af: bool | None = None
) -> RecordWindows:
    feats = np.zeros((n, N_AF_WAVE_FEATURES))
    feats[:, AF_WAVE_FEATURE_NAMES.index("p_corr")] = p_corr
    labels = None if window_af is None else np.full(n, window_af)
    return RecordWindows(
        name, af, "mitdb" if labels is not None else "A", feats, np.zeros(n, np.int64), labels
    )


def test_rule_keeps_the_false_call_bound_before_maximising_f1() -> None:
    # CinC: AF recordings reach 0.9 in 2 windows, a non-AF one once
    cinc_p = [np.array([0.92, 0.93, 0.5]), np.array([0.95, 0.91]), np.array([0.91, 0.2, 0.3])]
    cinc = [
        _rec(str(i), af, 0.1, p.size)
        for i, (p, af) in enumerate(zip(cinc_p, [True, True, False], strict=True))
    ]
    # one hour of mitdb non-AF windows (1200 x 3 s) with one isolated 0.95 window
    mit_p = np.full(1200, 0.05)
    mit_p[600] = 0.95
    (p_on, k_on, _gate, _ect), score = choose_rule(
        cinc, cinc_p, [_rec("m", False, 0.1, 1200, False)], [mit_p]
    )
    assert k_on >= 2  # k_on 1 would raise 1 false call in the hour (bound 0.1 per hour)
    assert p_on <= 0.91
    assert score == 1.0


def test_rule_uses_the_ectopy_veto_when_false_calls_come_from_ectopic_windows() -> None:
    # every CinC AF window is ectopy-free; the mitdb false run is three windows of 3 V beats
    cinc_p = [np.array([0.99, 0.99, 0.99]), np.array([0.2, 0.3, 0.2])]
    cinc = [_rec("a", True, 0.1, 3), _rec("n", False, 0.1, 3)]
    mit = _rec("m", False, 0.1, 1200, False)
    mit_p = np.full(1200, 0.05)
    mit_p[600:603] = 0.99
    mit.n_ectopic[600:603] = 3
    (_p_on, _k_on, _gate, max_ectopic), score = choose_rule(cinc, cinc_p, [mit], [mit_p])
    assert max_ectopic < 3
    assert score == 1.0
    assert gated(mit_p, mit, 1.01, max_ectopic)[600:603].tolist() == [0.0, 0.0, 0.0]
