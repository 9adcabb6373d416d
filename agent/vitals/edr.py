"""Respiration rate from the ECG: ECG-derived respiration (EDR) from QRS amplitudes.

Breathing moves the heart's electrical axis relative to the electrodes and changes the
thoracic impedance, so the QRS amplitude rises and falls with each breath (Moody et al.
1985). The estimator keeps the R-peak times and QRS amplitudes of the last ``window_s``
seconds (32 s by default, the window of Charlton et al. 2016), and on request:

1. drops beats that cannot carry the respiratory modulation: beats labelled V, F or Q
   (:meth:`EdrRespirationEstimator.add`) and amplitude outliers (further than
   ``OUTLIER_REL`` of the median, or ``OUTLIER_MADS`` scaled MADs, from the window median:
   ectopic beats, artefact);
2. resamples the amplitude series linearly on a uniform ``resample_hz`` (4 Hz) grid between
   the first and last beat, removes its linear trend and applies a Hann window;
3. takes the largest FFT power between ``SEARCH_LOW_HZ`` and
   ``upper = min(BAND_HIGH_HZ, NYQUIST_MARGIN * HR / 2)`` as the respiration rate
   (reported range 5.4-42 breaths/min); the amplitude is sampled once per beat, so breathing
   faster than half the heart rate cannot be seen;
4. reports None (why in :attr:`~EdrRespirationEstimator.last_reason`) when the window has too
   few beats, a gap, too many outliers, a peak below 5.4/min (drift) or at the beat-sampling
   limit, or no dominant peak (the fraction of search-band power within
   ``PEAK_HALF_WIDTH_HZ`` of the peak, the *peak quality*, below ``min_quality``).

**Input amplitude.** Feed the QRS peak-to-peak amplitude of the ECG around each R peak
(:func:`qrs_peak_to_peak_uv`), not :attr:`agent.beats.Beat.amplitude_uv`. The latter is the
value of the *window-cleaned* ECG at the apex, and the streaming detector cleans 10 s windows
every 2 s: its filter-edge effects repeat with the hop. On ECGSYN at 60 bpm it alternated
beat to beat by up to ±15 % (719, 981, 683, 974 µV... while the raw R peaks varied by 5 %),
which read as a false rate in most windows and up to 15 breaths/min wrong.

**Why an FFT peak and not NeuroKit2.** Measured with
``nice -n 10 .venv/bin/python -m tools.edr_study`` (ECGSYN at 250 Hz, 90 s,
amplitude x ``1 + 0.1 r(t)``, 20 µV noise, R peaks from the agent's streaming detector,
3 seeds, HR 60/80/100, a 32 s estimate every 4 s from 40 s on):

- ``"fft_peak"`` (default), ``--rates 6,8,12,24``: breathing a sinusoid, every window gave
  a rate, max error 0.44 breaths/min. With ``nk.rsp_simulate`` breathing (irregular breaths;
  reference = mean breath period in the window): 51-100 % of windows gave a rate (fewest at
  24/min with HR 60, near the sampling limit), max error 1.5/min except one 6/min case
  (4.8). Unmodulated ECG gave a (false) rate in 12/65 windows at HR 60, 0/65 at 80, 4/65
  at 100. 0.1-0.4 ms per estimate here (numpy only). An earlier run of all rates 6-36/min
  (before the drift rule) gave the same picture: below 0.45 x HR, errors <= 2.4/min.
- ``"khodadad2018"`` (``nk.rsp_process`` breath detection on the series resampled at 10 Hz,
  since its 3 Hz low-pass needs more than 4 Hz) is kept for comparison: a 32 s window holds
  only three breaths at 6/min, so breath counting often returns nothing there, and it costs
  about 10 ms plus pandas per estimate.
- ``nk.ecg_rsp`` filters the heart-rate signal (respiratory sinus arrhythmia), which depends
  on age and vagal tone and, in ECGSYN, carries a fixed 0.25 Hz (15/min) component: it
  would measure the simulator, not the modulation, so it was not retained.

**Accuracy, honestly.** We have no respiration reference for real ECGs (mitdb has none):
the figures above are simulations. On ten minutes of each of eleven mitdb DS1 records
(MLII, no reference) the estimator gave a rate in only 2-50 % of windows (3/141 to 70/141),
medians 7-18.5 breaths/min (plausible at rest, not validated): on real ECG the quality gate
mostly says "don't know". On real recordings, Charlton et al. (2016) found that the best
ECG-based algorithms reached a bias near 0 with 95 % limits of agreement of about
±5 breaths/min: expect that, not the simulation's figures. Breathing faster than half the
heart rate aliases to a wrong, lower rate when the alias falls inside the band (36/min at
HR 60 read as 24/min): a physical limit of beat-sampled EDR. EDR is a trend for NEWS2, not
an apnoea monitor.

The module is over 400 lines because the measurements above, which justify each constant and
the default method, are kept beside the code they describe.

References
----------
Moody GB, Mark RG, Zoccola A, Mantero S. Derivation of respiratory signals from multi-lead
ECGs. Computers in Cardiology 1985;12:113-116.
Charlton PH, Bonnici T, Tarassenko L, Clifton DA, Beale R, Watkinson PJ. An assessment of
algorithms to estimate respiratory rate from the electrocardiogram and photoplethysmogram.
Physiol Meas 2016;37(4):610-626. doi:10.1088/0967-3334/37/4/610
Khodadad D, Nordebo S, Müller B, et al. Optimized breath detection algorithm in electrical
impedance tomography. Physiol Meas 2018;39(9):094001. doi:10.1088/1361-6579/aad7e6
Makowski D, et al. NeuroKit2: A Python toolbox for neurophysiological signal processing.
Behav Res Methods 2021;53:1689-1696. doi:10.3758/s13428-020-01516-y
"""

from __future__ import annotations

import functools
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

from agent.beats import Beat
from agent.dsp.stats import median_finite
from agent.errors import ConfigError
from agent.messages import AamiClass

__all__ = [
    "EDR_METHODS",
    "EdrEstimate",
    "EdrMethod",
    "EdrRespirationEstimator",
    "edr_rate_fft_peak",
    "edr_rate_khodadad2018",
    "qrs_peak_to_peak_uv",
]

logger = logging.getLogger(__name__)

BAND_LOW_HZ: Final = 0.09
"""Lowest respiration rate reported, Hz (5.4 breaths/min: 6/min with the margin of one FFT
bin and a half; RCP NEWS2 scores <= 8 as 3)."""

SEARCH_LOW_HZ: Final = 0.05
"""The peak is searched from 0.05 Hz: a maximum below ``BAND_LOW_HZ`` is a slow amplitude drift
(posture, electrode), not breathing, and gives None instead of a false 5-6 breaths/min."""

BAND_HIGH_HZ: Final = 0.7
"""Highest respiration rate reported, Hz (42 breaths/min; NEWS2 scores >= 25 as 3)."""

NYQUIST_MARGIN: Final = 0.9
"""The band stops at this fraction of the beat-sampling Nyquist frequency (HR / 2)."""

PEAK_HALF_WIDTH_HZ: Final = 0.05
"""Half-width of the spectral peak for the peak quality, Hz: the Hann main lobe of a 32 s
window is ±2/32 Hz wide, ±0.05 Hz holds most of a steady breathing rhythm's power."""

DEFAULT_MIN_QUALITY: Final = 0.6
"""Peak quality below which no rate is reported. Measured on synthetic R-amplitude series
(32 s, HR 50-100 bpm, 300 windows each): iid amplitude noise alone gives quality 0.35-0.56
(median; 95th percentile 0.52-0.78, highest at low HR where the band is narrowest); a 5 %
sinusoidal modulation with noise SD half its amplitude gives >= 0.52 (5th percentile) and
no error over 2 breaths/min. At 0.6, noise alone still yields a rate in about 10-45 % of
windows (by HR): quality gating cannot tell a weak rhythm from noise reliably."""

MIN_BEAT_RATE_PER_S: Final = 0.5
"""The window must hold at least ``window_s * 0.5`` beats (a mean HR >= 30 bpm)."""

MAX_GAP_S: Final = 3.0
"""A gap between kept beats longer than this (a pause, missed beats, leads off) voids the
window: interpolating across it would invent a slow oscillation."""

EDGE_TOLERANCE_S: Final = 3.0
"""The first and last kept beats must lie within this of the window's edges, s."""

OUTLIER_REL: Final = 0.5
"""An amplitude further than 50 % of the window median from it is an outlier (ectopic beat,
artefact); respiratory modulation of the R wave is typically 5-30 % (Moody et al. 1985)."""

OUTLIER_MADS: Final = 5.0
"""...or further than 5 scaled MADs (1.4826 * MAD, a robust SD) from the median."""

MAX_OUTLIER_FRACTION: Final = 0.2
"""More than 20 % outliers in the window: the signal is too poor, no rate."""

FFT_LEN: Final = 1024
"""Zero-padded FFT length: at 4 Hz a bin is 0.0039 Hz = 0.23 breaths/min."""

_EXCLUDED_CLASSES: Final = frozenset({AamiClass.V, AamiClass.F, AamiClass.Q})
"""Beats whose QRS is not the dominant morphology do not carry the respiratory modulation."""

EdrMethod = Literal["fft_peak", "khodadad2018"]


@dataclass(frozen=True, slots=True)
class EdrEstimate:
    """One respiration-rate estimate.

    Attributes
    ----------
    rate_per_min : float
        Respiration rate, breaths/min.
    quality : float
        Peak quality in [0, 1]: fraction of respiratory-band power within
        ``PEAK_HALF_WIDTH_HZ`` of the peak (1 = one pure rhythm).
    n_beats : int
        Beats used (after exclusions).
    window_start_s, window_end_s : float
        Stream time span of the window, s.
    """

    rate_per_min: float
    quality: float
    n_beats: int
    window_start_s: float
    window_end_s: float


def _band_quality(freqs_hz: NDArray[np.floating], power: NDArray[np.floating], k: int) -> float:
    total = float(power.sum())
    if total <= 0.0:
        return 0.0
    near = np.abs(freqs_hz - freqs_hz[k]) <= PEAK_HALF_WIDTH_HZ
    return float(power[near].sum() / total)


@functools.lru_cache(maxsize=32)
def _trend_and_taper(n: int) -> tuple[NDArray[np.float64], float, NDArray[np.float64]]:
    """Sample indices about their mean, their sum of squares, and ``np.hanning(n)``.

    For a series of ``n`` samples; the same few lengths recur window after window.
    """
    tc = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    return tc, float(tc @ tc), np.hanning(n)


def edr_rate_fft_peak(
    series: NDArray[np.float64], resample_hz: float, upper_hz: float
) -> tuple[float, float] | None:
    """Respiration rate as the largest FFT peak of a uniformly resampled EDR series.

    Parameters
    ----------
    series
        R-amplitude series resampled at ``resample_hz``, µV, shape ``(n_samples,)``, with at
        least 8 samples.
    resample_hz
        Its sampling rate, Hz.
    upper_hz
        Upper edge of the respiratory band, Hz (``BAND_LOW_HZ`` is the lower edge).

    Returns
    -------
    tuple[float, float] | None
        ``(rate_per_min, quality)``, or None for a flat or too-short series.

    References
    ----------
    Charlton et al. 2016, doi:10.1088/0967-3334/37/4/610 (frequency-domain RR estimation).
    """
    n = series.size
    if n < 8:
        return None
    tc, tc_sq, taper = _trend_and_taper(n)
    # least-squares line removed, in closed form about the centre of the series (the line
    # ``np.polyfit(t, series, 1)`` fits, without its SVD: issue 11)
    y = series - float(series.mean())
    y -= (float(tc @ series) / tc_sq) * tc
    if float(np.ptp(y)) <= 1e-6 * max(1.0, float(np.max(np.abs(series)))):
        return None  # flat: nothing but rounding left after the trend
    n_fft = max(FFT_LEN, 1 << (n - 1).bit_length())
    spectrum = np.fft.rfft(y * taper, n_fft)
    freqs_hz = np.fft.rfftfreq(n_fft, 1.0 / resample_hz)
    band = (freqs_hz >= SEARCH_LOW_HZ) & (freqs_hz <= upper_hz)
    if not np.any(band):
        return None
    power = (spectrum.real**2 + spectrum.imag**2)[band]
    f_band = freqs_hz[band]
    k = int(np.argmax(power))
    if f_band[k] < BAND_LOW_HZ:
        return None  # a slow drift of the amplitude dominates, not breathing
    if k >= power.size - 1 and upper_hz < BAND_HIGH_HZ:
        # Peak at the beat-sampling limit: breathing at or above half the heart rate aliases
        # onto it; the true rate cannot be told.
        return None
    return float(f_band[k] * 60.0), _band_quality(f_band, power, k)


def edr_rate_khodadad2018(
    series: NDArray[np.float64], resample_hz: float, upper_hz: float
) -> tuple[float, float] | None:
    """Respiration rate by NeuroKit2 breath detection (``nk.rsp_process``, khodadad2018).

    For comparison with :func:`edr_rate_fft_peak`; costs ~10x more and imports NeuroKit2
    lazily. Needs ``resample_hz`` > 6 Hz (its cleaning low-pass is 3 Hz).

    Parameters
    ----------
    series
        R-amplitude series resampled at ``resample_hz``, µV, shape ``(n_samples,)``.
    resample_hz
        Its sampling rate, Hz.
    upper_hz
        Rates above this band edge are rejected (returns None), Hz.

    Returns
    -------
    tuple[float, float] | None
        ``(mean rate over the window in breaths/min, quality)``, quality being the FFT peak
        quality of the same series; None when fewer than two breaths were found.

    References
    ----------
    Khodadad et al. 2018, doi:10.1088/1361-6579/aad7e6; Makowski et al. 2021,
    doi:10.3758/s13428-020-01516-y.
    """
    import neurokit2 as nk  # heavy import (~2 s, ~200 MiB): only for this method

    fft = edr_rate_fft_peak(series, resample_hz, upper_hz)
    if fft is None:
        return None
    try:
        signals, _ = nk.rsp_process(series, sampling_rate=resample_hz, method="khodadad2018")
    except (ValueError, IndexError):
        logger.debug("nk.rsp_process failed on a window", exc_info=True)
        return None
    rate = float(np.nanmean(np.asarray(signals["RSP_Rate"], dtype=np.float64)))
    if not math.isfinite(rate) or not BAND_LOW_HZ * 60 <= rate <= upper_hz * 60:
        return None
    return rate, fft[1]


EDR_METHODS: Final[
    dict[str, Callable[[NDArray[np.float64], float, float], tuple[float, float] | None]]
] = {
    "fft_peak": edr_rate_fft_peak,
    "khodadad2018": edr_rate_khodadad2018,
}
"""Rate estimators over the resampled EDR series, by name."""


class EdrRespirationEstimator:
    """Streaming respiration rate from R-peak times and amplitudes (ECG-derived respiration).

    Feed beats in stream order (:meth:`add_beat` or :meth:`add`) and ask :meth:`estimate`
    (or :meth:`rate_per_min`) every few seconds. Memory is bounded by the window.

    Parameters
    ----------
    window_s : float, optional
        Sliding window, s (default 32; 20-120 allowed). Longer is steadier and sees slower
        breathing, shorter follows changes faster.
    resample_hz : float, optional
        Rate of the uniform EDR series, Hz (default 4; 10 for ``"khodadad2018"``).
    method : {"fft_peak", "khodadad2018"}, optional
        Rate estimator (see :data:`EDR_METHODS`); default ``"fft_peak"``.
    min_quality : float, optional
        Peak quality below which no rate is given (default :data:`DEFAULT_MIN_QUALITY`).

    Raises
    ------
    ConfigError
        If a parameter is out of range or the method is unknown.

    Notes
    -----
    Minimum input: ``window_s * 0.5`` kept beats spanning the window (within 3 s of each
    edge) with no gap over 3 s; below that :meth:`estimate` returns None and says why in
    :attr:`last_reason`. It never raises on bad data: non-finite amplitudes or times are
    ignored.
    """

    def __init__(
        self,
        *,
        window_s: float = 32.0,
        resample_hz: float = 4.0,
        method: EdrMethod = "fft_peak",
        min_quality: float = DEFAULT_MIN_QUALITY,
    ) -> None:
        if not 20.0 <= window_s <= 120.0:
            msg = f"EDR window_s must be 20-120 s, got {window_s!r}"
            raise ConfigError(msg, "window_s")
        if not 2.0 * BAND_HIGH_HZ < resample_hz <= 50.0:
            msg = f"EDR resample_hz must be in (1.4, 50] Hz, got {resample_hz!r}"
            raise ConfigError(msg, "resample_hz")
        if method not in EDR_METHODS:
            msg = f"EDR method must be one of {sorted(EDR_METHODS)}, got {method!r}"
            raise ConfigError(msg, "method")
        if not 0.0 <= min_quality < 1.0:
            msg = f"EDR min_quality must be in [0, 1), got {min_quality!r}"
            raise ConfigError(msg, "min_quality")
        self.window_s = float(window_s)
        self.resample_hz = float(resample_hz)
        self.method: EdrMethod = method
        self.min_quality = float(min_quality)
        self._rate = EDR_METHODS[method]
        self._t_s: deque[float] = deque()
        self._amp_uv: deque[float] = deque()
        self._last_t_s = -math.inf
        self.last_reason = "no beats yet"
        """Why the last :meth:`estimate` returned None ("" when it gave a rate)."""

    def reset(self) -> None:
        """Forget every beat (after leads-off or a source change)."""
        self._t_s.clear()
        self._amp_uv.clear()
        self._last_t_s = -math.inf
        self.last_reason = "reset"

    def add_beat(self, r_peak_time_s: float, amplitude_uv: float) -> None:
        """Add one R peak.

        Parameters
        ----------
        r_peak_time_s
            Stream time of the R peak, s. Beats at or before the previous one are ignored.
        amplitude_uv
            R-wave amplitude of the cleaned ECG, µV (:attr:`agent.beats.Beat.amplitude_uv`).
            Non-finite values are ignored.
        """
        if not (math.isfinite(r_peak_time_s) and math.isfinite(amplitude_uv)):
            return
        if r_peak_time_s <= self._last_t_s:
            return
        self._last_t_s = r_peak_time_s
        self._t_s.append(float(r_peak_time_s))
        self._amp_uv.append(float(amplitude_uv))
        self._prune(r_peak_time_s)

    def add(self, beat: Beat, qrs_amplitude_uv: float | None) -> None:
        """Add a detected beat with its QRS amplitude (from :func:`qrs_peak_to_peak_uv`).

        Beats classified V, F or Q are not used (their QRS is not the dominant morphology).
        ``beat.amplitude_uv`` is deliberately not used: it is the window-cleaned ECG at the
        apex, which carries a filter-edge artefact repeating with the detector's hop (see
        :func:`qrs_peak_to_peak_uv`).

        Parameters
        ----------
        beat
            The beat (its ``r_peak_time_s`` and ``aami_class`` are used).
        qrs_amplitude_uv
            Its QRS peak-to-peak amplitude, µV; None (no ECG around it) skips the beat.
        """
        if beat.aami_class in _EXCLUDED_CLASSES or qrs_amplitude_uv is None:
            return
        self.add_beat(beat.r_peak_time_s, qrs_amplitude_uv)

    def _prune(self, now_s: float) -> None:
        start = now_s - self.window_s
        while self._t_s and self._t_s[0] < start:
            self._t_s.popleft()
            self._amp_uv.popleft()

    def _none(self, reason: str) -> None:
        self.last_reason = reason

    def estimate(self, now_s: float) -> EdrEstimate | None:
        """Estimate the respiration rate over the window ending at stream time ``now_s``.

        Parameters
        ----------
        now_s
            Stream time, s, at or after the last beat added.

        Returns
        -------
        EdrEstimate | None
            The rate and its quality, or None (reason in :attr:`last_reason`) when the
            window has too few beats, a gap, too many outliers or no dominant peak.
        """
        self._prune(now_s)
        start_s = now_s - self.window_s
        t = np.fromiter(self._t_s, dtype=np.float64, count=len(self._t_s))
        a = np.fromiter(self._amp_uv, dtype=np.float64, count=len(self._amp_uv))
        t, a = t[t <= now_s], a[t <= now_s]
        min_beats = math.ceil(self.window_s * MIN_BEAT_RATE_PER_S)
        if t.size < min_beats:
            self._none(f"too few beats ({t.size} < {min_beats}) in {self.window_s:g} s")
            return None
        if np.isfinite(a).all():
            median = median_finite(a)
            mad = 1.4826 * median_finite(np.abs(a - median))
        else:  # np.median's NaN rule
            median = float(np.median(a))
            mad = 1.4826 * float(np.median(np.abs(a - median)))
        limit = min(OUTLIER_REL * abs(median), OUTLIER_MADS * mad) if mad > 0 else 0.0
        keep = np.abs(a - median) <= limit if limit > 0 else np.ones(a.size, dtype=bool)
        if abs(median) <= 0 or np.mean(~keep) > MAX_OUTLIER_FRACTION:
            self._none(f"too many amplitude outliers ({np.mean(~keep):.0%})")
            return None
        t, a = t[keep], a[keep]
        if t.size < min_beats:
            self._none(f"too few usable beats ({t.size} < {min_beats})")
            return None
        if t[0] - start_s > EDGE_TOLERANCE_S or now_s - t[-1] > EDGE_TOLERANCE_S:
            self._none("beats do not cover the window")
            return None
        if float(np.max(np.diff(t))) > MAX_GAP_S:
            self._none(f"gap over {MAX_GAP_S:g} s between beats")
            return None
        beat_rate_hz = (t.size - 1) / float(t[-1] - t[0])
        upper_hz = min(BAND_HIGH_HZ, NYQUIST_MARGIN * beat_rate_hz / 2.0)
        grid = np.arange(t[0], t[-1], 1.0 / self.resample_hz)
        series = np.interp(grid, t, a)
        result = self._rate(series, self.resample_hz, upper_hz)
        if result is None:
            self._none("no respiratory rhythm found")
            return None
        rate, quality = result
        if quality < self.min_quality:
            self._none(f"no dominant respiratory peak (quality {quality:.2f})")
            return None
        self.last_reason = ""
        return EdrEstimate(
            rate_per_min=rate,
            quality=quality,
            n_beats=int(t.size),
            window_start_s=float(t[0]),
            window_end_s=float(t[-1]),
        )

    def rate_per_min(self, now_s: float) -> float | None:
        """Return :meth:`estimate`'s rate in breaths/min, or None."""
        est = self.estimate(now_s)
        return None if est is None else est.rate_per_min


QRS_HALF_WIDTH_MS: Final = 60.0
"""Half-width of the window around the R peak for the QRS peak-to-peak amplitude, ms: covers
Q, R and S of a normal QRS (< 120 ms wide)."""


def qrs_peak_to_peak_uv(
    ecg_uv: NDArray[np.floating],
    r_peak_idx: int,
    fs_hz: float,
    *,
    half_width_ms: float = QRS_HALF_WIDTH_MS,
) -> float | None:
    """Return the QRS peak-to-peak amplitude around an R peak, the EDR input, µV.

    The R-to-S (or Q-to-R) swing of the raw ECG inside ``±half_width_ms`` of the R peak.
    Baseline wander (< 1 Hz) barely moves within 120 ms, so no filtering is needed, and,
    unlike the value of a window-cleaned ECG at the apex, it has no filter-edge effects that
    repeat with the cleaning hop (which we measured as a beat-to-beat alternation of up to
    ±15 % at 60 bpm with a 2 s hop: a false 30 breaths/min).

    Parameters
    ----------
    ecg_uv
        ECG samples, µV, shape ``(n_samples,)`` at ``fs_hz``, raw or cleaned.
    r_peak_idx
        Index of the R peak in ``ecg_uv``.
    fs_hz
        Sampling rate, Hz.
    half_width_ms
        Half-width of the window, ms.

    Returns
    -------
    float | None
        Peak-to-peak amplitude, µV; None when the window is not entirely inside ``ecg_uv``
        or holds a non-finite sample (gap, leads off).

    References
    ----------
    Charlton et al. 2016, doi:10.1088/0967-3334/37/4/610 (QRS-amplitude EDR features).
    """
    half_n = max(1, round(half_width_ms * fs_hz / 1000.0))
    lo, hi = r_peak_idx - half_n, r_peak_idx + half_n + 1
    if lo < 0 or hi > ecg_uv.size:
        return None
    seg = ecg_uv[lo:hi]
    # a NaN or an infinity anywhere makes max - min NaN or infinite: one test, no mask
    pp = float(seg.max() - seg.min())
    return pp if math.isfinite(pp) else None
