"""AAMI beat classification with the shipped int8 CNN (``models/beat_cnn.tflite``).

:class:`BeatClassifier` runs one beat: its model window (the
:func:`~agent.inference.beat_features.beat_window` of the beat stacked with the patient's
template by :class:`~agent.inference.beat_features.BeatTemplateTracker`) plus its
:class:`~agent.inference.beat_features.RrFeatures`. :class:`StreamingBeatClassifier` does the
bookkeeping for a live stream: fed each new R-peak, it returns the previous beat labelled (the
post-RR of beat k is known only at beat k + 1).

The model card (``models/beat_cnn.json``) says how the model was trained, which scaling its
window uses and what the output indices mean; the model file is checked against the card's
sha256 before it is loaded (:func:`models.card.load_card`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, cast

import numpy as np
from numpy.typing import NDArray

from agent.inference.beat_features import (
    DEFAULT_SCALING,
    MODEL_FS_HZ,
    N_RR_FEATURES,
    N_WINDOW_CHANNELS,
    WINDOW_LEN,
    BeatTemplateTracker,
    LeadPolarityMonitor,
    OnTimeTemplate,
    RrFeatures,
    RrFeatureTracker,
    Scaling,
    beat_correlation,
    beat_window,
    segment_bounds,
    template_correlation,
)
from agent.inference.tflite import Backend, load_model
from agent.messages import AamiClass
from models.card import ModelCard, load_card, shipped_card

logger = logging.getLogger(__name__)

__all__ = [
    "MODEL_NAME",
    "BeatClassifier",
    "LabelledBeat",
    "SegmentGetter",
    "StreamingBeatClassifier",
]

MODEL_NAME: Final = "beat_cnn"
"""Name of the shipped beat model (``models/beat_cnn.json``)."""

WINDOW_INPUT: Final = "window"
"""Substring of the window input's tensor name (Keras input ``window``)."""

RR_INPUT: Final = "rr"
"""Substring of the RR-features input's tensor name (Keras input ``rr``)."""

SegmentGetter = Callable[[int, int], NDArray[np.float32] | None]
"""``getter(start, stop)`` → raw ECG (µV) of stream samples ``[start, stop)`` at the stream's
rate, or None when that span is no longer (or not yet) held; NaN marks leads-off samples."""


class BeatClassifier:
    """The int8 beat CNN behind a one-beat :meth:`classify`.

    Parameters
    ----------
    card_path
        Model card; default ``models/beat_cnn.json``. The model is the card's ``file`` beside
        it.
    backend
        ``cpu`` or ``edgetpu`` (see :func:`agent.inference.tflite.load_model`).
    fallback_to_cpu
        Run on the CPU when the Edge TPU delegate is missing, instead of raising.

    Attributes
    ----------
    card : ModelCard
        The model card.
    version : str
        Model version (card ``version``), for the alarms the beats feed.
    model : TfliteModel
        The loaded interpreter wrapper.
    labels : tuple[AamiClass, ...]
        Output index → AAMI class.
    scaling : Scaling
        Window scaling the model was trained with (card ``preprocessing.scaling``).

    Raises
    ------
    FileNotFoundError
        If the card or the model file is missing.
    ValueError
        If the model does not match the card's sha256, or the card's labels, rate or input
        shapes differ from what :mod:`agent.inference.beat_features` produces.
    DelegateUnavailableError
        If the Edge TPU is requested, missing, and fallback is off.
    InferenceError
        If the model cannot be loaded.
    """

    def __init__(
        self,
        card_path: Path | None = None,
        *,
        backend: Backend = "cpu",
        fallback_to_cpu: bool = True,
    ) -> None:
        path = card_path if card_path is not None else shipped_card(MODEL_NAME)
        self.card: ModelCard = load_card(path)
        self.version = self.card.version
        self.labels = tuple(AamiClass(label) for label in self.card.labels)
        if self.card.fs_hz != MODEL_FS_HZ:
            msg = f"{path.name}: model rate {self.card.fs_hz} Hz, features give {MODEL_FS_HZ} Hz"
            raise ValueError(msg)
        scaling = self.card.preprocessing.get("scaling", DEFAULT_SCALING)
        if scaling not in ("zscore", "fixed_mv"):
            msg = f"{path.name}: unknown window scaling {scaling!r}"
            raise ValueError(msg)
        self.scaling: Scaling = cast("Scaling", scaling)
        self.model = load_model(
            path.parent / self.card.file, backend=backend, fallback_to_cpu=fallback_to_cpu
        )
        window = self.model.input_named(WINDOW_INPUT)
        rr = self.model.input_named(RR_INPUT)
        n_window = WINDOW_LEN * N_WINDOW_CHANNELS
        if int(np.prod(window.shape)) != n_window or int(np.prod(rr.shape)) != N_RR_FEATURES:
            msg = (
                f"{path.name}: inputs {window.shape} and {rr.shape}, features give"
                f" ({WINDOW_LEN}, {N_WINDOW_CHANNELS}) and ({N_RR_FEATURES},)"
            )
            raise ValueError(msg)
        if self.model.outputs[0].shape[-1] != len(self.labels):
            msg = f"{path.name}: {self.model.outputs[0].shape[-1]} outputs, card has labels"
            raise ValueError(msg)

    def probabilities(self, window: NDArray[np.float32], rr: RrFeatures) -> NDArray[np.float32]:
        """Return the class probabilities of one beat, shape ``(n_labels,)``, in label order.

        Parameters
        ----------
        window
            Model window from :meth:`BeatTemplateTracker.push` (the :func:`beat_window` of
            the beat, made with :attr:`scaling`, and its template), shape
            ``(WINDOW_LEN, N_WINDOW_CHANNELS)``.
        rr
            The beat's RR features.

        Raises
        ------
        ValueError
            If ``window`` does not have shape ``(WINDOW_LEN, N_WINDOW_CHANNELS)``.
        """
        w = np.asarray(window, dtype=np.float32)
        if w.shape != (WINDOW_LEN, N_WINDOW_CHANNELS):
            msg = f"window must have shape ({WINDOW_LEN}, {N_WINDOW_CHANNELS}), got {w.shape}"
            raise ValueError(msg)
        out = self.model.predict({WINDOW_INPUT: w, RR_INPUT: rr.as_array()})
        return out[0].reshape(-1)

    def classify(self, window: NDArray[np.float32], rr: RrFeatures) -> tuple[AamiClass, float]:
        """Classify one beat.

        Parameters
        ----------
        window
            Model window, shape ``(WINDOW_LEN, N_WINDOW_CHANNELS)`` (see
            :meth:`probabilities`).
        rr
            The beat's RR features.

        Returns
        -------
        tuple[AamiClass, float]
            The most probable AAMI class and its probability in [0, 1].

        Raises
        ------
        ValueError
            If ``window`` has the wrong size.
        """
        p = self.probabilities(window, rr)
        k = int(p.argmax())
        # np.clip's value, without its wrapper (a few µs a beat)
        return self.labels[k], min(max(float(p[k]), 0.0), 1.0)


@dataclass(frozen=True, slots=True)
class LabelledBeat:
    """A beat with its AAMI class, one beat late.

    Attributes
    ----------
    r_peak_idx : int
        Sample index of the R-peak at the stream's rate.
    r_peak_time_s : float
        Stream time of the R-peak, s.
    rr : RrFeatures
        The RR features that went into the decision.
    aami_class : AamiClass | None
        Class, or None when no window could be made (NaN / flat / missing signal).
    confidence : float | None
        Probability of ``aami_class``; None with it.
    template_corr : float | None
        Morphology match with the patient's running template, in [-1, 1]
        (:func:`~agent.inference.beat_features.template_correlation`); None without a window
        or before the first template.
    prev_beat_corr : float | None
        Morphology match with the previous beat's window, in [-1, 1]
        (:func:`~agent.inference.beat_features.beat_correlation`); None without a window or
        a previous one.
    """

    r_peak_idx: int
    r_peak_time_s: float
    rr: RrFeatures
    aami_class: AamiClass | None
    confidence: float | None
    template_corr: float | None = None
    prev_beat_corr: float | None = None


class StreamingBeatClassifier:
    """Label a live stream of R-peaks one beat late.

    Each :meth:`push` of beat k + 1 returns beat k labelled: its RR features come from an
    :class:`RrFeatureTracker`; its window from the raw segment around it, fetched through
    ``segment_getter`` (the caller's ring buffer of raw ECG) when beat k is pushed (its
    segment ends ``SEGMENT_POST_S`` after R, which the caller holds by then: the core's
    look-ahead), stacked with the template of the preceding beats
    (:class:`BeatTemplateTracker`). Fetched then, not when beat k + 1 comes, a beat's window
    does not depend on how long the next one takes (session 23: the beat before a 37 s VF
    episode without R-peaks had lost its class). This is exactly how ``tools.beats.dataset``
    made the training examples. Call :meth:`reset` after a gap in the
    signal.

    Parameters
    ----------
    classifier
        The beat classifier.
    fs_hz
        Sampling rate of the stream (and of the indices given to :meth:`push`), Hz.
    segment_getter
        Returns raw µV samples ``[start, stop)`` of the stream, or None (see
        :data:`SegmentGetter`).
    tracker
        RR tracker; a fresh one by default.
    prev_beat_corr
        Also measure each beat's correlation with the previous one
        (:attr:`LabelledBeat.prev_beat_corr`); only the ectopy rules' optional run-consistency
        test reads it, so the agent turns it off when that test is off (default on).
    dominant
        What :attr:`LabelledBeat.template_corr` compares the beat with: ``"running"`` the
        model's own template (every preceding beat), ``"on_time"`` an
        :class:`~agent.inference.beat_features.OnTimeTemplate` of the recent on-time beats
        (falling back to the running template until it holds enough beats). The model's
        input is the same either way.
    """

    def __init__(
        self,
        classifier: BeatClassifier,
        fs_hz: float,
        segment_getter: SegmentGetter,
        tracker: RrFeatureTracker | None = None,
        *,
        prev_beat_corr: bool = True,
        dominant: Literal["running", "on_time"] = "running",
    ) -> None:
        self.classifier = classifier
        self._prev_beat_corr = prev_beat_corr
        self._ontime = OnTimeTemplate() if dominant == "on_time" else None
        self.fs_hz = float(fs_hz)
        self._get = segment_getter
        self._tracker = tracker if tracker is not None else RrFeatureTracker()
        self._templates = BeatTemplateTracker()
        self.lead = LeadPolarityMonitor()
        """Whether the lead looks reversed (logged when that changes)."""
        self._pending_idx: int | None = None
        self._pending_segment: NDArray[np.float32] | None = None
        self._last_window: NDArray[np.float32] | None = None

    def reset(self) -> None:
        """Forget the beat in progress and the template (call after a gap / leads-off)."""
        self._tracker.reset()
        self._templates.reset()
        if self._ontime is not None:
            self._ontime.reset()
        self._pending_idx = None
        self._pending_segment = None
        self._last_window = None

    def push(self, r_peak_idx: int, r_peak_time_s: float) -> LabelledBeat | None:
        """Add a new R-peak; return the previous beat labelled, or None.

        Parameters
        ----------
        r_peak_idx
            Sample index of the new R-peak at :attr:`fs_hz`.
        r_peak_time_s
            Its stream time, s (strictly increasing).

        Returns
        -------
        LabelledBeat | None
            The previous beat with its class (``aami_class`` None when its raw segment was
            unavailable, held NaN or was flat); None for the first beats after the start or
            a reset, which have no pre-RR.

        Raises
        ------
        ValueError
            If the time does not increase.
        """
        rr = self._tracker.push(r_peak_time_s)
        prev_idx, segment = self._pending_idx, self._pending_segment
        self._pending_idx = int(r_peak_idx)
        self._pending_segment = self._get(*segment_bounds(self._pending_idx, self.fs_hz))
        if rr is None or prev_idx is None:
            return None
        start = segment_bounds(prev_idx, self.fs_hz)[0]
        window = (
            None
            if segment is None
            else beat_window(segment, self.fs_hz, prev_idx - start, scaling=self.classifier.scaling)
        )
        if window is None:
            return LabelledBeat(prev_idx, rr.r_peak_time_s, rr, None, None)
        if self.lead.push(window, rr.r_peak_time_s):
            state = "looks reversed (QRS and T wave upside down)"
            if not self.lead.looks_reversed:
                state = "no longer looks reversed"
            logger.info("the ECG lead %s at %.0f s", state, rr.r_peak_time_s)
        stacked = self._templates.push(window)
        label, prob = self.classifier.classify(stacked, rr)
        last, self._last_window = self._last_window, window
        corr = None
        if self._ontime is not None:
            corr = self._ontime.correlation(window)
            self._ontime.push(window, rr.pre_rr_s)
        return LabelledBeat(
            prev_idx,
            rr.r_peak_time_s,
            rr,
            label,
            prob,
            template_corr=template_correlation(stacked) if corr is None else corr,
            prev_beat_corr=(
                None if last is None or not self._prev_beat_corr else beat_correlation(window, last)
            ),
        )
