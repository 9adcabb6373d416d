"""Decision-rule choice of the waveform AF tuner (tools.af.wave_mlp): bound first, then F1."""

from __future__ import annotations

import numpy as np

from tools.af.wave import false_calls, record_call
from tools.af.wave_mlp import choose_rule


def test_record_is_called_only_after_k_consecutive_windows_reach_p_on() -> None:
    p = np.array([0.95, 0.2, 0.95, 0.96, 0.97])
    assert record_call(p, 0.9, 3)
    assert not record_call(p, 0.9, 4)
    assert not record_call(p, 0.99, 1)


def test_false_calls_count_each_confirmed_run_outside_af_once() -> None:
    p = np.array([0.95, 0.95, 0.95, 0.1, 0.95, 0.95, 0.95, 0.95])
    truth = np.array([False, False, False, False, True, True, True, True])
    assert false_calls(p, truth, 0.9, 2) == 1


def test_rule_keeps_the_false_call_bound_before_maximising_f1() -> None:
    # CinC: AF recordings reach 0.9 in 2 windows, a non-AF one once
    cinc = [np.array([0.92, 0.93, 0.5]), np.array([0.95, 0.91]), np.array([0.91, 0.2, 0.3])]
    truth = [True, True, False]
    # one hour of mitdb non-AF windows (1200 x 3 s) with one isolated 0.95 window
    mit_p = np.full(1200, 0.05)
    mit_p[600] = 0.95
    p_on, k_on, _gate, score = choose_rule(cinc, truth, [mit_p], [np.zeros(1200, dtype=bool)])
    assert k_on >= 2  # k_on 1 would raise 1 false call in the hour (bound 0.1 per hour)
    assert p_on <= 0.91
    assert score == 1.0
