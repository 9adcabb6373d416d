"""The beat classifier on the agent's own R-peaks: detector + classifier, scored per AAMI EC57.

Each record's MLII lead is pushed through :class:`agent.dsp.rpeaks.StreamingRPeakDetector` in
1 s chunks; every detected R-peak goes, in order, through
:class:`agent.inference.beat_classifier.StreamingBeatClassifier` (the raw record is the
segment source). Detections are scored against the reference beats with an AAMI class by
:func:`tools.beats.score.score_classes` (150 ms window; missed reference beats count against
their class's Se, extra detections against their class's +P). Reference beats inside VF/VFL
episodes are excluded, and detections inside them dropped (EC57 4.2.1, via
:func:`tools.ec57.load_reference_beats`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

from agent.dsp.rpeaks import StreamingRPeakDetector
from agent.inference.beat_classifier import BeatClassifier, StreamingBeatClassifier
from tools.beats.dataset import AAMI_CLASS_OF_SYMBOL, read_lead_uv
from tools.beats.score import ClassScores, score_classes
from tools.ec57 import load_reference_beats

logger = logging.getLogger(__name__)

CHUNK_S: Final = 1.0
"""Chunk length pushed to the detector, s (as a BLE wearable delivers ~1 s of ECG)."""

POWERLINE_HZ: Final = 60
"""Mains frequency of the MIT-BIH recordings (Boston, USA)."""


def classify_record_with_agent_peaks(
    record_path: Path, classifier: BeatClassifier
) -> tuple[NDArray[np.int64], list[str]]:
    """Detect and classify the beats of one record as the agent would.

    Returns
    -------
    tuple[NDArray[np.int64], list[str]]
        Detected R-peak samples at the record's rate, shape ``(n_det,)``, and the class of
        each (``"Q"`` for a beat whose window could not be made: the agent has no class for
        it, and EC57 counts it as unclassified).
    """
    x_uv, fs_hz = read_lead_uv(record_path)
    detector = StreamingRPeakDetector(fs_hz, POWERLINE_HZ)
    chunk = round(CHUNK_S * fs_hz)
    peaks: list[int] = []
    for start in range(0, x_uv.size, chunk):
        peaks.extend(p.r_peak_idx for p in detector.push(x_uv[start : start + chunk]).r_peaks)
    peaks.extend(p.r_peak_idx for p in detector.flush().r_peaks)

    def getter(start: int, stop: int) -> NDArray[np.float32] | None:
        if start < 0 or stop > x_uv.size:
            return None
        segment: NDArray[np.float32] = x_uv[start:stop]
        return segment

    stream = StreamingBeatClassifier(classifier, fs_hz, getter)
    samples: list[int] = []
    classes: list[str] = []
    for idx in peaks:
        beat = stream.push(idx, idx / fs_hz)
        if beat is None:
            continue
        samples.append(beat.r_peak_idx)
        classes.append(beat.aami_class.value if beat.aami_class is not None else "Q")
    return np.asarray(samples, dtype=np.int64), classes


def score_against_reference(
    record: Path, det_idx: NDArray[np.int64], det_cls: Sequence[str]
) -> ClassScores:
    """Score detected, classified beats against a record's reference annotations.

    Parameters
    ----------
    record
        mitdb record path without extension.
    det_idx
        Detected R-peak samples at the record's rate, shape ``(n_det,)``.
    det_cls
        AAMI class of each detection (``"Q"`` for unclassified).

    Reference beats inside VF/VFL episodes are excluded and detections there dropped
    (EC57 4.2.1, :func:`tools.ec57.load_reference_beats`).
    """
    ref = load_reference_beats(record)
    keep = [i for i, s in enumerate(ref.symbols) if s in AAMI_CLASS_OF_SYMBOL]
    ref_idx = ref.beat_idx[keep]
    ref_cls = [AAMI_CLASS_OF_SYMBOL[ref.symbols[i]] for i in keep]
    inside = ref.keep_mask(det_idx)
    kept_cls = [c for c, k in zip(det_cls, inside.tolist(), strict=True) if k]
    return score_classes(ref_idx, ref_cls, det_idx[inside], kept_cls, ref.fs_hz)


def score_agent(mitdb: Path, records: Sequence[str], classifier: BeatClassifier) -> ClassScores:
    """Gross class scores of the agent's detector + classifier over ``records``."""
    total: ClassScores | None = None
    for name in records:
        det_idx, det_cls = classify_record_with_agent_peaks(mitdb / name, classifier)
        scores = score_against_reference(mitdb / name, det_idx, det_cls)
        logger.info(
            "record %s: V %.1f/%.1f S %.1f/%.1f",
            name,
            scores.se_pct("V"),
            scores.ppv_pct("V"),
            scores.se_pct("S"),
            scores.ppv_pct("S"),
        )
        total = scores if total is None else total + scores
    if total is None:
        msg = "no records to score"
        raise ValueError(msg)
    return total
