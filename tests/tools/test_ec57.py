"""EC57 beat matching and reference loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tools.ec57 import BEAT_SYMBOLS, MatchResult, gross, load_reference_beats, match_beats

FS = 360.0
W = round(0.150 * FS)  # 54 samples: the 150 ms window at 360 Hz


def idx(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def test_perfect_match() -> None:
    res = match_beats(idx(100, 500, 900), idx(100, 502, 898), FS)
    assert (res.tp, res.fn, res.fp) == (3, 0, 0)
    assert res.se_pct == res.ppv_pct == 100.0
    assert res.der_pct == 0.0
    np.testing.assert_allclose(res.timing_errors_ms, [0.0, 2000 / 360, -2000 / 360])


def test_missed_beat_is_a_false_negative() -> None:
    res = match_beats(idx(100, 500, 900), idx(100, 900), FS)
    assert (res.tp, res.fn, res.fp) == (2, 1, 0)
    assert res.fn_idx.tolist() == [500]
    assert res.se_pct == pytest.approx(200 / 3)
    assert res.ppv_pct == 100.0


def test_extra_detection_is_a_false_positive() -> None:
    res = match_beats(idx(100, 900), idx(100, 500, 900), FS)
    assert (res.tp, res.fn, res.fp) == (2, 0, 1)
    assert res.fp_idx.tolist() == [500]
    assert res.ppv_pct == pytest.approx(200 / 3)
    assert res.der_pct == pytest.approx(50.0)


def test_window_edge() -> None:
    inside = match_beats(idx(1000), idx(1000 + W), FS)
    outside = match_beats(idx(1000), idx(1000 + W + 1), FS)
    assert (inside.tp, inside.fn, inside.fp) == (1, 0, 0)
    assert (outside.tp, outside.fn, outside.fp) == (0, 1, 1)
    early = match_beats(idx(1000), idx(1000 - W - 1), FS)
    assert (early.tp, early.fn, early.fp) == (0, 1, 1)


def test_duplicate_detections_count_once() -> None:
    res = match_beats(idx(1000), idx(995, 1003, 1010), FS)
    assert (res.tp, res.fn, res.fp) == (1, 0, 2)
    assert res.timing_errors_ms.tolist() == [pytest.approx(3000 / 360)]


def test_one_detection_between_two_beats_matches_the_closer() -> None:
    res = match_beats(idx(1000, 1080), idx(1050), FS)
    assert (res.tp, res.fn, res.fp) == (1, 1, 0)
    assert res.fn_idx.tolist() == [1000]


def test_matching_is_one_to_one_not_first_come() -> None:
    """Greedy-by-distance: a detection is not stolen by an earlier, farther beat."""
    res = match_beats(idx(1000, 1060), idx(1040, 1062), FS)
    assert (res.tp, res.fn, res.fp) == (2, 0, 0)


def test_empty_inputs() -> None:
    assert match_beats(idx(), idx(), FS) == MatchResult(0, 0, 0)
    res = match_beats(idx(), idx(5), FS)
    assert (res.tp, res.fn, res.fp) == (0, 0, 1)
    assert res.se_pct == 100.0
    assert res.ppv_pct == 0.0
    res = match_beats(idx(5), idx(), FS)
    assert (res.tp, res.fn, res.fp) == (0, 1, 0)


def test_bad_rate_raises() -> None:
    with pytest.raises(ValueError, match="positive"):
        match_beats(idx(1), idx(1), 0.0)


def test_gross_sums_counts() -> None:
    a = match_beats(idx(100, 500), idx(100), FS)
    b = match_beats(idx(100), idx(100, 700), FS)
    total = gross([a, b])
    assert (total.tp, total.fn, total.fp) == (2, 1, 1)
    assert total.timing_errors_ms.size == 2
    assert total.se_pct == pytest.approx(200 / 3)


def test_beat_symbols() -> None:
    assert {"N", "V", "/", "f", "Q", "!"} <= BEAT_SYMBOLS
    assert not {"+", "~", "|", '"', "x", "["} & BEAT_SYMBOLS
    assert len(BEAT_SYMBOLS) == 20


def test_reference_excludes_ventricular_flutter(mitdb: Path) -> None:
    """Record 207 has VFL episodes (flutter waves `!` inside them are not scored)."""
    ref = load_reference_beats(mitdb / "207")
    assert ref.excluded, "207 has (VFL episodes"
    for start, end in ref.excluded:
        assert not np.any((ref.beat_idx >= start) & (ref.beat_idx < end))
    assert "!" not in ref.symbols
    plain = load_reference_beats(mitdb / "100")
    assert plain.excluded == ()
    assert len(plain.beat_idx) == 2273
