"""LeadPolarityMonitor on synthetic beat windows: a reversed lead, and a BBB lead that is not."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from agent.inference.beat_features import (
    MODEL_FS_HZ,
    POLARITY_BEATS,
    POLARITY_QRS_SPAN,
    POLARITY_T_SPAN,
    WINDOW_LEN,
    WINDOW_PRE_S,
    LeadPolarityMonitor,
    wave_polarity,
)

R_AT = round(WINDOW_PRE_S * MODEL_FS_HZ)


def beat(qrs: float, t: float) -> NDArray[np.float32]:
    """A window with an R wave of height ``qrs`` and a T wave of height ``t`` 300 ms later."""
    n = np.arange(WINDOW_LEN, dtype=np.float64)
    w = qrs * np.exp(-0.5 * ((n - R_AT) / 2.0) ** 2)
    w -= 0.25 * qrs * np.exp(-0.5 * ((n - R_AT - 4) / 1.5) ** 2)  # a small S wave
    w += t * np.exp(-0.5 * ((n - R_AT - 0.3 * MODEL_FS_HZ) / 6.0) ** 2)
    return w.astype(np.float32)


def reversed_now(lead: LeadPolarityMonitor) -> bool:
    """The state, read afresh (``mypy`` would narrow the attribute after an assert)."""
    return lead.looks_reversed


def test_wave_polarity_of_upright_and_reversed_beats() -> None:
    w = beat(3.0, 1.0)
    assert wave_polarity(w, POLARITY_QRS_SPAN) > 0.5
    assert wave_polarity(w, POLARITY_T_SPAN) > 0.9
    assert wave_polarity(-w, POLARITY_QRS_SPAN) < -0.5
    assert wave_polarity(-w, POLARITY_T_SPAN) < -0.9
    assert wave_polarity(np.zeros(WINDOW_LEN, np.float32), POLARITY_QRS_SPAN) == 0.0


def test_a_reversed_lead_looks_reversed_after_32_beats_until_put_back() -> None:
    lead = LeadPolarityMonitor()
    changed = [lead.push(-beat(3.0, 1.0), float(k)) for k in range(POLARITY_BEATS)]
    assert changed == [False] * (POLARITY_BEATS - 1) + [True]
    assert reversed_now(lead)
    assert lead.episodes == [(POLARITY_BEATS - 1.0, None)]
    # electrodes put back: once upright beats are the median it stops, once
    changed = [lead.push(beat(3.0, 1.0), 100.0 + k) for k in range(POLARITY_BEATS)]
    assert sum(changed) == 1
    assert not reversed_now(lead)
    assert lead.episodes[0][1] == 100.0 + changed.index(True)


def test_a_negative_qrs_with_an_upright_t_wave_is_not_a_reversed_lead() -> None:
    """Bundle-branch block or pacing: QRS negative, T wave discordant (upright)."""
    lead = LeadPolarityMonitor()
    assert not any(lead.push(beat(-3.0, 1.0), float(k)) for k in range(3 * POLARITY_BEATS))
    assert lead.episodes == []
