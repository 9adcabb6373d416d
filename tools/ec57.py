"""AAMI EC57-style QRS detection scoring: reference beats, one-to-one matching, gross sums.

Conventions (stated once, used everywhere the project reports Se / +P):

- Reference beats are the annotations whose symbol is in :data:`BEAT_SYMBOLS` (every MIT-BIH
  beat label, plus ``!`` ventricular flutter waves).
- Ventricular flutter / fibrillation episodes are excluded from QRS scoring, as ANSI/AAMI
  EC57:2012 section 4.2.1 prescribes: an episode starts at a rhythm annotation (``+``) whose
  ``aux_note`` is ``(VFL`` or ``(VF`` and lasts up to the next rhythm annotation. Reference
  beats inside an excluded episode are dropped, and so are test detections inside it (they
  are neither true nor false positives).
- A detection matches a reference beat when they are at most ``window_s`` apart (150 ms in
  EC57); matching is one-to-one and greedy by smallest time difference, so a duplicate
  detection of one beat counts as one TP plus one FP.
- Gross statistics sum TP, FN and FP over records before computing the percentages
  (EC57 "gross" as opposed to "average").

References
----------
ANSI/AAMI EC57:2012, Testing and reporting performance results of cardiac rhythm and ST
segment measurement algorithms, sections 3.1 and 4.2.
Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia Database. IEEE Eng Med Biol Mag
2001;20(3):45-50. doi:10.1109/51.932724
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import wfdb
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

__all__ = [
    "BEAT_SYMBOLS",
    "EXCLUDED_RHYTHMS",
    "MATCH_WINDOW_S",
    "MatchResult",
    "ReferenceBeats",
    "gross",
    "load_reference_beats",
    "match_beats",
    "score_record",
]

BEAT_SYMBOLS: Final[frozenset[str]] = frozenset(
    "NLRBAaJSVrFejnE/fQ?"  # every MIT-BIH beat label is one character
    "!"  # ventricular flutter wave: a beat label in mitdb, scored only outside VF/VFL
)
"""MIT-BIH annotation symbols that mark a beat (PhysioNet ``ecgcodes``)."""

EXCLUDED_RHYTHMS: Final[frozenset[str]] = frozenset(["(VFL", "(VF"])
"""Rhythm ``aux_note`` values whose episodes EC57 excludes from QRS scoring (section 4.2.1)."""

MATCH_WINDOW_S: Final = 0.150
"""EC57 matching window: a detection within 150 ms of a reference beat is a true positive."""


@dataclass(frozen=True, slots=True)
class ReferenceBeats:
    """Reference beats of one record with its excluded (VF/VFL) intervals.

    Attributes
    ----------
    record : str
        Record name (``"100"``).
    fs_hz : float
        Sampling rate of the indices, Hz.
    beat_idx : NDArray[np.int64]
        Sample indices of the scored reference beats, shape ``(n_beats,)``, increasing.
    symbols : tuple[str, ...]
        Annotation symbol of each scored beat, length ``n_beats``.
    excluded : tuple[tuple[int, int], ...]
        Half-open sample intervals ``[start, end)`` excluded from scoring.
    n_samples : int
        Length of the record in samples.
    """

    record: str
    fs_hz: float
    beat_idx: NDArray[np.int64]
    symbols: tuple[str, ...]
    excluded: tuple[tuple[int, int], ...]
    n_samples: int

    def keep_mask(self, idx: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Return which of ``idx`` (sample indices, shape ``(n,)``) lie outside exclusions."""
        keep = np.ones(idx.shape, dtype=bool)
        for start, end in self.excluded:
            keep &= ~((idx >= start) & (idx < end))
        return keep


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Outcome of matching detections against reference beats.

    Attributes
    ----------
    tp : int
        Reference beats matched by a detection.
    fn : int
        Reference beats with no detection within the window.
    fp : int
        Detections matched to no reference beat.
    timing_errors_ms : NDArray[np.float64]
        ``test - reference`` in ms for each matched pair, shape ``(tp,)``.
    fn_idx : NDArray[np.int64]
        Sample indices of the missed reference beats, shape ``(fn,)``.
    fp_idx : NDArray[np.int64]
        Sample indices of the unmatched detections, shape ``(fp,)``.
    """

    tp: int
    fn: int
    fp: int
    # arrays take no part in ==: results compare by their counts
    timing_errors_ms: NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(0, dtype=np.float64), compare=False
    )
    fn_idx: NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64), compare=False
    )
    fp_idx: NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64), compare=False
    )

    @property
    def se_pct(self) -> float:
        """Sensitivity ``TP / (TP + FN)`` in percent (100 when there is no reference beat)."""
        n = self.tp + self.fn
        return 100.0 * self.tp / n if n else 100.0

    @property
    def ppv_pct(self) -> float:
        """Positive predictivity ``TP / (TP + FP)`` in percent (100 with no detection)."""
        n = self.tp + self.fp
        return 100.0 * self.tp / n if n else 100.0

    @property
    def der_pct(self) -> float:
        """Detection error rate ``(FN + FP) / (TP + FN)`` in percent."""
        n = self.tp + self.fn
        return 100.0 * (self.fn + self.fp) / n if n else 0.0

    def __add__(self, other: MatchResult) -> MatchResult:
        return MatchResult(
            tp=self.tp + other.tp,
            fn=self.fn + other.fn,
            fp=self.fp + other.fp,
            timing_errors_ms=np.concatenate([self.timing_errors_ms, other.timing_errors_ms]),
            fn_idx=np.zeros(0, dtype=np.int64),  # indices of different records do not add
            fp_idx=np.zeros(0, dtype=np.int64),
        )


def gross(results: Iterable[MatchResult]) -> MatchResult:
    """Sum match results over records (EC57 gross statistics).

    Parameters
    ----------
    results
        Per-record results.

    Returns
    -------
    MatchResult
        Summed TP, FN, FP and the concatenated timing errors (ms); the per-record
        ``fn_idx`` / ``fp_idx`` are dropped.
    """
    total = MatchResult(tp=0, fn=0, fp=0)
    for result in results:
        total = total + result
    return total


def match_beats(
    ref_idx: NDArray[np.integer],
    test_idx: NDArray[np.integer],
    fs_hz: float,
    window_s: float = MATCH_WINDOW_S,
) -> MatchResult:
    """Match detections to reference beats one-to-one within a time window.

    Candidate pairs closer than ``window_s`` are taken greedily in order of increasing
    distance (ties: earlier reference first), so every reference beat and every detection
    is used at most once.

    Parameters
    ----------
    ref_idx
        Reference beat sample indices, shape ``(n_ref,)``, at ``fs_hz``.
    test_idx
        Detected beat sample indices, shape ``(n_test,)``, at ``fs_hz``.
    fs_hz
        Sampling rate of both index arrays, Hz.
    window_s
        Largest allowed ``|test - ref|`` for a match, seconds (150 ms in EC57); a pair exactly
        ``window_s`` apart matches.

    Returns
    -------
    MatchResult
        TP, FN, FP, the timing errors (ms) of matched pairs and the unmatched indices.

    Raises
    ------
    ValueError
        If ``fs_hz`` or ``window_s`` is not positive.
    """
    if fs_hz <= 0 or window_s <= 0:
        msg = f"fs_hz and window_s must be positive, got {fs_hz} and {window_s}"
        raise ValueError(msg)
    ref = np.sort(np.asarray(ref_idx, dtype=np.int64))
    test = np.sort(np.asarray(test_idx, dtype=np.int64))
    window_n = window_s * fs_hz
    # All candidate pairs: each reference beat against the detections within the window.
    lo = np.searchsorted(test, ref - window_n, side="left")
    hi = np.searchsorted(test, ref + window_n, side="right")
    counts = hi - lo
    pair_ref = np.repeat(np.arange(ref.size), counts)
    starts = np.repeat(lo, counts)
    offsets = np.arange(pair_ref.size) - np.repeat(np.cumsum(counts) - counts, counts)
    pair_test = starts + offsets
    dist = np.abs(test[pair_test] - ref[pair_ref])
    order = np.lexsort((pair_ref, dist))
    ref_used = np.zeros(ref.size, dtype=bool)
    test_used = np.zeros(test.size, dtype=bool)
    matched_ref: list[int] = []
    matched_test: list[int] = []
    for k in order.tolist():
        r, t = int(pair_ref[k]), int(pair_test[k])
        if ref_used[r] or test_used[t]:
            continue
        ref_used[r] = True
        test_used[t] = True
        matched_ref.append(r)
        matched_test.append(t)
    errors_ms = (test[matched_test] - ref[matched_ref]).astype(np.float64) * 1000.0 / fs_hz
    return MatchResult(
        tp=len(matched_ref),
        fn=int((~ref_used).sum()),
        fp=int((~test_used).sum()),
        timing_errors_ms=errors_ms,
        fn_idx=ref[~ref_used],
        fp_idx=test[~test_used],
    )


def load_reference_beats(record_path: str | Path) -> ReferenceBeats:
    """Load the scored reference beats of a WFDB record (``.atr`` annotations).

    Parameters
    ----------
    record_path
        Record path without extension (``shared/data/mitdb/100``).

    Returns
    -------
    ReferenceBeats
        Beats with a symbol in :data:`BEAT_SYMBOLS` that lie outside VF/VFL episodes
        (see the module docstring for the exclusion rule), and the excluded intervals.

    Raises
    ------
    FileNotFoundError
        If the header or the ``.atr`` file is missing.
    """
    path = str(record_path)
    header = wfdb.rdheader(path)
    ann = wfdb.rdann(path, "atr")
    samples = np.asarray(ann.sample, dtype=np.int64)
    symbols: list[str] = list(ann.symbol)
    aux: list[str] = [str(a).rstrip("\x00") for a in (ann.aux_note or [""] * len(symbols))]
    n_samples = int(header.sig_len)
    excluded: list[tuple[int, int]] = []
    open_start: int | None = None
    for sample, symbol, note in zip(samples.tolist(), symbols, aux, strict=True):
        if symbol != "+":
            continue
        if open_start is not None:
            excluded.append((open_start, sample))
            open_start = None
        if note in EXCLUDED_RHYTHMS:
            open_start = sample
    if open_start is not None:
        excluded.append((open_start, n_samples))
    is_beat = np.array([s in BEAT_SYMBOLS for s in symbols], dtype=bool)
    beats = ReferenceBeats(
        record=Path(path).name,
        fs_hz=float(header.fs),
        beat_idx=samples[is_beat],
        symbols=tuple(s for s, b in zip(symbols, is_beat.tolist(), strict=True) if b),
        excluded=tuple(excluded),
        n_samples=n_samples,
    )
    keep = beats.keep_mask(beats.beat_idx)
    logger.debug(
        "record %s: %d beats, %d excluded in %d VF/VFL episodes",
        beats.record,
        int(keep.sum()),
        int((~keep).sum()),
        len(excluded),
    )
    return ReferenceBeats(
        record=beats.record,
        fs_hz=beats.fs_hz,
        beat_idx=beats.beat_idx[keep],
        symbols=tuple(s for s, k in zip(beats.symbols, keep.tolist(), strict=True) if k),
        excluded=beats.excluded,
        n_samples=n_samples,
    )


def score_record(
    reference: ReferenceBeats,
    test_idx: NDArray[np.integer],
    test_fs_hz: float | None = None,
    window_s: float = MATCH_WINDOW_S,
) -> MatchResult:
    """Score detections of one record against its reference, applying the exclusions.

    Parameters
    ----------
    reference
        Reference beats from :func:`load_reference_beats`.
    test_idx
        Detected beat sample indices, shape ``(n_test,)``, at ``test_fs_hz``.
    test_fs_hz
        Sampling rate of ``test_idx`` in Hz when it differs from the record's (e.g. a
        detector run on a resampled signal); indices are rescaled to the record's rate.
    window_s
        Matching window, seconds.

    Returns
    -------
    MatchResult
        Matching of the detections outside excluded episodes against the reference.
    """
    test = np.asarray(test_idx, dtype=np.float64)
    if test_fs_hz is not None and test_fs_hz != reference.fs_hz:
        test = test * reference.fs_hz / test_fs_hz
    test_int = np.rint(test).astype(np.int64)
    test_int = test_int[reference.keep_mask(test_int)]
    return match_beats(reference.beat_idx, test_int, reference.fs_hz, window_s)
