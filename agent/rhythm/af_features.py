"""RR intervals → AF model input: the one transformation shared by training and the agent.

The AF model (``models/af_rr.tflite``) reads a window of :data:`AF_SEQ_LEN` consecutive RR
intervals, each turned into :data:`AF_N_FEATURES` numbers:

- channel 0, ``log(rr / median(rr in the window))``, clipped to ±:data:`AF_LOG_RATIO_CLIP`:
  irregularity, independent of heart rate. AF is "irregularly irregular" (2023 ACC/AHA/ACCP/HRS
  AF guideline); RR-only detectors measure exactly this dispersion (Petrėnas et al. 2015 use the
  median-filtered successive differences of an 8-beat window; Lake & Moorman 2011 COSEn the
  sample entropy of RR normalised by the mean).
- channel 1, ``(rr[i] - rr[i-1]) / median(rr in the window)``, clipped to
  ±:data:`AF_DIFF_CLIP` (0 for the first interval of the window): the successive differences
  Petrėnas 2015 and most RR-only AF detectors build on, normalised by the rate;
- channel 2, ``(rr_s - AF_RR_CENTER_S) / AF_RR_SCALE_S``, with ``rr_s`` clipped to
  [:data:`RR_MIN_MS`, :data:`RR_MAX_MS`]: the rate itself (AF with rapid ventricular response
  is fast; sinus arrhythmia at rest is slow), scaled to about ±4 over the plausible range.

RR intervals outside [:data:`RR_MIN_MS`, :data:`RR_MAX_MS`] are handled before the window
by :class:`RrCleaner` (streaming) and :func:`rr_clean` (a whole recording, by running the same
cleaner beat by beat, so training and the agent can never disagree):

- ``rr < RR_MIN_MS`` (200 ms, 300 bpm): not a heartbeat the ventricles can produce outside VF;
  the R-peak that ends it is taken as a false detection (T wave, artefact) and the interval is
  added to the next one;
- ``rr > RR_MAX_MS`` (3000 ms, 20 bpm): a pause, a missed run of beats or a gap in the
  stream (leads-off, BLE disconnect); the window restarts after it (:data:`GAP`).

References
----------
Petrėnas A, Marozas V, Sörnmo L. Low-complexity detection of atrial fibrillation in continuous
long-term monitoring. Comput Biol Med 2015;65:184-191. doi:10.1016/j.compbiomed.2015.01.019
Lake DE, Moorman JR. Accurate estimation of entropy in very short physiological time series:
the problem of atrial fibrillation detection in implanted ventricular devices. Am J Physiol
Heart Circ Physiol 2011;300(1):H319-H325. doi:10.1152/ajpheart.00561.2010
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "AF_CENTER_IDX",
    "AF_DIFF_CLIP",
    "AF_HOP_BEATS",
    "AF_LOG_RATIO_CLIP",
    "AF_N_FEATURES",
    "AF_RR_CENTER_S",
    "AF_RR_SCALE_S",
    "AF_SEQ_LEN",
    "GAP",
    "RR_MAX_MS",
    "RR_MIN_MS",
    "CleanRr",
    "RrCleaner",
    "af_preprocessing",
    "af_window_features",
    "rr_clean",
]

AF_SEQ_LEN: Final = 32
"""RR intervals per model window. 32 beats ≈ 20 s at 100 bpm: long enough for a stable
irregularity estimate (Petrėnas 2015 use 8 beats, LSTM studies 30-100), short enough that the
window centre, to which each output is attributed, lags the newest beat by only 16 beats, which
keeps the alarm within the 60 s onset target (docs/af_detector.md)."""

AF_HOP_BEATS: Final = 4
"""The agent runs the model on every 4th accepted RR interval (and on the first full window
after a gap). The int8 LSTM costs ~130 µs of CPU per window on x86-64 (more on a Pi); a hop of
4 beats (~3 s) keeps the AF detector under 0.1 ms of CPU per beat and adds at most 3 beats to
the detection delay. Evaluation and the episode tuning use the same hop."""

AF_N_FEATURES: Final = 3
"""Features per RR interval (see the module docstring). Chosen by 5-fold patient-wise CV on
afdb (float model, per-window Se + Sp at 0.5, docs/af_detector.md): log-ratio + successive
difference + rate (Se 98.3 / Sp 97.1 %) beat log-ratio + rate (98.0 / 95.8), difference +
rate (98.0 / 96.5) and rate alone (97.1 / 94.6); 16-interval windows were worse (97.3 / 96.0)
and 64-interval windows no better (97.7 / 97.8) at twice the lag and cost."""

AF_CENTER_IDX: Final = AF_SEQ_LEN // 2
"""Index in the window of the RR interval a window's output is attributed to."""

RR_MIN_MS: Final = 200.0
"""Shortest plausible RR interval, ms (300 bpm); shorter ends in a false R-peak."""

RR_MAX_MS: Final = 3000.0
"""Longest RR interval accepted inside a window, ms (20 bpm); longer is a gap/pause."""

AF_LOG_RATIO_CLIP: Final = 1.0
"""Clip of ``log(rr / median)``: a factor e (2.7×) either way, more than any AF dispersion;
beyond it is ectopy or a missed beat, whose exact size carries no AF information."""

AF_DIFF_CLIP: Final = 1.0
"""Clip of the normalised successive difference (a change of one median RR either way)."""

AF_RR_CENTER_S: Final = 0.8
"""Centre of the RR channel, s (75 bpm)."""

AF_RR_SCALE_S: Final = 0.4
"""Scale of the RR channel, s: 200-3000 ms maps to [-1.5, 5.5]."""


@dataclass(frozen=True, slots=True)
class CleanRr:
    """One RR interval accepted by :class:`RrCleaner`.

    Attributes
    ----------
    rr_ms : float
        The interval, ms (short intervals merged in).
    t_s : float
        Stream time of the R-peak that ends it, s.
    """

    rr_ms: float
    t_s: float

    @property
    def start_s(self) -> float:
        """Stream time of the R-peak that starts the interval, s."""
        return self.t_s - self.rr_ms / 1000.0


class _Gap:
    """Marker type of :data:`GAP`."""

    def __repr__(self) -> str:
        return "GAP"


GAP: Final = _Gap()
"""Returned by :meth:`RrCleaner.push` when the sequence breaks (RR above :data:`RR_MAX_MS`)."""


class RrCleaner:
    """Streaming plausibility gate for RR intervals (see the module docstring).

    Push intervals in order; each push returns the accepted :class:`CleanRr`, :data:`GAP`
    when the interval is a pause or gap (the caller restarts its window), or None when the
    interval was too short and is held to be added to the next one.
    """

    def __init__(self) -> None:
        self._carry_ms = 0.0

    def reset(self) -> None:
        """Forget a held short interval (after a gap in the stream)."""
        self._carry_ms = 0.0

    def push(self, rr_ms: float, t_s: float) -> CleanRr | _Gap | None:
        """Gate one RR interval.

        Parameters
        ----------
        rr_ms
            RR interval, ms. Non-finite or non-positive values are treated as a gap.
        t_s
            Stream time of the R-peak that ends it, s.

        Returns
        -------
        CleanRr | GAP | None
            See the class docstring.
        """
        if not np.isfinite(rr_ms) or rr_ms <= 0.0:
            self._carry_ms = 0.0
            return GAP
        total = rr_ms + self._carry_ms
        if total > RR_MAX_MS:
            self._carry_ms = 0.0
            return GAP
        if total < RR_MIN_MS:
            self._carry_ms = total
            return None
        self._carry_ms = 0.0
        return CleanRr(rr_ms=total, t_s=t_s)


def rr_clean(
    rr_ms: NDArray[np.floating] | Sequence[float], t_s: NDArray[np.floating] | Sequence[float]
) -> list[tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]]:
    """Clean a whole RR series exactly as the streaming agent does, split at gaps.

    Parameters
    ----------
    rr_ms
        RR intervals, ms, shape ``(n_rr,)``.
    t_s
        Stream time of the R-peak ending each interval, s, shape ``(n_rr,)``.

    Returns
    -------
    list of (rr_ms, t_s, src_idx)
        One tuple per gap-free segment: accepted intervals (ms), their end times (s) and the
        index in the input of the interval that ended each, all shape ``(n_segment,)``.

    Raises
    ------
    ValueError
        If the two inputs differ in length.
    """
    rr = np.asarray(rr_ms, dtype=np.float64)
    t = np.asarray(t_s, dtype=np.float64)
    if rr.shape != t.shape:
        msg = f"rr_ms {rr.shape} and t_s {t.shape} differ in shape"
        raise ValueError(msg)
    cleaner = RrCleaner()
    segments: list[tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]] = []
    cur_rr: list[float] = []
    cur_t: list[float] = []
    cur_i: list[int] = []

    def close() -> None:
        if cur_rr:
            segments.append((np.array(cur_rr), np.array(cur_t), np.array(cur_i, dtype=np.int64)))
        cur_rr.clear()
        cur_t.clear()
        cur_i.clear()

    for i, (r, tt) in enumerate(zip(rr.tolist(), t.tolist(), strict=True)):
        out = cleaner.push(r, tt)
        if isinstance(out, CleanRr):
            cur_rr.append(out.rr_ms)
            cur_t.append(out.t_s)
            cur_i.append(i)
        elif out is GAP:
            close()
    close()
    return segments


def af_window_features(rr_ms: NDArray[np.floating]) -> NDArray[np.float32]:
    """Model input for one or many windows of cleaned RR intervals.

    Parameters
    ----------
    rr_ms
        Cleaned RR intervals (:class:`RrCleaner` output), ms, shape ``(..., AF_SEQ_LEN)``;
        any leading axes are windows.

    Returns
    -------
    NDArray[np.float32]
        Shape ``(..., AF_SEQ_LEN, AF_N_FEATURES)``: channel 0 the clipped log ratio to the
        window median, channel 1 the clipped normalised successive difference, channel 2 the
        scaled clipped RR (module docstring).

    Raises
    ------
    ValueError
        If the last axis is not :data:`AF_SEQ_LEN` long.
    """
    rr = np.asarray(rr_ms, dtype=np.float64)
    if rr.ndim < 1 or rr.shape[-1] != AF_SEQ_LEN:
        msg = f"AF window needs {AF_SEQ_LEN} RR intervals on the last axis, got shape {rr.shape}"
        raise ValueError(msg)
    rr = np.clip(rr, RR_MIN_MS, RR_MAX_MS)
    med = np.median(rr, axis=-1, keepdims=True)
    log_ratio = np.clip(np.log(rr / med), -AF_LOG_RATIO_CLIP, AF_LOG_RATIO_CLIP)
    diff = np.diff(rr, axis=-1, prepend=rr[..., :1])
    diff_ratio = np.clip(diff / med, -AF_DIFF_CLIP, AF_DIFF_CLIP)
    rate = (rr / 1000.0 - AF_RR_CENTER_S) / AF_RR_SCALE_S
    return np.stack([log_ratio, diff_ratio, rate], axis=-1).astype(np.float32)


def af_preprocessing() -> dict[str, object]:
    """Return the preprocessing constants as written into the model card (``preprocessing``)."""
    return {
        "seq_len": AF_SEQ_LEN,
        "n_features": AF_N_FEATURES,
        "center_idx": AF_CENTER_IDX,
        "hop_beats": AF_HOP_BEATS,
        "rr_min_ms": RR_MIN_MS,
        "rr_max_ms": RR_MAX_MS,
        "log_ratio_clip": AF_LOG_RATIO_CLIP,
        "diff_clip": AF_DIFF_CLIP,
        "rr_center_s": AF_RR_CENTER_S,
        "rr_scale_s": AF_RR_SCALE_S,
        "features": [
            "clip(log(rr / median(window rr)), -clip, clip)",
            "clip((rr[i] - rr[i-1]) / median(window rr), -diff_clip, diff_clip), 0 at i=0",
            "(clip(rr_s, rr_min, rr_max) - rr_center_s) / rr_scale_s",
        ],
        "short_rr": "rr < rr_min_ms: the ending R-peak is dropped, interval added to the next",
        "long_rr": "rr > rr_max_ms: gap, the window restarts",
        "output": "P(AF or AFL) attributed to the RR interval at center_idx",
    }
