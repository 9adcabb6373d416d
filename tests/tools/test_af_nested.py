"""Nested choice of the AF episode rule (tools.af.nested), on hand-made counts."""

from __future__ import annotations

import pytest

from tools.af.evaluate import Counts
from tools.af.nested import nested_choice


def _counts(false_episodes: int, hours: float, delays_s: list[float]) -> Counts:
    """A record with ``len(delays_s)`` long AF episodes found after those delays."""
    n = len(delays_s)
    return Counts(
        ref_long_episodes=n,
        ref_long_episodes_detected=n,
        det_episodes=n + false_episodes,
        det_episodes_true=n,
        hours=hours,
        long_delays_s=list(delays_s),
    )


def test_each_fold_is_scored_by_the_rule_chosen_without_it() -> None:
    """Rule 0 is fast and false-alarm prone, rule 1 slow and quiet, rule 2 in between.

    Without fold "a" (records c, d: 20 h), rule 0 has 0.2 false/h (over 0.065), rule 1 none,
    rule 2 0.05 and more episodes within 60 s than rule 1: rule 2 is chosen and fold "a" is
    scored with it. Without fold "b" (records a1, a2) rule 2 has 0.1 false/h: rule 1.
    """
    rec = {
        # rule 0
        (0, "a1"): _counts(2, 10.0, [20.0]),
        (0, "a2"): _counts(1, 10.0, [25.0]),
        (0, "c"): _counts(2, 10.0, [30.0]),
        (0, "d"): _counts(2, 10.0, [30.0]),
        # rule 1
        (1, "a1"): _counts(0, 10.0, [90.0]),
        (1, "a2"): _counts(0, 10.0, [95.0]),
        (1, "c"): _counts(0, 10.0, [70.0]),
        (1, "d"): _counts(0, 10.0, [80.0]),
        # rule 2
        (2, "a1"): _counts(1, 10.0, [40.0]),
        (2, "a2"): _counts(1, 10.0, [45.0]),
        (2, "c"): _counts(1, 10.0, [50.0]),
        (2, "d"): _counts(0, 10.0, [65.0]),
    }
    fold_of = {"a1": "a", "a2": "a", "c": "b", "d": "b"}
    out = nested_choice(rec, fold_of, 3, false_max_per_h=0.065)
    assert out.per_fold == {"a": 2, "b": 1}
    # fold a through rule 2: 2 false in 20 h, both found within 60 s; fold b through rule 1:
    # none false, both later than 60 s.
    assert out.held_out["false_episodes"] == 2
    assert out.held_out["false_alarms_per_hour"] == 0.05
    assert out.held_out["long_within_60s_pct"] == 50.0
    # On all four records rule 2 has 3 false in 40 h (0.075 / h): only rule 1 is quiet enough.
    assert out.on_all == 1


def test_no_rule_under_the_ceiling_is_an_error() -> None:
    rec = {(0, "a"): _counts(5, 10.0, [20.0]), (0, "b"): _counts(5, 10.0, [20.0])}
    with pytest.raises(ValueError, match="false AF episodes per hour"):
        nested_choice(rec, {"a": "x", "b": "y"}, 1)
