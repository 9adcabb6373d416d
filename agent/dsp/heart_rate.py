"""Heart rate averaged the way bedside monitors do it.

IEC 60601-2-27:2011, 201.7.9.2.9.101 b) 3) requires a monitor to disclose how it averages
heart rate. The scheme used here is the common one (GE Marquette monitors disclose exactly
this): the mean of the last 12 RR intervals; when the rhythm is slow (each of the last 3 RR
intervals longer than 1.2 s) the mean of the last 4, so that the displayed rate follows a
bradycardia within a few beats instead of a dozen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

HR_AVERAGE_BEATS: Final = 12
"""RR intervals averaged in the normal case (IEC 60601-2-27 disclosure, GE scheme)."""

HR_SLOW_AVERAGE_BEATS: Final = 4
"""RR intervals averaged when the rhythm is slow."""

HR_SLOW_RR_MS: Final = 1200.0
"""RR above this (HR below 50 bpm) in each of the last 3 intervals selects the short average."""

HR_SLOW_CHECK_BEATS: Final = 3

HR_MIN_INTERVALS: Final = 4
"""Fewer RR intervals than this give no heart rate (start-up, after a lead change)."""


def hr_bpm_monitor(rr_ms: Sequence[float]) -> float | None:
    """Return the monitor-averaged heart rate from recent RR intervals.

    Parameters
    ----------
    rr_ms
        RR intervals in milliseconds, oldest first, shape ``(n_intervals,)``; only the last 12
        are used.

    Returns
    -------
    float | None
        Heart rate in beats per minute, ``60000 / mean(RR)`` over the last 12 intervals, or
        over the last 4 when each of the last 3 exceeds 1200 ms; None when fewer than 4
        intervals are available or any used interval is not positive.

    References
    ----------
    IEC 60601-2-27:2011, 201.7.9.2.9.101 b) 3), heart rate averaging disclosure.
    """
    if len(rr_ms) < HR_MIN_INTERVALS:
        return None
    recent = list(rr_ms[-HR_SLOW_CHECK_BEATS:])
    n = HR_SLOW_AVERAGE_BEATS if all(rr > HR_SLOW_RR_MS for rr in recent) else HR_AVERAGE_BEATS
    used = list(rr_ms[-n:])
    if any(rr <= 0 for rr in used):
        return None
    return 60_000.0 / (sum(used) / len(used))
