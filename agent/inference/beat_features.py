"""Beat-classifier inputs: the one preprocessing shared by training (``tools.beats``) and the agent.

Two inputs describe a beat:

- a **window**: the ECG around the R-peak, resampled to :data:`MODEL_FS_HZ`, band-passed and
  scaled (:func:`beat_window`);
- a **template**: the running median of the patient's preceding beat windows
  (:class:`BeatTemplateTracker`), given to the model beside the window so that it judges a
  beat against the patient's own dominant morphology (a bundle-branch-block patient's wide
  normal QRS matches its template; a PVC does not);
- **RR features**: pre-RR, post-RR, local and long-term average RR and their ratios, computed
  causally by :class:`RrFeatureTracker` (the features of beat *k* are known once beat *k + 1*
  has been detected).

Training builds its examples by calling exactly these functions over the annotated beats of
mitdb, so what the model sees in training is what it sees in the agent.

Canonical rate: 128 Hz. It lies just below the 130 Hz of ECG wearables (Polar H10), so they are
never upsampled, and it is reached from the 360 Hz of mitdb, 250 / 500 / 1000 Hz clinical
recorders and 130 Hz wearables by small rational factors (16/45, 64/125, 32/125, 16/125,
64/65). QRS energy lies below 40 Hz (Pan and Tompkins 1985), well under its 64 Hz Nyquist.

References
----------
de Chazal P, O'Dwyer M, Reilly RB. Automatic classification of heartbeats using ECG morphology
and heartbeat interval features. IEEE Trans Biomed Eng 2004;51(7):1196-1206.
doi:10.1109/TBME.2004.827359
Mar T, Zaunseder S, Martinez JP, Llamedo M, Poll R. Optimization of ECG classification by means
of feature selection. IEEE Trans Biomed Eng 2011;58(8):2168-2177. doi:10.1109/TBME.2011.2113395
Pan J, Tompkins WJ. A real-time QRS detection algorithm. IEEE Trans Biomed Eng
1985;32(3):230-236. doi:10.1109/TBME.1985.325532

Length: every feature the beat classifier sees is defined here, in one place, so that training
(``tools.beats``) and the agent cannot drift apart.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from agent.dsp.polyphase import PolyResampler
from agent.dsp.stats import median_finite
from agent.dsp.zerophase import ZeroPhaseSos

__all__ = [
    "DEFAULT_SCALING",
    "LOCAL_RR_BEATS",
    "LONG_RR_WINDOW_S",
    "MAX_FS_HZ",
    "MIN_FS_HZ",
    "MODEL_FS_HZ",
    "N_RR_FEATURES",
    "N_WINDOW_CHANNELS",
    "POLARITY_QRS_SPAN",
    "POLARITY_T_SPAN",
    "RR_FEATURE_NAMES",
    "SEGMENT_POST_S",
    "SEGMENT_PRE_S",
    "TEMPLATE_BEATS",
    "WINDOW_LEN",
    "WINDOW_POST_S",
    "WINDOW_PRE_S",
    "BeatTemplateTracker",
    "LeadPolarityMonitor",
    "OnTimeTemplate",
    "RrFeatureTracker",
    "RrFeatures",
    "Scaling",
    "beat_correlation",
    "beat_window",
    "segment_bounds",
    "template_correlation",
    "wave_polarity",
]

MODEL_FS_HZ: Final = 128.0
"""Canonical sampling rate of the model's window, Hz (see the module docstring)."""

WINDOW_PRE_S: Final = 0.25
"""Window start before the R-peak, s: covers the P wave (PR interval 120-200 ms)."""

WINDOW_POST_S: Final = 0.5
"""Window end after the R-peak, s: covers the QRS and most T waves (QT ~ 400 ms at 60 bpm)."""

_PRE_N: Final = round(WINDOW_PRE_S * MODEL_FS_HZ)  # 32 samples
_POST_N: Final = round(WINDOW_POST_S * MODEL_FS_HZ)  # 64 samples

WINDOW_LEN: Final = _PRE_N + _POST_N
"""Window length in samples at :data:`MODEL_FS_HZ` (96); the R-peak is sample 32."""

SEGMENT_PRE_S: Final = 1.25
"""Raw signal needed before the R-peak, s: the window plus 1 s for the filter and resampler
transients to die out (a 0.5 Hz 2nd-order high-pass settles in ~1 s)."""

SEGMENT_POST_S: Final = 1.25
"""Raw signal needed after the R-peak, s: the window plus 0.75 s of filter margin."""

MIN_FS_HZ: Final = 100.0
"""Lowest accepted input rate, Hz (below it the QRS is under-sampled)."""

MAX_FS_HZ: Final = 1000.0
"""Highest accepted input rate, Hz."""

BANDPASS_HZ: Final = (0.5, 40.0)
"""Band-pass corners, Hz: 0.5 Hz removes baseline wander (as NeuroKit2's ``ecg_clean``); 40 Hz
keeps the QRS (Pan and Tompkins 1985) and removes mains (50/60 Hz) and EMG."""

BANDPASS_ORDER: Final = 2
"""Butterworth order of each band-pass edge, applied forward and backward (zero phase)."""

FLAT_STD_UV: Final = 5.0
"""Below this standard deviation (µV) the window is a flat line (leads off, saturated
amplifier), not a beat: :func:`beat_window` returns None. A QRS is hundreds of µV."""

FIXED_SCALE_UV: Final = 1000.0
"""Divisor of the ``fixed_mv`` scaling: the window in mV."""

Scaling = Literal["zscore", "fixed_mv"]
"""Window amplitude scaling: ``zscore`` divides by the window's own standard deviation (gain
free); ``fixed_mv`` keeps amplitude, in mV. Both subtract the window's median first."""

DEFAULT_SCALING: Final[Scaling] = "zscore"
"""The scaling the shipped model uses (chosen on DS1 validation folds; see
docs/beat_classifier.md). The model card records it and the classifier follows the card."""

LOCAL_RR_BEATS: Final = 10
"""RR intervals in the local average (the last 10, ending at beat k + 1), after de Chazal
2004's local RR over the ~10 surrounding beats, made causal."""

LONG_RR_WINDOW_S: Final = 300.0
"""Span of the long-term (patient) average RR, s: 5 min, de Chazal 2004's average RR."""

RATIO_CLIP: Final = 4.0
"""RR features are clipped to [0, 4] (s or ratio) so that a long pause cannot saturate the
int8 input scale; 4 s RR is 15 bpm, already an alarm."""

RR_FEATURE_NAMES: Final = (
    "pre_rr_s",
    "post_rr_s",
    "local_rr_s",
    "long_rr_s",
    "pre_over_local",
    "post_over_local",
    "pre_over_long",
    "post_over_pre",
    "local_rr_cv",
)
"""Order of :meth:`RrFeatures.as_array`."""

N_RR_FEATURES: Final = len(RR_FEATURE_NAMES)

TEMPLATE_BEATS: Final = 20
"""Beats in the running median template (~15-20 s of rhythm): chosen on DS1 validation folds
(docs/beat_classifier.md); enough for a stable median, short enough to follow slow changes."""

N_WINDOW_CHANNELS: Final = 2
"""Channels of the model's window input: the beat window and the template."""


def segment_bounds(r_peak_idx: int, fs_hz: float) -> tuple[int, int]:
    """Return the raw-sample range ``[start, stop)`` that :func:`beat_window` needs.

    Parameters
    ----------
    r_peak_idx
        Sample index of the R-peak at ``fs_hz``.
    fs_hz
        Sampling rate of the raw signal, Hz.

    Returns
    -------
    tuple[int, int]
        ``start = r_peak_idx - ceil(SEGMENT_PRE_S * fs_hz)`` and
        ``stop = r_peak_idx + ceil(SEGMENT_POST_S * fs_hz) + 1``; the R-peak is at offset
        ``r_peak_idx - start`` in the segment.
    """
    return (
        r_peak_idx - math.ceil(SEGMENT_PRE_S * fs_hz),
        r_peak_idx + math.ceil(SEGMENT_POST_S * fs_hz) + 1,
    )


@lru_cache(maxsize=32)
def _resampler(fs_hz: float, n_in: int) -> PolyResampler | None:
    """Return the resampler from ``fs_hz`` to the model rate for ``n_in``-sample segments.

    ``resample_poly``'s own filter (``firwin``, Kaiser beta 5, 10 taps per phase), set up once
    per rate instead of once per beat (:class:`agent.dsp.polyphase.PolyResampler`); None
    when the stream is already at the model rate.
    """
    ratio = Fraction(MODEL_FS_HZ / fs_hz).limit_denominator(1000)
    up, down = ratio.numerator, ratio.denominator
    if up == down == 1:
        return None
    return PolyResampler(up, down, n_in)


@lru_cache(maxsize=1)
def _bandpass() -> ZeroPhaseSos:
    """Return the band-pass at :data:`MODEL_FS_HZ`, forward-backward, designed once."""
    sos = signal.butter(BANDPASS_ORDER, BANDPASS_HZ, btype="bandpass", fs=MODEL_FS_HZ, output="sos")
    return ZeroPhaseSos(np.asarray(sos, dtype=np.float64))


@lru_cache(maxsize=32)
def _fraction_shift(n: int, frac: float) -> NDArray[np.complex128]:
    """Return the spectrum multiplier that delays an ``n``-sample signal by ``frac`` samples.

    Computed once per stream rate: the R-peak's fractional position depends only on the rate.
    """
    freqs = np.fft.rfftfreq(n)
    return np.asarray(np.exp(2j * np.pi * freqs * frac))


def _mean_std(x: NDArray[np.float64]) -> tuple[float, float]:
    """``(float(np.mean(x)), float(np.std(x)))`` of a non-empty 1-D float64 array, bit for bit.

    The same reductions as NumPy's ``_mean`` / ``_var`` (pairwise sum divided by the count;
    squared deviations from that mean, summed and divided by the count; square root), without
    their per-call wrapper overhead (issue 11).
    """
    n = x.size
    mean = np.add.reduce(x) / n
    d = x - mean
    d *= d
    return float(mean), math.sqrt(np.add.reduce(d) / n)


def beat_window(
    segment_uv: NDArray[np.float32],
    fs_hz: float,
    r_offset: int,
    *,
    scaling: Scaling = DEFAULT_SCALING,
) -> NDArray[np.float32] | None:
    """Turn raw ECG around one R-peak into the model's fixed-length window.

    Steps: crop to exactly ``[r_offset - ceil(SEGMENT_PRE_S * fs), r_offset +
    ceil(SEGMENT_POST_S * fs)]`` (so extra margin never changes the result), resample to
    :data:`MODEL_FS_HZ` (``scipy.signal.resample_poly``), band-pass 0.5-40 Hz (Butterworth,
    zero phase), cut :data:`WINDOW_PRE_S` before to :data:`WINDOW_POST_S` after the R-peak,
    subtract the median and scale (see :data:`Scaling`).

    Parameters
    ----------
    segment_uv
        Raw single-lead ECG, µV, shape ``(n_samples,)`` at ``fs_hz``; it must hold at least
        :data:`SEGMENT_PRE_S` before and :data:`SEGMENT_POST_S` after the R-peak
        (:func:`segment_bounds` gives the range).
    fs_hz
        Sampling rate of ``segment_uv``, Hz, in [:data:`MIN_FS_HZ`, :data:`MAX_FS_HZ`].
    r_offset
        Index of the R-peak in ``segment_uv``.
    scaling
        Amplitude scaling; the model card's ``preprocessing.scaling`` says which one a model
        was trained with.

    Returns
    -------
    NDArray[np.float32] | None
        Shape ``(WINDOW_LEN,)``, the R-peak at index ``round(WINDOW_PRE_S * MODEL_FS_HZ)``;
        None when the segment is too short around ``r_offset``, contains NaN or inf (leads
        off, gaps) or is flat (standard deviation below :data:`FLAT_STD_UV`).

    Raises
    ------
    ValueError
        If ``fs_hz`` is outside the accepted range or ``segment_uv`` is not 1-D.
    """
    if not MIN_FS_HZ <= fs_hz <= MAX_FS_HZ:
        msg = f"fs_hz must be in [{MIN_FS_HZ}, {MAX_FS_HZ}] Hz, got {fs_hz}"
        raise ValueError(msg)
    x = np.asarray(segment_uv, dtype=np.float64)
    if x.ndim != 1:
        msg = f"segment_uv must be 1-D, got shape {x.shape}"
        raise ValueError(msg)
    n_pre = math.ceil(SEGMENT_PRE_S * fs_hz)
    n_post = math.ceil(SEGMENT_POST_S * fs_hz)
    if r_offset < n_pre or r_offset + n_post >= x.size:
        return None
    x = x[r_offset - n_pre : r_offset + n_post + 1]
    if not np.isfinite(x).all():
        return None
    resampler = _resampler(float(fs_hz), x.size)
    if resampler is not None:
        x = resampler(x - median_finite(x))
    y = _bandpass()(x)
    # The R-peak falls between two output samples in general: shift the band-limited signal
    # by that fraction (Fourier shift theorem) so that it sits exactly on sample ``center``.
    exact = n_pre * MODEL_FS_HZ / fs_hz
    center = round(exact)
    frac = exact - center
    if abs(frac) > 1e-6:
        y = np.fft.irfft(np.fft.rfft(y) * _fraction_shift(y.size, frac), n=y.size)
    w: NDArray[np.float64] = y[center - _PRE_N : center + _POST_N]
    w = w - median_finite(w)
    std_uv = _mean_std(w)[1]
    if std_uv < FLAT_STD_UV:
        return None
    w = w / (std_uv if scaling == "zscore" else FIXED_SCALE_UV)
    return np.asarray(w, dtype=np.float32)


POLARITY_QRS_S: Final = (-0.06, 0.06)
"""The QRS around the R-peak, s (a QRS lasts under 120 ms)."""
POLARITY_T_S: Final = (0.2, 0.45)
"""Where the T wave lies after the R-peak, s (QT 350-450 ms)."""
POLARITY_BEATS: Final = 32
"""Beats whose median polarities are the lead's (about 30 s)."""
POLARITY_REVERSED_BELOW: Final = -0.5
"""The lead starts to look reversed when the median polarity of both its QRS and its T wave is
below this (a reversed lead turns both over; in bundle-branch block or pacing the QRS is
negative but the T wave discordant, upright)..."""
POLARITY_REVERSED_UNTIL: Final = -0.2
"""... and stops when either median rises above this (hysteresis: a T wave's polarity wanders
from beat to beat)."""


def _span(span_s: tuple[float, float]) -> slice:
    """Window samples from ``span_s[0]`` to ``span_s[1]`` s after the R-peak, both included."""
    first = _PRE_N + round(span_s[0] * MODEL_FS_HZ)
    return slice(first, _PRE_N + round(span_s[1] * MODEL_FS_HZ) + 1)


POLARITY_QRS_SPAN: Final = _span(POLARITY_QRS_S)
"""The QRS samples of a :func:`beat_window` window."""
POLARITY_T_SPAN: Final = _span(POLARITY_T_S)
"""The T-wave samples of a :func:`beat_window` window."""


def wave_polarity(window: NDArray[np.float32], span: slice) -> float:
    """``(max - |min|) / (max + |min|)`` of ``window[span]``: 1 upright, -1 inverted, 0 flat.

    Parameters
    ----------
    window
        Output of :func:`beat_window`, shape ``(WINDOW_LEN,)`` (its median removed: 0 is about
        the isoelectric level).
    span
        The samples of the wave, :data:`POLARITY_QRS_SPAN` or :data:`POLARITY_T_SPAN`.
    """
    part = window[span]
    pos = max(float(part.max()), 0.0)
    neg = max(-float(part.min()), 0.0)
    return 0.0 if pos + neg <= 0.0 else (pos - neg) / (pos + neg)


class LeadPolarityMonitor:
    """Say when the ECG lead looks reversed (a hint to the user; the beats are not changed).

    The beat model learned leads with an upright QRS (MLII, svdb ECG1) and misreads a reversed
    one: on MIT-BIH DS2 turned over, V Se 95.87 -> 73.46 % (``docs/beat_classifier.md``,
    Limitations). Whoever set the strap up can turn it over with ``dsp.invert_ecg``, if told.
    The lead looks reversed while the median polarity (:func:`wave_polarity`) of the last
    :data:`POLARITY_BEATS` beats' QRS and T wave are both below
    :data:`POLARITY_REVERSED_BELOW` (until one of them rises above
    :data:`POLARITY_REVERSED_UNTIL`): a reversed lead turns both over, while a QRS negative in
    MLII itself (bundle-branch block, pacing: mitdb 207, 217) has a discordant, upright T wave
    (ventricular gradient; Rautaharju PM et al., AHA/ACCF/HRS recommendations for the
    standardization and interpretation of the electrocardiogram, part IV: the ST segment, T
    and U waves, and the QT interval, Circulation 2009;119(10):e241-e250). Replayed offline
    over the beat windows of the agent's R-peaks: none of the 48 mitdb, 40 svdb, 12 nstdb and
    11 vfdb records looks reversed but svdb 864 and vfdb 420, for 1 and 2 % of their beats
    (during ventricular rhythms); 28 of the 48 mitdb records turned over do, for 38 % of their
    beats on average (the T-wave polarity of a 0.75 s window wanders, and some records' T waves
    are inverted in MLII already). Not a correction: see
    ``docs/beat_classifier.md`` for why turning the beats over automatically was not kept.

    Attributes
    ----------
    looks_reversed : bool
        Whether the lead looks reversed now.
    episodes : list[tuple[float, float | None]]
        ``(start_s, end_s)`` stream times of the beats where it started and stopped looking
        reversed (``end_s`` None while it still does).
    """

    def __init__(self) -> None:
        self._qrs: deque[float] = deque(maxlen=POLARITY_BEATS)
        self._t: deque[float] = deque(maxlen=POLARITY_BEATS)
        self.looks_reversed = False
        self.episodes: list[tuple[float, float | None]] = []

    def push(self, window: NDArray[np.float32], t_s: float) -> bool:
        """Add the window of the beat at ``t_s`` (s); return whether the state changed."""
        self._qrs.append(wave_polarity(window, POLARITY_QRS_SPAN))
        self._t.append(wave_polarity(window, POLARITY_T_SPAN))
        if len(self._qrs) < POLARITY_BEATS:
            return False
        qrs, t = statistics.median(self._qrs), statistics.median(self._t)
        limit = POLARITY_REVERSED_UNTIL if self.looks_reversed else POLARITY_REVERSED_BELOW
        now = max(qrs, t) < limit
        if now == self.looks_reversed:
            return False
        self.looks_reversed = now
        if now:
            self.episodes.append((t_s, None))
        else:
            self.episodes[-1] = (self.episodes[-1][0], t_s)
        return True


@dataclass(frozen=True, slots=True)
class RrFeatures:
    """RR-interval features of one beat (de Chazal 2004, made causal).

    Attributes
    ----------
    r_peak_time_s : float
        Stream time of the beat, s.
    pre_rr_s : float
        RR interval from the previous beat to this one, s.
    post_rr_s : float
        RR interval from this beat to the next one, s.
    local_rr_s : float
        Mean of the last :data:`LOCAL_RR_BEATS` RR intervals ending at the next beat, s.
    long_rr_s : float
        Mean RR interval over the last :data:`LONG_RR_WINDOW_S` ending at the next beat, s
        (the patient's own rhythm; fewer beats right after the start).
    local_rr_cv : float
        Coefficient of variation (SD / mean) of the same RR intervals as ``local_rr_s``,
        dimensionless: high in atrial fibrillation, where a short pre-RR does not make a beat
        supraventricular ectopic (AAMI labels AF beats N).
    """

    r_peak_time_s: float
    pre_rr_s: float
    post_rr_s: float
    local_rr_s: float
    long_rr_s: float
    local_rr_cv: float

    def as_array(self) -> NDArray[np.float32]:
        """Return the model's RR input, shape ``(N_RR_FEATURES,)``.

        Order :data:`RR_FEATURE_NAMES`: seconds and dimensionless ratios, each clipped to
        [0, :data:`RATIO_CLIP`].
        """
        values = (
            self.pre_rr_s,
            self.post_rr_s,
            self.local_rr_s,
            self.long_rr_s,
            self.pre_rr_s / self.local_rr_s,
            self.post_rr_s / self.local_rr_s,
            self.pre_rr_s / self.long_rr_s,
            self.post_rr_s / self.pre_rr_s,
            self.local_rr_cv,
        )
        out = np.asarray(values, dtype=np.float32)
        np.maximum(out, 0.0, out=out)  # np.clip without its wrapper: same values, NaN kept
        np.minimum(out, RATIO_CLIP, out=out)
        return out


class RrFeatureTracker:
    """Streaming RR features: fed R-peak times in order, emits beat k's features at beat k+1.

    Only beats up to k + 1 are ever used for beat k (no look-ahead beyond the post-RR), so the
    features can be computed live one beat late. A :meth:`reset` (after a gap in the signal,
    such as leads off) forgets the pending beat and the local history; the long-term average
    survives it (same patient) unless asked otherwise.

    Parameters
    ----------
    local_beats
        RR intervals in the local average.
    long_window_s
        Span of the long-term average, s.

    Raises
    ------
    ValueError
        If ``local_beats < 1`` or ``long_window_s <= 0``.

    References
    ----------
    de Chazal et al. 2004 (module docstring), section II-C: pre-RR, post-RR, average RR and
    local average RR; Mar et al. 2011: RR normalised by the patient's average.
    """

    def __init__(
        self, local_beats: int = LOCAL_RR_BEATS, long_window_s: float = LONG_RR_WINDOW_S
    ) -> None:
        if local_beats < 1 or long_window_s <= 0:
            msg = f"need local_beats >= 1 and long_window_s > 0, got {local_beats}, {long_window_s}"
            raise ValueError(msg)
        self._local_beats = local_beats
        self._long_window_s = long_window_s
        self._local: deque[float] = deque(maxlen=local_beats)
        self._long: deque[tuple[float, float]] = deque()  # (end time s, rr s)
        self._long_sum_s = 0.0
        self._last_t_s: float | None = None
        self._pending: tuple[float, float] | None = None  # (time of beat k, its pre-RR)

    def reset(self, *, keep_long_term: bool = True) -> None:
        """Forget the beat in progress (after a gap); optionally keep the long-term average."""
        self._last_t_s = None
        self._pending = None
        self._local.clear()
        if not keep_long_term:
            self._long.clear()
            self._long_sum_s = 0.0

    def push(self, r_peak_time_s: float) -> RrFeatures | None:
        """Add beat k + 1; return the features of beat k, or None when k has no pre-RR.

        Parameters
        ----------
        r_peak_time_s
            Stream time of the new R-peak, s; strictly after the previous one.

        Returns
        -------
        RrFeatures | None
            Features of the previous beat; None for the first one or two beats after the
            start or a :meth:`reset` (no previous beat, or it had no pre-RR).

        Raises
        ------
        ValueError
            If the time is not finite or not after the previous beat.
        """
        t = float(r_peak_time_s)
        if not math.isfinite(t):
            msg = f"R-peak time must be finite, got {t}"
            raise ValueError(msg)
        last = self._last_t_s
        if last is None:
            self._last_t_s = t
            return None
        if t <= last:
            msg = f"R-peak times must increase: {t} s after {last} s"
            raise ValueError(msg)
        rr_s = t - last
        self._local.append(rr_s)
        self._long.append((t, rr_s))
        self._long_sum_s += rr_s
        while self._long and self._long[0][0] < t - self._long_window_s:
            self._long_sum_s -= self._long.popleft()[1]
        out: RrFeatures | None = None
        if self._pending is not None:
            beat_t, pre_rr_s = self._pending
            local_mean_s, local_std_s = _mean_std(np.array(self._local))
            out = RrFeatures(
                r_peak_time_s=beat_t,
                pre_rr_s=pre_rr_s,
                post_rr_s=rr_s,
                local_rr_s=local_mean_s,
                local_rr_cv=local_std_s / local_mean_s,
                long_rr_s=max(self._long_sum_s, 0.0) / len(self._long),
            )
        self._pending = (t, rr_s)
        self._last_t_s = t
        return out


class BeatTemplateTracker:
    """The patient's dominant beat shape: element-wise median of the last beat windows.

    Fed every beat's window in order (labelled or not, as long as :func:`beat_window` gave
    one), :meth:`push` returns the model's window input: the beat and the median of the
    *preceding* :data:`TEMPLATE_BEATS` windows (the beat itself when there is none yet), then
    adds the beat to the history. Comparing a beat with the patient's own recent beats is how
    inter-patient classifiers cope with morphology that differs between patients (e.g. bundle
    branch block), as in the template-based features of de Chazal 2004 and Mar 2011.

    Parameters
    ----------
    n_beats
        Windows in the median.

    Raises
    ------
    ValueError
        If ``n_beats < 1``.
    """

    def __init__(self, n_beats: int = TEMPLATE_BEATS) -> None:
        if n_beats < 1:
            msg = f"n_beats must be >= 1, got {n_beats}"
            raise ValueError(msg)
        # The last n_beats windows as rows of a ring buffer (order is irrelevant to a
        # median): row ``_next`` is overwritten next; ``_count`` rows are filled.
        self._ring = np.empty((n_beats, WINDOW_LEN), dtype=np.float32)
        self._next = 0
        self._count = 0
        self._cached: NDArray[np.float32] | None = None  # _median() until the ring changes

    def reset(self) -> None:
        """Forget the history (after a gap: the electrodes may have moved)."""
        self._next = 0
        self._count = 0
        self._cached = None

    def _median(self) -> NDArray[np.float32]:
        """Element-wise median of the filled rows, equal to ``np.median(rows, axis=0)``.

        Sorts each column and takes its middle value, or the float32 mean of its two middle
        values for an even count (``np.median``'s own definition and arithmetic); the windows
        are finite (:func:`beat_window` rejects NaN), so ``np.median``'s NaN rule never
        applies. Skipping ``np.median``'s generic machinery saves most of its cost per beat.
        The result is kept until a window is added or the history forgotten (the on-time
        template is asked for it at every beat and changes only at on-time beats); callers
        must not modify it.
        """
        if self._cached is not None:
            return self._cached
        n = self._count
        s = np.sort(self._ring[:n], axis=0)
        k = n // 2
        if n % 2:
            mid: NDArray[np.float32] = s[k]
        else:
            mid = s[k - 1] + s[k]
            mid /= np.float32(2.0)
        self._cached = mid
        return mid

    def add(self, window: NDArray[np.float32]) -> None:
        """Add ``window`` (shape ``(WINDOW_LEN,)``, float32) to the history, nothing returned."""
        self._ring[self._next] = window
        self._next = (self._next + 1) % self._ring.shape[0]
        self._count = min(self._count + 1, self._ring.shape[0])
        self._cached = None

    def push(self, window: NDArray[np.float32]) -> NDArray[np.float32]:
        """Return the model input for ``window`` and add it to the history.

        Parameters
        ----------
        window
            Output of :func:`beat_window`, shape ``(WINDOW_LEN,)``.

        Returns
        -------
        NDArray[np.float32]
            Shape ``(WINDOW_LEN, N_WINDOW_CHANNELS)``: channel 0 the window, channel 1 the
            template.

        Raises
        ------
        ValueError
            If ``window`` does not have shape ``(WINDOW_LEN,)``.
        """
        w = np.asarray(window, dtype=np.float32)
        if w.shape != (WINDOW_LEN,):
            msg = f"window must have shape ({WINDOW_LEN},), got {w.shape}"
            raise ValueError(msg)
        out = np.empty((WINDOW_LEN, N_WINDOW_CHANNELS), dtype=np.float32)
        out[:, 0] = w
        out[:, 1] = self._median() if self._count else w
        self.add(w)
        return out


ONTIME_FRACTION: Final = 0.8
"""A beat is on time when its pre-RR is at least this fraction of the longest of the
:data:`ONTIME_RR_BEATS` RR intervals before it: a PVC is 20 % early or more against the
rhythm it interrupts (Kamath & Fallen 1995; the ectopy rules' ``PACED_PREMATURE_FRACTION``),
and the longest recent interval is that rhythm's even where ectopic beats outnumber conducted
ones (couplets and a compensatory pause: mitdb 208), where a median is the ectopic beats'."""
ONTIME_RR_BEATS: Final = 4
"""RR intervals before a beat whose longest it is judged against."""
ONTIME_MIN_BEATS: Final = 4
"""On-time windows needed before :meth:`OnTimeTemplate.correlation` answers."""


class OnTimeTemplate:
    """The patient's dominant conducted beat: the median window of the recent *on-time* beats.

    :class:`BeatTemplateTracker` takes every beat, so where ectopic beats outnumber conducted
    ones (couplets between single conducted beats, mitdb 208) its median becomes the PVC's
    shape. This template takes only beats that come on time (pre-RR at least
    :data:`ONTIME_FRACTION` of the longest of the :data:`ONTIME_RR_BEATS` intervals before),
    whatever their label: the conducted rhythm's beats, a bundle-branch-block QRS included,
    not an early ectopic beat. A lasting faster rhythm is on time again once it fills the
    :data:`ONTIME_RR_BEATS` intervals. It is what the patient's-own-beat test compares a
    V-labelled beat with when ``inference.dominant_template = "on_time"``.

    Parameters
    ----------
    n_beats
        Windows in the median.
    """

    def __init__(self, n_beats: int = TEMPLATE_BEATS) -> None:
        self._tracker = BeatTemplateTracker(n_beats)
        self._rr: deque[float] = deque(maxlen=ONTIME_RR_BEATS)

    def reset(self) -> None:
        """Forget the template and the recent intervals (after a gap)."""
        self._tracker.reset()
        self._rr.clear()

    def correlation(self, window: NDArray[np.float32]) -> float | None:
        """Shifted correlation (-1..1) of ``window`` (shape ``(WINDOW_LEN,)``) with the template.

        None until :data:`ONTIME_MIN_BEATS` on-time windows are held, or for a flat span.
        """
        if self._tracker._count < ONTIME_MIN_BEATS:
            return None
        return beat_correlation(window, self._tracker._median())

    def push(self, window: NDArray[np.float32], pre_rr_s: float) -> None:
        """Add the beat's window (shape ``(WINDOW_LEN,)``) when its pre-RR (s) is on time."""
        rr = self._rr
        on_time = len(rr) == rr.maxlen and pre_rr_s >= ONTIME_FRACTION * max(rr)
        rr.append(pre_rr_s)
        if on_time:
            self._tracker.add(np.asarray(window, dtype=np.float32))


TEMPLATE_CORR_SPAN_S: Final = (0.125, 0.25)
"""The span compared by :func:`template_correlation`: 125 ms before to 250 ms after the
R-peak (the QRS and the ST segment, where a PVC differs most from a conducted beat)."""

TEMPLATE_CORR_MAX_LAG_S: Final = 0.08
"""Largest shift tried between a beat and its template, s (±10 samples at 128 Hz). The R-peak
detector's fiducial point can sit on R or on R' of an rSR' bundle-branch-block complex from
one beat to the next; without the shift such a beat's own morphology correlates poorly with
its template (mitdb 118: the 10th percentile of its N beats' correlation is -0.34 unshifted,
0.96 shifted)."""


def template_correlation(window: NDArray[np.float32]) -> float | None:
    """Morphology match of a beat with the patient's running template, in [-1, 1].

    The highest Pearson correlation between the beat (channel 0 of the model window) and its
    template (channel 1: the median of the preceding :data:`TEMPLATE_BEATS` windows,
    :class:`BeatTemplateTracker`) over :data:`TEMPLATE_CORR_SPAN_S`, the template shifted by
    up to :data:`TEMPLATE_CORR_MAX_LAG_S` either way. This is the template-matching test of
    beat classifiers that adapt to the patient's dominant beat (Hamilton PS, Tompkins WJ, EP
    Limited open-source arrhythmia detector, "match" of a beat against its QRS templates;
    de Chazal P, Reilly RB, "A patient-adapting heartbeat classifier using ECG morphology
    and heartbeat interval features", IEEE Trans Biomed Eng 2006;53(12):2535-2543,
    doi:10.1109/TBME.2006.883802): a beat that matches the dominant template is the
    patient's normal beat, however wide it is.

    Parameters
    ----------
    window
        Model window from :meth:`BeatTemplateTracker.push`, shape
        ``(WINDOW_LEN, N_WINDOW_CHANNELS)`` at :data:`MODEL_FS_HZ`, R-peak at sample
        ``round(WINDOW_PRE_S * MODEL_FS_HZ)``.

    Returns
    -------
    float | None
        The best correlation; None when the beat is its own template (no preceding beat
        since the start or a reset) or either span is flat.

    Raises
    ------
    ValueError
        If ``window`` does not have shape ``(WINDOW_LEN, N_WINDOW_CHANNELS)``.
    """
    w = np.asarray(window, dtype=np.float64)
    if w.shape != (WINDOW_LEN, N_WINDOW_CHANNELS):
        msg = f"window must have shape ({WINDOW_LEN}, {N_WINDOW_CHANNELS}), got {w.shape}"
        raise ValueError(msg)
    if (w[:, 0] == w[:, 1]).all():
        return None
    return _shifted_correlation(w[:, 0], w[:, 1])


def beat_correlation(
    window: NDArray[np.floating[Any]], previous: NDArray[np.floating[Any]]
) -> float | None:
    """Morphology match of a beat with the beat before it, in [-1, 1].

    The same shifted correlation as :func:`template_correlation`, with the previous beat's
    window instead of the template. Within a run of PVCs it says whether the beats look alike
    (a monomorphic run, the same ectopic focus) or not (noise and artefact read as V beats
    rarely repeat their shape): the "consistent morphology" test of the ectopy rules.

    Parameters
    ----------
    window, previous
        :func:`beat_window` outputs of the beat and of the beat before it, shape
        ``(WINDOW_LEN,)``.

    Returns
    -------
    float | None
        The best correlation; None when either span is flat.

    Raises
    ------
    ValueError
        If either window does not have shape ``(WINDOW_LEN,)``.
    """
    a = np.asarray(window, dtype=np.float64)
    b = np.asarray(previous, dtype=np.float64)
    if a.shape != (WINDOW_LEN,) or b.shape != (WINDOW_LEN,):
        msg = f"windows must have shape ({WINDOW_LEN},), got {a.shape} and {b.shape}"
        raise ValueError(msg)
    return _shifted_correlation(a, b)


_CORR_LAG: Final = round(TEMPLATE_CORR_MAX_LAG_S * MODEL_FS_HZ)  # 10 samples
_CORR_A: Final = max(_CORR_LAG, _PRE_N - round(TEMPLATE_CORR_SPAN_S[0] * MODEL_FS_HZ))
_CORR_B: Final = min(WINDOW_LEN - _CORR_LAG, _PRE_N + round(TEMPLATE_CORR_SPAN_S[1] * MODEL_FS_HZ))
# Indices of every shifted copy of the span, shape (2 * lag + 1, b - a): row i is the span
# shifted by i - lag. Gathering with it replaces a ``sliding_window_view`` per call (same
# values, same row layout, so the same reductions; issue 11).
_CORR_SHIFTS: Final = (
    np.arange(_CORR_A - _CORR_LAG, _CORR_A + _CORR_LAG + 1)[:, None]
    + np.arange(_CORR_B - _CORR_A)[None, :]
)


def _shifted_correlation(beat: NDArray[np.float64], other: NDArray[np.float64]) -> float | None:
    """Highest Pearson correlation of ``beat`` with ``other`` shifted by up to the max lag."""
    # Means as ``ndarray.mean`` computes them (pairwise sum / count), without its wrapper.
    n = _CORR_B - _CORR_A
    span = beat[_CORR_A:_CORR_B]
    x = span - np.add.reduce(span) / n
    nx = math.sqrt(x @ x)
    if nx == 0.0:
        return None
    # every shifted copy of the template span at once: shape (2 * lag + 1, b - a)
    shifted = other[_CORR_SHIFTS]
    y = shifted - np.add.reduce(shifted, axis=1, keepdims=True) / n
    ny = np.sqrt(np.einsum("ij,ij->i", y, y))
    if ny.all():
        r = (y @ x) / (ny * nx)
    else:
        ok = ny > 0.0
        if not ok.any():
            return None
        r = (y[ok] @ x) / (ny[ok] * nx)
    return min(max(float(np.maximum.reduce(r)), -1.0), 1.0)
