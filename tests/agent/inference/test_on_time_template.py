"""The on-time template: the patient's conducted beat, which ectopic beats cannot take over.

Synthetic windows: a conducted beat (narrow QRS) on time and a PVC (wide, inverted) early.
Where couplets outnumber the conducted beats (mitdb 208's V V N pattern) the model's running
template becomes the PVC; the on-time template stays the conducted beat.
"""

from __future__ import annotations

import numpy as np
import pytest

from agent.inference.beat_features import (
    ONTIME_RR_BEATS,
    WINDOW_LEN,
    BeatTemplateTracker,
    OnTimeTemplate,
    template_correlation,
)

_T = np.arange(WINDOW_LEN, dtype=np.float64)
# a conducted QRS (narrow, upright) and a PVC (wide, inverted, with a discordant T wave)
CONDUCTED = (
    np.exp(-0.5 * ((_T - 32) / 2.0) ** 2) + 0.2 * np.exp(-0.5 * ((_T - 60) / 6.0) ** 2)
).astype(np.float32)
PVC = (-np.exp(-0.5 * ((_T - 34) / 6.0) ** 2) + 0.4 * np.exp(-0.5 * ((_T - 62) / 7.0) ** 2)).astype(
    np.float32
)


def _couplets(n_cycles: int) -> list[tuple[np.ndarray, float]]:
    """(window, pre-RR s): conducted at 0.85 s after each pause, two PVCs at 0.5 s."""
    return [(CONDUCTED, 0.85), (PVC, 0.5), (PVC, 0.5)] * n_cycles


def test_couplets_take_over_the_running_template_not_the_on_time_one() -> None:
    """After 10 cycles of conducted-PVC-PVC, a conducted beat matches the running template
    poorly (it is the PVC's shape) and the on-time template at 1.0."""
    running, on_time = BeatTemplateTracker(), OnTimeTemplate()
    warm = [(CONDUCTED, 0.85)] * 6  # sinus rhythm first: the on-time baseline is 0.85 s
    for window, rr in warm + _couplets(10):
        running.push(window)
        on_time.push(window, rr)
    stacked = running.push(CONDUCTED)
    running_corr = template_correlation(stacked)
    assert running_corr is not None
    assert running_corr < 0.5
    assert on_time.correlation(CONDUCTED) == pytest.approx(1.0, abs=1e-6)
    pvc_corr = on_time.correlation(PVC)
    assert pvc_corr is not None
    assert pvc_corr < 0.5


def test_no_correlation_before_four_on_time_beats_and_after_a_reset() -> None:
    """The first ONTIME_RR_BEATS beats only set the rhythm; then four on-time windows."""
    t = OnTimeTemplate()
    for _ in range(ONTIME_RR_BEATS + 3):
        t.push(CONDUCTED, 0.8)
    assert t.correlation(CONDUCTED) is None
    t.push(CONDUCTED, 0.8)
    assert t.correlation(CONDUCTED) == pytest.approx(1.0, abs=1e-6)
    t.reset()
    assert t.correlation(CONDUCTED) is None


def test_couplets_from_the_first_beat_do_not_become_the_template() -> None:
    """A record that starts in couplets (mitdb 208 at 3-10 s): the conducted beat after
    each pause is the only one on time, so the template is the conducted beat."""
    t = OnTimeTemplate()
    for window, rr in _couplets(12):
        t.push(window, rr)
    assert t.correlation(CONDUCTED) == pytest.approx(1.0, abs=1e-6)


def test_a_lasting_faster_rhythm_is_on_time_again() -> None:
    """Sinus at 0.8 s, then a lasting rhythm at 0.5 s (early against 0.8 s): its first beats
    are left out; once it fills the last ONTIME_RR_BEATS intervals it is on time and, after
    another template's worth of beats, the template is its shape."""
    t = OnTimeTemplate()
    for _ in range(30):
        t.push(CONDUCTED, 0.8)
    for _ in range(ONTIME_RR_BEATS):
        t.push(PVC, 0.5)
    assert t.correlation(CONDUCTED) == pytest.approx(1.0, abs=1e-6)  # nothing early joined
    for _ in range(30):
        t.push(PVC, 0.5)
    assert t.correlation(PVC) == pytest.approx(1.0, abs=1e-6)
