"""Ventricular fibrillation / flutter from the ECG waveform: a streaming window detector.

Every ``hop_s`` (1 s) the detector judges the last ``window_s`` seconds of one ECG lead:

1. the raw window (plus ``MARGIN_S`` before it, dropped after filtering) is resampled to
   ``CANONICAL_FS_HZ`` (125 Hz) with :func:`scipy.signal.resample_poly`, so one set of
   parameters serves every stream rate from 100 to 1000 Hz, and band-passed 1-30 Hz
   (Butterworth order 2, zero phase over the window: the usual VF-detector preprocessing,
   Amann et al. 2005);
2. nine features are computed (:data:`FEATURE_NAMES`): TCSC (Arafat et al.
   2009), the VF-filter leakage (Kuo & Dillman 1978), Barro's spectral A2 and FSMN and the
   spectral peak frequency (Barro et al. 1989, as implemented in Amann et al. 2005), the
   phase-space occupancy PSR (Amann et al. 2007), the 12-30 Hz power fraction (QRS and
   muscle noise have it, VF has almost none), the excess kurtosis and the log amplitude;
3. a logistic regression over the standardised features gives a VF probability; the window
   votes VF when the probability reaches ``threshold``, its band amplitude is above
   ``MIN_STD_UV`` and at most ``MAX_INVALID_FRAC`` of it is NaN;
4. confirmation: the state turns ``VF`` when ``k_on`` of the last ``n_on`` windows voted
   VF, and back to ``none`` after ``n_off`` non-VF windows in a row.

The coefficients, threshold and voting counts (:data:`VF_PARAMS_TUNED`) were tuned with
patient-wise (leave-one-record-out) folds on vfdb and MIT-BIH DS1 by ``python -m tools.vf
tune``; MIT-BIH DS2 was not used. What they achieve is in ``docs/vf_detector.md``.

Ventricular tachycardia is **not** told apart from VF: on vfdb, the features of VT windows
are indistinguishable from those of VF (per-feature AUC VF-vs-VT 0.45-0.58), so the detector
emits only ``VF`` and ``none``. ``vtach`` comes from the beat classifier (runs of V beats).
A fast polymorphic VT often reads as VF here (a VF alarm during VT is counted separately in
the evaluation, not hidden among false alarms).

The detector is pure (no I/O, no clock): feed it contiguous chunks; it returns changes with
sample indices at the stream's own rate.

References
----------
Kuo S, Dillman R. Computer detection of ventricular fibrillation. Computers in Cardiology
1978:347-349.
Barro S, Ruiz R, Cabello D, Mira J. Algorithmic sequential decision-making in the frequency
domain for life threatening ventricular arrhythmias and imitative artefacts: a diagnostic
system. J Biomed Eng 1989;11(4):320-328. doi:10.1016/0141-5425(89)90067-8
Amann A, Tratnig R, Unterkofler K. Reliability of old and new ventricular fibrillation
detection algorithms for automated external defibrillators. Biomed Eng Online 2005;4:60.
doi:10.1186/1475-925X-4-60
Amann A, Tratnig R, Unterkofler K. Detecting ventricular fibrillation by time-delay methods.
IEEE Trans Biomed Eng 2007;54(1):174-177. doi:10.1109/TBME.2006.880909
Arafat MA, Chowdhury AW, Hasan MK. A simple time domain algorithm for the detection of
ventricular fibrillation in electrocardiogram. Signal Image Video Process 2011;5:1-10
(TCSC; conference version 2009). doi:10.1007/s11760-009-0136-1

Length: the features, the logistic model and the streaming detector stay together because
``tools.vf`` tunes exactly these functions.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Final, Literal, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from agent.dsp.polyphase import PolyResampler
from agent.dsp.zerophase import ZeroPhaseSos
from agent.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = [
    "CANONICAL_FS_HZ",
    "FEATURE_NAMES",
    "MARGIN_S",
    "N_FEATURES",
    "VF_DETECTOR_NAME",
    "VF_DETECTOR_VERSION",
    "VF_PARAMS_TUNED",
    "VfChange",
    "VfDetector",
    "VfParams",
    "VoteConfirmation",
    "vf_resample_ratio",
    "vf_window_features",
    "vf_window_probability",
]

VF_DETECTOR_NAME: Final = "vf_features"
VF_DETECTOR_VERSION: Final = "1"
"""Name and version of this detector in alarms' ``model_versions`` (it has no model file:
bump the version whenever :data:`VF_PARAMS_TUNED` or the features change)."""

CANONICAL_FS_HZ: Final = 125.0
"""Rate at which every window is analysed, Hz: VF energy lies below 10 Hz and the features
use 1-30 Hz, so 125 Hz keeps everything with margin at the lowest cost."""
MIN_FS_HZ: Final = 100.0
"""Lowest supported stream rate, Hz (the 30 Hz band edge needs margin below Nyquist)."""
MAX_FS_HZ: Final = 1000.0
"""Highest supported stream rate, Hz."""
BAND_HZ: Final = (1.0, 30.0)
"""Band-pass applied to each window: drops baseline wander below 1 Hz and muscle noise above
30 Hz, as the detectors reviewed by Amann et al. (2005) do."""
MARGIN_S: Final = 1.0
"""Raw signal taken before each window, s, and dropped after resampling and filtering so that
their start-up transients fall outside the window."""
MIN_STD_UV: Final = 20.0
"""A window whose band-passed standard deviation is below this (µV) never votes VF: it is
asystole or a flat lead (asystole has its own detector). The lowest VF window in the tuning
data (fine VF of vfdb 426) has 33 µV; AAMI EC13 allows 30 µV peak-to-valley system noise."""
MAX_INVALID_FRAC: Final = 0.1
"""A window with more than this fraction of NaN samples is not judged (votes non-VF); shorter
gaps are bridged by linear interpolation."""
TCSC_BLOCK_S: Final = 3.0
"""TCSC block length, s (Arafat et al.: 3 s blocks with a 0.25 s cosine taper at each end,
samples normalised by the block's maximum, threshold 0.2)."""
TCSC_STEP_S: Final = 1.0
"""Step between TCSC blocks inside one window, s (Arafat et al. average successive blocks)."""
TCSC_TAPER_S: Final = 0.25
TCSC_THRESHOLD: Final = 0.2
PSR_TAU_S: Final = 0.5
"""Phase-space delay, s, and grid size (Amann et al. 2007: tau 0.5 s, 40 x 40 boxes)."""
PSR_GRID: Final = 40
SPECTRUM_FLOOR: Final = 0.05
"""Barro et al.: spectral amplitudes below 5 % of the maximum are set to zero."""
PEAK_BAND_HZ: Final = (0.5, 9.0)
"""Band searched for the spectral peak F (Barro et al.)."""
HF_BAND_HZ: Final = (12.0, 30.0)
"""Band of the high-frequency power fraction (QRS complexes and muscle noise; not VF)."""

FEATURE_NAMES: Final = (
    "tcsc_pct",
    "vf_leak",
    "a2",
    "fsmn",
    "peak_hz",
    "psr",
    "hf_frac",
    "kurtosis",
    "log10_std_uv",
)
"""Window features, in the order of :func:`vf_window_features`."""
N_FEATURES: Final = len(FEATURE_NAMES)


class WindowModelParams(Protocol):
    """The parameters of a window-voting logistic detector.

    :class:`VfParams` here, ``VtParams`` in :mod:`agent.rhythm.ventricular`.
    """

    @property
    def window_s(self) -> float: ...
    @property
    def hop_s(self) -> float: ...
    @property
    def feature_mean(self) -> tuple[float, ...]: ...
    @property
    def feature_scale(self) -> tuple[float, ...]: ...
    @property
    def coef(self) -> tuple[float, ...]: ...
    @property
    def threshold(self) -> float: ...
    @property
    def k_on(self) -> int: ...
    @property
    def n_on(self) -> int: ...
    @property
    def n_off(self) -> int: ...


def validate_window_model(params: WindowModelParams, n_features: int, what: str) -> None:
    """Check a window-voting detector's parameters.

    Parameters
    ----------
    params
        The parameters.
    n_features
        Length the feature vectors must have.
    what
        Detector name for the error message (``"VF detector"``).

    Raises
    ------
    ConfigError
        If a length or count is out of range or a vector has the wrong length.
    """
    checks = {
        "window_s": TCSC_BLOCK_S <= params.window_s <= 30.0,
        "hop_s": 0.1 <= params.hop_s <= params.window_s,
        "feature_mean": len(params.feature_mean) == n_features,
        "feature_scale": len(params.feature_scale) == n_features
        and all(s > 0 for s in params.feature_scale),
        "coef": len(params.coef) == n_features,
        "threshold": 0.0 < params.threshold < 1.0,
        "k_on": 1 <= params.k_on <= params.n_on,
        "n_off": params.n_off >= 1,
    }
    for name, ok in checks.items():
        if not ok:
            msg = f"invalid {what} parameter {name} in {params}"
            raise ConfigError(msg, name)


@dataclass(frozen=True, slots=True)
class VfParams:
    """Window geometry, classifier and confirmation parameters of :class:`VfDetector`.

    Attributes
    ----------
    window_s : float
        Length of each judged window, s.
    hop_s : float
        Time between window ends, s.
    feature_mean, feature_scale : tuple[float, ...]
        Standardisation of each feature (:data:`FEATURE_NAMES` order), ``z = (x - mean) /
        scale``.
    coef : tuple[float, ...]
        Logistic-regression weights over the standardised features.
    intercept : float
        Logistic-regression intercept.
    threshold : float
        A window votes VF when its probability is at least this (0..1).
    k_on, n_on : int
        The state turns VF when ``k_on`` of the last ``n_on`` windows voted VF.
    n_off : int
        The state returns to none after ``n_off`` non-VF windows in a row.
    """

    window_s: float = 6.0
    hop_s: float = 1.0
    feature_mean: tuple[float, ...] = field(default=(0.0,) * N_FEATURES)
    feature_scale: tuple[float, ...] = field(default=(1.0,) * N_FEATURES)
    coef: tuple[float, ...] = field(default=(0.0,) * N_FEATURES)
    intercept: float = 0.0
    threshold: float = 0.5
    k_on: int = 3
    n_on: int = 4
    n_off: int = 3

    def validate(self) -> None:
        """Check the parameters.

        Raises
        ------
        ConfigError
            If a length or count is out of range or a vector has the wrong length.
        """
        validate_window_model(self, N_FEATURES, "VF detector")


# Tuned by `python -m tools.vf tune --data ../shared/data` (leave-one-record-out folds on
# vfdb 418-428 and MIT-BIH DS1; DS2 never used). Provenance and figures: docs/vf_detector.md.
VF_PARAMS_TUNED: Final = VfParams(
    window_s=6.0,
    hop_s=1.0,
    feature_mean=(
        17.0279,
        0.77423,
        0.20212,
        3.50621,
        3.26562,
        0.116631,
        0.193255,
        9.90909,
        2.37355,
    ),
    feature_scale=(
        14.8203,
        0.105196,
        0.116631,
        1.84185,
        1.63065,
        0.05657,
        0.150424,
        7.0853,
        0.25107,
    ),
    coef=(2.71268, -0.891952, -0.974276, 2.71445, 4.28155, 0.381076, -7.76468, 0.313131, -0.842184),
    intercept=-10.9127,
    threshold=0.9,
    k_on=4,
    n_on=4,
    n_off=3,
)


@dataclass(frozen=True, slots=True)
class VfChange:
    """A change of the VF state.

    Attributes
    ----------
    rhythm : {"VF", "VT", "none"}
        The new state. This detector emits only ``"VF"`` (ventricular fibrillation or
        flutter) and ``"none"``; ``"VT"`` is part of the contract for a future VT detector.
    onset_idx : int
        Stream sample index (at the stream's ``fs_hz``) where the new state is estimated to
        start: for VF the middle of the first VF window of the deciding run (a window is
        called VF when most of it is VF), for none the end of the last VF window.
    decided_idx : int
        Stream sample index at which the change was decided: one past the last sample of
        the deciding window (the alarm time).
    probability : float
        VF probability of the deciding window (0..1).
    """

    rhythm: Literal["VF", "VT", "none"]
    onset_idx: int
    decided_idx: int
    probability: float


@lru_cache(maxsize=64)
def vf_resample_ratio(fs_hz: float) -> tuple[int, int]:
    """Integer ``(up, down)`` with ``fs_hz * up / down`` closest to ``CANONICAL_FS_HZ``.

    Parameters
    ----------
    fs_hz : float
        Stream rate, Hz.

    Returns
    -------
    tuple[int, int]
        Resampling factors for :func:`scipy.signal.resample_poly` (denominator at most 256,
        so non-integer rates are approximated to better than 0.5 %). Cached: building the
        :class:`~fractions.Fraction` took about 45 µs, twice per second of signal.
    """
    frac = Fraction(CANONICAL_FS_HZ / fs_hz).limit_denominator(256)
    return frac.numerator, frac.denominator


_SOS: Final = signal.butter(2, BAND_HZ, btype="bandpass", fs=CANONICAL_FS_HZ, output="sos")
_BAND: Final = ZeroPhaseSos(_SOS)
"""The 1-30 Hz band-pass, forward-backward, its initial conditions computed once."""


@lru_cache(maxsize=16)
def _resampler(up: int, down: int, n_in: int) -> PolyResampler:
    """Return the resampler for windows of ``n_in`` samples (bit-for-bit ``resample_poly``)."""
    return PolyResampler(up, down, n_in)


_sum = np.add.reduce
"""``np.sum`` of a 1-D float64 array without its argument handling (the same reduction, so
the same pairwise sum and the same bits; ``np.sum`` costs about 5 µs a call in wrappers)."""


def _mean(x: NDArray[np.float64]) -> float:
    """``float(np.mean(x))`` for 1-D float64 ``x``, bit for bit (the sum over the count)."""
    return float(_sum(x)) / x.size


def _first_at_least(f: NDArray[np.float64], lo: float) -> int:
    """Index of the first frequency ``>= lo`` (``f`` ascending)."""
    return int(np.searchsorted(f, lo, side="left"))


def _past(f: NDArray[np.float64], hi: float) -> int:
    """Index one past the last frequency ``<= hi`` (``f`` ascending)."""
    return int(np.searchsorted(f, hi, side="right"))


@dataclass(frozen=True, slots=True)
class _Geometry:
    """What every window of one length ``n`` at one rate ``fs`` shares, computed once.

    The spectrum's frequencies are ascending, so each band mask ``(f >= lo) & (f <= hi)`` of
    the plain formulation is a contiguous run: kept as a slice, whose sum is the same pairwise
    sum over the same values as the masked copy's (``tests/agent/rhythm/
    test_window_features_reference.py`` pins every feature to that formulation).
    """

    hamming: NDArray[np.float64]
    f: NDArray[np.float64]
    f_list: list[float]
    """``f`` as Python floats, for :func:`bisect.bisect_left` / ``bisect_right``."""
    hf: slice
    full: slice
    peak: slice
    tcsc_rows: NDArray[np.intp]
    """Sample indices of the TCSC blocks, shape ``(n_blocks, block)``."""
    tcsc_taper: NDArray[np.float64]
    psr_tau: int


@lru_cache(maxsize=16)
def _geometry(n: int, fs: float) -> _Geometry:
    f = np.asarray(np.fft.rfftfreq(n, 1.0 / fs), dtype=np.float64)
    blk = round(TCSC_BLOCK_S * fs)
    step = round(TCSC_STEP_S * fs)
    taper_n = round(TCSC_TAPER_S * fs)
    w = np.ones(blk)
    ramp = 0.5 * (1.0 - np.cos(np.pi * np.arange(taper_n) / taper_n))
    w[:taper_n] = ramp
    w[-taper_n:] = ramp[::-1]
    starts = np.arange(0, n - blk + 1, step)  # the rows of sliding_window_view(y, blk)[::step]
    return _Geometry(
        hamming=np.hamming(n),
        f=f,
        f_list=[float(v) for v in f],
        hf=slice(_first_at_least(f, HF_BAND_HZ[0]), _past(f, HF_BAND_HZ[1])),
        full=slice(_first_at_least(f, BAND_HZ[0]), _past(f, BAND_HZ[1])),
        peak=slice(_first_at_least(f, PEAK_BAND_HZ[0]), _past(f, PEAK_BAND_HZ[1])),
        tcsc_rows=starts[:, None] + np.arange(blk)[None, :],
        tcsc_taper=w,
        psr_tau=round(PSR_TAU_S * fs),
    )


def _bridge_nans(x: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """Linear interpolation over NaN samples; None when too many are NaN."""
    bad = ~np.isfinite(x)
    n_bad = int(np.count_nonzero(bad))
    if n_bad == 0:
        return x
    if n_bad > MAX_INVALID_FRAC * x.size:
        return None
    idx = np.arange(x.size)
    return np.interp(idx, idx[~bad], x[~bad])


def band_window(
    raw_uv: NDArray[np.float64], fs_hz: float, window_s: float
) -> tuple[NDArray[np.float64], float]:
    """Resample the judged window to the canonical rate and band-pass it; return it and the rate.

    Step 1 of the module docstring: mean removed, resampled to ``CANONICAL_FS_HZ``, 1-30 Hz
    zero phase, the ``MARGIN_S`` before the window dropped. Shared by the VF and VT features.
    """
    up, down = vf_resample_ratio(fs_hz)
    fs_c = fs_hz * up / down
    y = raw_uv - _mean(raw_uv)
    if up != down:
        y = _resampler(up, down, y.size)(y)
    y = _BAND(y)
    return y[-round(window_s * fs_c) :], fs_c


def vf_window_features(
    raw_uv: NDArray[np.float64], fs_hz: float, window_s: float
) -> NDArray[np.float64]:
    """Features of one window.

    Parameters
    ----------
    raw_uv : NDArray[np.float64]
        Raw ECG in µV at ``fs_hz``, shape ``(n_samples,)``: the window plus ``MARGIN_S``
        before it (``round((window_s + MARGIN_S) * fs_hz)`` samples), finite values.
    fs_hz : float
        Sampling rate of ``raw_uv``, Hz (100-1000).
    window_s : float
        Length of the judged window, s (at least ``TCSC_BLOCK_S``).

    Returns
    -------
    NDArray[np.float64]
        Shape ``(N_FEATURES,)``, in :data:`FEATURE_NAMES` order: TCSC in % of samples;
        leakage (0..1, dimensionless); A2 (0..1); FSMN (dimensionless, in units of the peak
        frequency); peak frequency in Hz; PSR (0..1, fraction of visited boxes); 12-30 Hz
        power fraction (0..1); log10 of the band-passed standard deviation in µV.
    """
    y, fs_c = band_window(raw_uv, fs_hz, window_s)
    return _features(y, fs_c)


def _tcsc_pct(y: NDArray[np.float64], g: _Geometry) -> float:
    """TCSC (Arafat et al.): mean % of samples above 0.2 x block max over 3 s blocks."""
    segs = np.abs(y[g.tcsc_rows] * g.tcsc_taper)
    mx = np.maximum.reduce(segs, axis=1, keepdims=True)
    mx[mx == 0.0] = 1.0
    return np.count_nonzero(segs / mx > TCSC_THRESHOLD) / segs.size * 100.0


def _vf_leak(y: NDArray[np.float64]) -> float:
    """VF-filter leakage (Kuo & Dillman): residue of a notch at the mean period."""
    dsum = float(_sum(np.abs(y[1:] - y[:-1])))
    period = math.floor(math.pi * float(_sum(np.abs(y))) / max(dsum, 1e-12) + 0.5)
    period = min(max(period, 1), y.size - 1)
    a, b = y[period:], y[:-period]
    return float(_sum(np.abs(a + b))) / max(float(_sum(np.abs(a) + np.abs(b))), 1e-12)


def _floored_peak_hz(spec: NDArray[np.float64], g: _Geometry) -> float:
    """Spectral peak frequency, Hz, of a window's Hamming amplitude spectrum ``spec``.

    Barro et al. (1989) as in Amann et al. (2005): amplitudes below ``SPECTRUM_FLOOR`` of the
    largest are zeroed (in place: :func:`_features` goes on with the floored spectrum), then
    the largest in the peak band.
    """
    spec[spec < SPECTRUM_FLOOR * np.maximum.reduce(spec)] = 0.0
    return float(g.f_list[g.peak.start + int(spec[g.peak].argmax())])


def _kurtosis_var(y: NDArray[np.float64]) -> tuple[float, float]:
    """Excess kurtosis and variance (``np.var``) of a window.

    QRS spikes on a flat baseline are heavy-tailed, VF and flutter are near-sinusoidal (a sine
    wave's excess kurtosis is -1.5). The fourth power is a square of squares: ``dev**4`` goes
    through ``pow`` element by element, about 48 us for a 1,000-sample window against 1 us
    (issue 11).
    """
    dev = y - _mean(y)
    dev2 = dev * dev
    var = float(_sum(dev2)) / y.size  # np.var(y), so its root is np.std(y)
    m2 = max(var, 1e-12)
    return float(_sum(dev2 * dev2)) / y.size / m2**2 - 3.0, var


def _features(y: NDArray[np.float64], fs: float) -> NDArray[np.float64]:
    g = _geometry(y.size, fs)
    f, fl = g.f, g.f_list
    spec = np.abs(np.fft.rfft(y * g.hamming))
    power = spec * spec
    hf = float(_sum(power[g.hf]))
    full = float(_sum(power[g.full]))
    # Barro et al. (1989) as in Amann et al. (2005): A2 and FSMN around the peak F.
    peak_hz = _floored_peak_hz(spec, g)
    tot_m = slice(g.peak.start, bisect_right(fl, min(20.0 * peak_hz, 0.5 * fs)))
    tot = max(float(_sum(spec[tot_m])), 1e-12)
    a2 = float(_sum(spec[bisect_left(fl, 0.7 * peak_hz) : bisect_right(fl, 1.4 * peak_hz)])) / tot
    fsmn = float(_sum(spec[tot_m] * f[tot_m])) / tot / max(peak_hz, 1e-6)
    # Phase-space reconstruction (Amann et al. 2007).
    tau = g.psr_tau
    lo = np.minimum.reduce(y)
    z = (y - lo) / max(float(np.maximum.reduce(y) - lo), 1e-12)
    ix = np.minimum((z * PSR_GRID).astype(np.int64), PSR_GRID - 1)
    visited = np.bincount(ix[tau:] * PSR_GRID + ix[:-tau], minlength=PSR_GRID**2)
    psr = np.count_nonzero(visited) / PSR_GRID**2
    kurt, var = _kurtosis_var(y)
    return np.array(
        [
            _tcsc_pct(y, g),
            _vf_leak(y),
            a2,
            fsmn,
            peak_hz,
            psr,
            hf / max(full, 1e-12),
            kurt,
            math.log10(max(math.sqrt(var), 1e-3)),
        ]
    )


def vf_window_probability(features: NDArray[np.float64], params: VfParams) -> NDArray[np.float64]:
    """Logistic-regression VF probability of windows.

    Parameters
    ----------
    features : NDArray[np.float64]
        Shape ``(n_windows, N_FEATURES)`` or ``(N_FEATURES,)``.
    params : VfParams
        Standardisation and coefficients.

    Returns
    -------
    NDArray[np.float64]
        Probabilities 0..1, shape ``(n_windows,)`` (or ``()`` for one window).
    """
    z = (features - np.asarray(params.feature_mean)) / np.asarray(params.feature_scale)
    logit = z @ np.asarray(params.coef) + params.intercept
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(logit, -50.0, 50.0))))


class WindowVoter(ABC):
    """Windows every ``hop_s``, a probability per window, ``k_on`` of ``n_on`` voting.

    The streaming part shared by the VF/VFL detector (:class:`VfDetector`) and the VT
    detector (:class:`agent.rhythm.ventricular.VtDetector`): samples are buffered, the window
    ending at each multiple of ``hop_s`` (plus ``MARGIN_S`` before it) is judged by
    :meth:`window_probability`, the state turns on when ``k_on`` of the last ``n_on`` windows
    voted (probability >= ``threshold``) and off after ``n_off`` non-votes in a row. Subclasses
    give the window probability.

    Parameters
    ----------
    fs_hz : float
        Sampling rate of the pushed samples, Hz.
    params : WindowModelParams
        Window length and hop, threshold and voting counts (already validated).

    Attributes
    ----------
    active : bool
        The state: on after ``k_on`` votes, off after ``n_off`` non-votes.
    probability : float
        Probability of the latest window (0..1).
    """

    def __init__(self, fs_hz: float, params: WindowModelParams) -> None:
        self.fs_hz = float(fs_hz)
        self._hop_n = max(1, round(params.hop_s * fs_hz))
        self._win_n = round(params.window_s * fs_hz)
        self._need_n = round((params.window_s + MARGIN_S) * fs_hz)
        self._next_end = -(-self._need_n // self._hop_n) * self._hop_n
        self._buf = np.zeros(0, dtype=np.float64)
        self._buf_start = 0  # stream index of self._buf[0]
        self._confirm = VoteConfirmation(params.k_on, params.n_on, params.n_off, self._win_n)
        self._threshold = params.threshold
        self.probability = 0.0

    @property
    def active(self) -> bool:
        """The state: on after ``k_on`` votes, off after ``n_off`` non-votes."""
        return self._confirm.active

    @property
    def n_seen(self) -> int:
        """Samples pushed so far."""
        return self._buf_start + self._buf.size

    @abstractmethod
    def window_probability(self, raw: NDArray[np.float64]) -> float:
        """Return the probability (0..1) of one raw window (µV, ``window_s + MARGIN_S``).

        Each detector (:class:`VfDetector`, ``VtDetector``) gives its own.
        """

    def push_transitions(
        self, samples_uv: NDArray[np.float32]
    ) -> list[tuple[bool, int, int, float]]:
        """Feed contiguous samples (µV, NaN = invalid); return the state's transitions.

        Returns
        -------
        list[tuple[bool, int, int, float]]
            ``(on, onset_idx, decided_idx, probability)`` in stream order: turning on, the
            onset is half a window before the end of the first voting window; turning off,
            the end of the last voting window.
        """
        x = np.asarray(samples_uv, dtype=np.float64).reshape(-1)
        if x.size:
            self._buf = np.concatenate([self._buf, x])
        out: list[tuple[bool, int, int, float]] = []
        while self._next_end <= self.n_seen:
            end = self._next_end
            lo = end - self._need_n - self._buf_start
            change = self._judge(self._buf[lo : lo + self._need_n], end)
            if change is not None:
                out.append(change)
            self._next_end += self._hop_n
        keep_from = self._next_end - self._need_n - self._buf_start
        if keep_from > 0:
            self._buf = self._buf[keep_from:]
            self._buf_start += keep_from
        return out

    def _judge(self, raw: NDArray[np.float64], end: int) -> tuple[bool, int, int, float] | None:
        """Judge the raw window ending at ``end``; return the state's transition or None."""
        return self._vote(self.window_probability(raw), end)

    def _vote(self, prob: float, end: int) -> tuple[bool, int, int, float] | None:
        """Count one window's vote; return ``(on, onset_idx, decided_idx, probability)`` or None."""
        self.probability = prob
        change = self._confirm.push(prob >= self._threshold, end)
        return None if change is None else (*change, end, prob)


class VoteConfirmation:
    """``k_on`` votes among the last ``n_on`` windows turn a state on, ``n_off`` non-votes off.

    The confirmation of :class:`WindowVoter` (step 4 of the module docstring), kept apart so
    that one detector can confirm two kinds of vote separately
    (:class:`agent.rhythm.ventricular.VtDetector`).

    Parameters
    ----------
    k_on, n_on, n_off : int
        Confirmation counts (validated by the detector's parameters).
    win_n : int
        Window length, samples (the onset is dated half a window before the end of the first
        voting window of the deciding run).
    """

    def __init__(self, k_on: int, n_on: int, n_off: int, win_n: int) -> None:
        self._k_on = k_on
        self._n_off = n_off
        self._half_win_n = win_n // 2
        self._votes: deque[tuple[bool, int]] = deque(maxlen=n_on)  # (vote, end_idx)
        self._negatives = 0
        self._last_end = 0  # end of the last window that voted
        self.active = False

    def push(self, vote: bool, end: int) -> tuple[bool, int] | None:
        """Count the vote of the window ending at stream index ``end``.

        Returns
        -------
        tuple[bool, int] | None
            ``(True, onset_idx)`` when the state turns on (half a window before the end of the
            first voting window among the last ``n_on``), ``(False, end_idx)`` when it turns
            off (the end of the last voting window), None otherwise.
        """
        self._votes.append((vote, end))
        if vote:
            self._negatives = 0
            self._last_end = end
        else:
            self._negatives += 1
        if not self.active and sum(v for v, _ in self._votes) >= self._k_on:
            self.active = True
            first_end = next(e for v, e in self._votes if v)
            return (True, max(0, first_end - self._half_win_n))
        if self.active and self._negatives >= self._n_off:
            self.active = False
            self._votes.clear()
            return (False, self._last_end)
        return None


class VfDetector(WindowVoter):
    """Streaming VF / VFL detector over one ECG lead.

    Parameters
    ----------
    fs_hz : float
        Sampling rate of the pushed samples, Hz (100-1000).
    params : VfParams, optional
        Detector parameters (default: :data:`VF_PARAMS_TUNED`).

    Raises
    ------
    ConfigError
        If ``fs_hz`` is outside 100-1000 Hz or ``params`` is invalid.

    Notes
    -----
    The first window is judged once ``window_s + MARGIN_S`` seconds have arrived (7 s with the
    shipped parameters); until then nothing is reported. With windows every ``hop_s`` the
    state turns VF at the earliest ``k_on - 1`` hops after the first VF window. Cost: one
    window of resampling, filtering, an FFT and a few reductions per hop (about 0.25 ms at
    130 Hz on an x86 core, i.e. < 0.05 % of a core; ``docs/benchmarks.md``, session 7).
    """

    def __init__(self, fs_hz: float, params: VfParams = VF_PARAMS_TUNED) -> None:
        if not MIN_FS_HZ <= fs_hz <= MAX_FS_HZ:
            msg = f"fs_hz must be in [{MIN_FS_HZ}, {MAX_FS_HZ}] Hz, got {fs_hz}"
            raise ConfigError(msg, "fs_hz")
        params.validate()
        super().__init__(fs_hz, params)
        self.params = params

    @property
    def in_vf(self) -> bool:
        """True while the detector is in VF."""
        return self.active

    def push(self, samples_uv: NDArray[np.float32]) -> list[VfChange]:
        """Feed the next contiguous samples; return the state changes they caused.

        Parameters
        ----------
        samples_uv : NDArray[np.float32]
            ECG in µV at ``fs_hz``, shape ``(n_samples,)``, any length; NaN = invalid.

        Returns
        -------
        list[VfChange]
            Changes in stream order (usually none).
        """
        changes = []
        for on, onset, end, prob in self.push_transitions(samples_uv):
            if on:
                logger.debug("VF from %d (decided at %d, p=%.2f)", onset, end, prob)
            else:
                logger.debug("VF ended at %d (decided at %d)", onset, end)
            changes.append(VfChange("VF" if on else "none", onset, end, prob))
        return changes

    def window_probability(self, raw: NDArray[np.float64]) -> float:
        """VF probability of one raw window; 0 when too much is NaN or it is near flat."""
        p = self.params
        bridged = _bridge_nans(raw)
        if bridged is None:
            return 0.0
        feats = vf_window_features(bridged, self.fs_hz, p.window_s)
        if feats[-1] < math.log10(MIN_STD_UV):
            return 0.0
        return float(vf_window_probability(feats, p))
