"""Episode scoring of VF detector output: sensitivity, onset-to-alarm delay, false alarms.

Definitions (used by tuning and by the report alike):

- A **VF episode** is a maximal stretch annotated ``VF``, ``VFIB`` or ``VFL`` (adjacent
  labels merged). A **VT episode** is a stretch annotated ``VT``.
- The detector's **alarm time** is the ``decided_idx`` of a ``VF`` change: the moment the
  last sample of the deciding window arrived (the alarm engine adds no delay).
- An episode ``[a, b)`` is **detected** when the detector is in the VF state at some alarm
  time inside ``[a, b + window)``: a window ending up to one window length after the episode
  still saw it. Its **delay** is the first such time minus ``a`` (0 if the state was already
  VF when the episode began).
- A ``VF`` change whose alarm time lies in no VF episode's ``[a, b + window)`` is a **false
  VF alarm**; those that lie in a VT episode's ``[a, b + window)`` are counted apart (a VF
  alarm during VT is a ventricular tachyarrhythmia alarm, not a false one, but it is not VF
  either). The rate is per hour of non-VF time.

This follows the spirit of AAMI EC57:2012 (section 4.4, VF episode sensitivity, and its
event-based counting), with the detection window stated above instead of EC57's overlap
rule, because an alarm (not a rhythm label) is what is scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tools.vf.dataset import RecordData

__all__ = [
    "DetectorChange",
    "EpisodeResult",
    "RecordScore",
    "score_changes",
    "simulate_votes",
]


@dataclass(frozen=True, slots=True)
class DetectorChange:
    """A state change as scored: ``rhythm`` (VF or none), onset and decision sample index."""

    rhythm: str
    onset_idx: int
    decided_idx: int


@dataclass(frozen=True, slots=True)
class EpisodeResult:
    """One annotated episode and how the detector met it.

    Attributes
    ----------
    kind : str
        ``VF`` (VF/VFL) or ``VT``.
    start_s, duration_s : float
        Annotated onset (s from the record start) and duration, s.
    detected : bool
        True if the detector was in VF at an alarm time inside ``[start, end + window)``.
    delay_s : float | None
        First such alarm time minus the onset, s (None if not detected).
    onset_error_s : float | None
        Detector's estimated onset minus the annotated onset, s, for episodes whose alarm was
        raised inside them (None otherwise).
    """

    kind: str
    start_s: float
    duration_s: float
    detected: bool
    delay_s: float | None
    onset_error_s: float | None


@dataclass(frozen=True, slots=True)
class RecordScore:
    """Scores of one record.

    Attributes
    ----------
    key : str
        ``db/name``.
    duration_h, non_vf_h : float
        Record length and its non-VF part, hours.
    episodes : tuple[EpisodeResult, ...]
        Every VF and VT episode.
    false_vf_alarms : int
        VF changes outside every VF and VT episode.
    vf_alarms_in_vt : int
        VF changes inside a VT episode (and no VF episode).
    """

    key: str
    duration_h: float
    non_vf_h: float
    episodes: tuple[EpisodeResult, ...]
    false_vf_alarms: int
    vf_alarms_in_vt: int


def simulate_votes(
    votes: NDArray[np.bool_],
    end_idx: NDArray[np.int64],
    win_n: int,
    k_on: int,
    n_on: int,
    n_off: int,
) -> list[DetectorChange]:
    """Replay :class:`agent.rhythm.vf.VfDetector`'s confirmation logic on window votes.

    Vectorised between state changes; gives the same changes as the streaming detector for
    the same votes (checked by ``tests/tools/test_vf_scoring.py``).

    Parameters
    ----------
    votes : NDArray[np.bool_]
        Per-window VF vote, shape ``(n_windows,)``.
    end_idx : NDArray[np.int64]
        One-past-last sample of each window, shape ``(n_windows,)``.
    win_n : int
        Window length in samples (for the onset estimate).
    k_on, n_on, n_off : int
        Confirmation counts (:class:`agent.rhythm.vf.VfParams`).

    Returns
    -------
    list[DetectorChange]
        Changes in order.
    """
    n = votes.size
    csum = np.concatenate([[0], np.cumsum(votes, dtype=np.int64)])
    # negrun[i]: consecutive negative votes ending at i.
    idx = np.arange(n)
    last_pos = np.maximum.accumulate(np.where(votes, idx, -1))
    negrun = idx - last_pos
    out: list[DetectorChange] = []
    s = 0  # votes considered from this window on (the deque is cleared at each offset)
    while s < n:
        i_all = np.arange(s, n)
        lo = np.maximum(s, i_all - n_on + 1)
        cnt = csum[i_all + 1] - csum[lo]
        hits = np.flatnonzero(cnt >= k_on)
        if hits.size == 0:
            break
        i = int(i_all[hits[0]])
        first = int(lo[hits[0]] + np.argmax(votes[lo[hits[0]] : i + 1]))
        out.append(DetectorChange("VF", max(0, int(end_idx[first]) - win_n // 2), int(end_idx[i])))
        offs = np.flatnonzero(negrun[i + 1 :] >= n_off)
        if offs.size == 0:
            break
        j = i + 1 + int(offs[0])
        last_vf = int(last_pos[j])
        out.append(
            DetectorChange("none", int(end_idx[last_vf]) if last_vf >= 0 else 0, int(end_idx[j]))
        )
        s = j + 1
    return out


def score_changes(
    record: RecordData, changes: list[DetectorChange], window_s: float
) -> RecordScore:
    """Score a record's detector changes against its rhythm annotations.

    Parameters
    ----------
    record : RecordData
        The record (rate, length, rhythm intervals).
    changes : list[DetectorChange]
        Detector output in order.
    window_s : float
        Detector window length, s: the grace after an episode's end.

    Returns
    -------
    RecordScore
        Episodes with detection and delay, false alarms.
    """
    fs = record.fs_hz
    n = record.ecg_uv.size
    lag = round(window_s * fs)
    # VF state intervals in alarm time.
    on_iv: list[tuple[int, int, int]] = []  # (decided_on, decided_off, onset_idx)
    cur: DetectorChange | None = None
    for c in changes:
        if c.rhythm == "VF" and cur is None:
            cur = c
        elif c.rhythm != "VF" and cur is not None:
            on_iv.append((cur.decided_idx, c.decided_idx, cur.onset_idx))
            cur = None
    if cur is not None:
        on_iv.append((cur.decided_idx, n + lag + 1, cur.onset_idx))
    vf_eps = record.vf_episodes
    vt_eps = record.vt_episodes
    results: list[EpisodeResult] = []
    for kind, eps in (("VF", vf_eps), ("VT", vt_eps)):
        for a, b in eps:
            hi = b + lag
            hit = [(max(on, a), onset, on) for on, off, onset in on_iv if on < hi and off > a]
            if hit:
                t, onset, on = min(hit)
                err = (onset - a) / fs if a <= on < hi else None
                results.append(EpisodeResult(kind, a / fs, (b - a) / fs, True, (t - a) / fs, err))
            else:
                results.append(EpisodeResult(kind, a / fs, (b - a) / fs, False, None, None))
    false_n = 0
    in_vt = 0
    for on, _, _ in on_iv:
        if any(a <= on < b + lag for a, b in vf_eps):
            continue
        if any(a <= on < b + lag for a, b in vt_eps):
            in_vt += 1
        else:
            false_n += 1
    vf_n = sum(b - a for a, b in vf_eps)
    return RecordScore(
        record.key, n / fs / 3600.0, (n - vf_n) / fs / 3600.0, tuple(results), false_n, in_vt
    )
