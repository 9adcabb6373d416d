"""The beat record that flows from the conditioner to classifiers and the alarm engine."""

from __future__ import annotations

from dataclasses import dataclass

from agent.messages import AamiClass


@dataclass(frozen=True, slots=True)
class Beat:
    """One detected heartbeat.

    Attributes
    ----------
    r_peak_idx : int
        Sample index of the R-peak in the stream, at the stream's ``fs_hz``.
    r_peak_time_s : float
        Stream time of the R-peak, s.
    rr_ms : float | None
        RR interval ending at this beat, ms (None for the first beat or after a gap in the
        signal, such as a leads-off period).
    amplitude_uv : float
        Amplitude of the cleaned ECG at the R-peak, µV.
    aami_class : AamiClass | None
        AAMI EC57 class from the beat classifier, None until one runs.
    confidence : float | None
        Classifier probability of ``aami_class``, in [0, 1].
    template_corr : float | None
        Morphology match of the beat with the patient's dominant-beat template, in [-1, 1]
        (the beat model's running template or the on-time one, ``inference.dominant_template``;
        :mod:`agent.inference.beat_features`), set with the class; None without a beat
        classifier or a template.
    prev_beat_corr : float | None
        Morphology match with the previous beat, in [-1, 1]
        (:func:`agent.inference.beat_features.beat_correlation`); None without a classifier.
    """

    r_peak_idx: int
    r_peak_time_s: float
    rr_ms: float | None
    amplitude_uv: float
    aami_class: AamiClass | None = None
    confidence: float | None = None
    template_corr: float | None = None
    prev_beat_corr: float | None = None
