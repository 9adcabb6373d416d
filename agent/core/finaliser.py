"""The one stage that finalises every beat: class and confidence attached, once, one beat late.

A beat's class needs its post-RR (the next beat), so a beat becomes final when the next QRS is
committed (:class:`agent.inference.beat_classifier.StreamingBeatClassifier`). Nothing
downstream ever sees a beat whose class will change: consumers of classes (ectopy, AF, EDR,
``beats.csv``) get :class:`~agent.beats.Beat` from here. Consumers of timing only (asystole,
pause, heart rate) read the :class:`~agent.core.items.Qrs` the moment it is committed, since
waiting a beat for a class would delay an asystole alarm by a beat.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Literal

import numpy as np

from agent.beats import Beat
from agent.core.items import Qrs
from agent.core.timing import StageTimes, timed
from agent.inference.beat_classifier import BeatClassifier, SegmentGetter, StreamingBeatClassifier
from agent.inference.beat_features import LeadPolarityMonitor


class BeatFinaliser:
    """Turn committed QRS complexes into final, classified beats.

    Parameters
    ----------
    classifier
        The beat classifier, or None: then every beat is final at once, without a class.
    fs_hz
        Sampling rate of the stream (and of ``Qrs.r_peak_idx``), Hz.
    segment
        Raw µV samples ``[start, stop)`` of the stream, or None when not buffered.
    history
        Beats kept for alarm evidence (:meth:`recent`).
    stage_times
        Collects the CPU time of classification (``beat_classifier``) when given.
    prev_beat_corr, dominant
        Measure each beat's correlation with the previous one; what ``template_corr``
        compares it with (see :class:`~agent.inference.beat_classifier.StreamingBeatClassifier`).
    """

    def __init__(
        self,
        classifier: BeatClassifier | None,
        fs_hz: float,
        segment: SegmentGetter,
        *,
        history: int = 13,
        stage_times: StageTimes | None = None,
        prev_beat_corr: bool = True,
        dominant: Literal["running", "on_time"] = "running",
    ) -> None:
        self._times = stage_times
        self.classifier = classifier
        self._labeller = (
            None
            if classifier is None
            else StreamingBeatClassifier(
                classifier, fs_hz, segment, prev_beat_corr=prev_beat_corr, dominant=dominant
            )
        )
        self._waiting: Beat | None = None  # the newest beat, waiting for its post-RR
        self._recent: deque[Beat] = deque(maxlen=history)

    def push(self, qrs: Qrs) -> list[Beat]:
        """Add a committed QRS; return the beats this makes final (0 or 1), in order.

        Without a classifier, or for a beat with no waveform (RR-only, NaN amplitude), the
        beat itself is final at once; otherwise the previous beat is, with its class
        (``aami_class`` None when no window could be cut around it).
        """
        beat = qrs.beat()
        self._recent.append(beat)
        if self._labeller is None or not np.isfinite(beat.amplitude_uv):
            return [beat]
        labelled = timed(
            self._times, "beat_classifier", self._labeller.push, beat.r_peak_idx, beat.r_peak_time_s
        )
        prev, self._waiting = self._waiting, beat
        if prev is None:
            return []
        if labelled is not None and labelled.r_peak_idx == prev.r_peak_idx:
            prev = replace(
                prev,
                aami_class=labelled.aami_class,
                confidence=labelled.confidence,
                template_corr=labelled.template_corr,
                prev_beat_corr=labelled.prev_beat_corr,
            )
            self._remember(prev)
        return [prev]

    @property
    def lead(self) -> LeadPolarityMonitor | None:
        """Whether the lead looks reversed (None without a classifier)."""
        return None if self._labeller is None else self._labeller.lead

    def flush(self) -> list[Beat]:
        """Give up waiting (a gap in the signal, or the end): the waiting beat, unclassified."""
        out = [] if self._waiting is None else [self._waiting]
        self._waiting = None
        if self._labeller is not None:
            self._labeller.reset()
        return out

    def recent(self, n: int) -> list[Beat]:
        """Return the last ``n`` beats in stream order (the newest may await its class)."""
        return list(self._recent)[-n:]

    def amend(self, final: Beat) -> None:
        """Replace the kept copy of a final beat (same ``r_peak_idx``) with ``final``."""
        self._remember(final)

    def _remember(self, final: Beat) -> None:
        for i in range(len(self._recent) - 1, -1, -1):
            if self._recent[i].r_peak_idx == final.r_peak_idx:
                self._recent[i] = final
                return
