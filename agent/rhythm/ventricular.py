"""Ventricular tachycardia from the ECG waveform, and the one ventricular-rhythm decision.

Two parts:

1. :class:`VtDetector`, a streaming window detector like :class:`agent.rhythm.vf.VfDetector`.
   Every ``hop_s`` (1 s) it judges the last ``window_s`` (4 s) of one lead: the nine published
   VF features of :func:`agent.rhythm.vf.vf_window_features` plus three of its own on the same
   125 Hz, 1-30 Hz band-passed window (:data:`VT_FEATURE_NAMES`): the height and lag of the
   highest normalised autocorrelation peak between 0.25 and 1.5 s (a regular rhythm at
   40-240 bpm; ventricular tachycardia is regular and fast) and the mean frequency of the
   signal from its derivative (wide complexes are slow, narrow QRS complexes are fast). A
   logistic regression gives P(ventricular tachyarrhythmia) -- VT, VF or VFL -- of the window;
   the state turns ``VT`` after ``k_on`` votes in the last ``n_on`` windows, and back after
   ``n_off`` non-voting windows. The parameters (:data:`VT_PARAMS_TUNED`) were tuned with
   patient-wise (leave-one-record-out) folds on vfdb 418-428 and every mitdb record by
   ``python -m tools.vf vt-tune``; the figures are in ``docs/vf_detector.md``. A second,
   fixed vote (version 4) catches the fast, regular, near-sinusoidal wave of ventricular
   flutter that the logistic model, tuned on slower VTs, misses (:class:`VtDetector` notes).
2. :class:`VentricularConsumer`, the one decision behind the ``vtach`` alarm: ventricular
   tachycardia when the waveform detector says VT while the VF detector does not say VF and
   the averaged heart rate is above ``VT_MIN_RATE_BPM`` (or unknown), *or*
   the beat classifier sees a run of ``vtach_min_beats`` V beats above ``vtach_rate_bpm``
   (the ectopy rules' V-tach, :mod:`agent.alarms.ectopy`, handed over by
   :class:`EctopyBeatRuns`). High priority, latched, judged the moment it is decided, never
   suppressed by ``signal_poor`` (a ventricular tachyarrhythmia often *looks* like poor signal
   to a QRS-based quality index).

VT is told from VF by the VF detector (its 6 s VF state wins); the waveform features alone do
not separate them (``docs/vf_detector.md``), so a fast VT may be called VF and raise ``vfib``:
both are high-priority, latched ventricular alarms.

References
----------
IEC 60601-2-27:2011, 201.12.1.101.1 (ventricular tachycardia alarm, high priority) and
ANSI/AAMI EC13:2002 4.1.2.1 (alarm on a VT of 6 beats or more above 100 bpm is not required
but is how monitors define it; GE EK-Pro and Philips ST/AR use 6 beats / 100 bpm).
Amann A, Tratnig R, Unterkofler K. Reliability of old and new ventricular fibrillation
detection algorithms for automated external defibrillators. Biomed Eng Online 2005;4:60
(VF/VT discrimination with window features and its limits).
Jekova I, Krasteva V. Real time detection of ventricular fibrillation and tachycardia.
Physiol Meas 2004;25(5):1167-1178 (band-pass + slope features separate VT/VF from
non-shockable rhythms; VT from its rate and regularity).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

from agent.alarms.ectopy import EctopyRules
from agent.alarms.engine import ConditionSpec, Finding
from agent.errors import ConfigError
from agent.messages import AlarmCode, AlarmCondition, AlarmEvidence, AlarmPriority
from agent.rhythm.vf import (
    MIN_STD_UV,
    VfChange,
    VoteConfirmation,
    WindowVoter,
    _bridge_nans,
    _features,
    _floored_peak_hz,
    _kurtosis_var,
    _mean,
    _sum,
    _vf_leak,
    band_window,
    validate_window_model,
)
from agent.rhythm.vf import _geometry as _vf_geometry

logger = logging.getLogger(__name__)

__all__ = [
    "VT_DETECTOR_NAME",
    "VT_DETECTOR_VERSION",
    "VT_FEATURE_NAMES",
    "VT_MIN_RATE_BPM",
    "VT_PARAMS_TUNED",
    "EctopyBeatRuns",
    "VentricularConsumer",
    "VtChange",
    "VtDetector",
    "VtParams",
    "subharmonic_ratio",
    "vt_window_features",
    "vt_window_probability",
]

VT_DETECTOR_NAME: Final = "vt_features"
VT_DETECTOR_VERSION: Final = "6"
"""Name and version in alarms' ``model_versions`` (no model file: bump the version whenever
:data:`VT_PARAMS_TUNED` or the features change)."""

VT_MIN_RATE_BPM: Final = 100.0
"""Waveform VT counts only while the monitor's averaged heart rate is above this (or unknown):
ventricular tachycardia is a ventricular rhythm above 100 bpm (2017 AHA/ACC/HRS ventricular
arrhythmia guideline, definitions; the issue's ">= 6 beats above 100 bpm"). A wide-complex
rhythm at a normal rate (bundle-branch block, idioventricular rhythm) is not V-tach."""

ACF_LAG_S: Final = (0.25, 1.5)
"""Autocorrelation lags searched for the rhythm's period, s (240 down to 40 bpm)."""

VT_FEATURE_NAMES: Final = (
    "tcsc_pct",
    "vf_leak",
    "a2",
    "fsmn",
    "peak_hz",
    "psr",
    "hf_frac",
    "kurtosis",
    "log10_std_uv",
    "acf_peak",
    "acf_rate_bpm",
    "mean_freq_hz",
)
"""Window features: the nine VF features, then autocorrelation peak height (0..1), the rate
at that peak (bpm) and the derivative-based mean frequency (Hz)."""
N_VT_FEATURES: Final = len(VT_FEATURE_NAMES)
MEAN_FREQ_IDX: Final = VT_FEATURE_NAMES.index("mean_freq_hz")
VF_LEAK_IDX: Final = VT_FEATURE_NAMES.index("vf_leak")
_LOG_MIN_STD: Final = math.log10(MIN_STD_UV)
"""The amplitude gate on ``log10_std_uv`` (the VF detector's asystole gate, ``MIN_STD_UV``)."""

FLUTTER_MAX_KURTOSIS: Final = 0.5
"""Flutter vote: the band-passed window's excess kurtosis is below this. Ventricular flutter
is a continuous sine wave without identifiable QRS complexes or T waves (Surawicz B, Knilans
TK, Chou's Electrocardiography in Clinical Practice, 6th ed.; a sine's excess kurtosis is
-1.5); QRS spikes on a flat baseline give 3-20 (10th-90th percentile 2.9-21 over the windows
of vfdb and mitdb without ventricular or noise annotation, ``docs/vf_detector.md``, session
35)."""
FLUTTER_MIN_PEAK_HZ: Final = 3.0
"""Flutter vote: the window's spectral peak (``peak_hz``) is at least this, Hz (180 / min;
ventricular flutter runs at 150-300 / min, usually above 200). No upper bound: one at 5 Hz
(300 / min) was measured and not adopted (``docs/vf_detector.md``, session 35)."""
FLUTTER_MIN_ACF_PEAK: Final = 0.5
"""Flutter vote: the window's autocorrelation peak (``acf_peak``) is at least this: the wave
repeats (flutter is regular, VF is not; the VF detector owns VF)."""
FLUTTER_MAX_SUBHARMONIC: Final = 0.4
"""Flutter vote: the spectral peak is the wave's own rate, not a harmonic of a slower rhythm:
the amplitude at a half and at a third of the peak frequency is below this fraction of the
peak's (:func:`subharmonic_ratio`; the third since version 6). A narrow-complex tachycardia at
120-185 / min whose T wave is as large as its QRS is smooth and peaks at a harmonic of 3-7 Hz;
a flutter sine wave has little below its fundamental. Picked from 0.3 / 0.35 / 0.4 / 0.5 on
window counts of vfdb's ventricular episodes and 11 CinC 2017 strips (``docs/vf_detector.md``,
session 36)."""
SUBHARMONIC_BAND_HZ: Final = 0.25
"""Half-width of the bands :func:`subharmonic_ratio` compares, Hz: one FFT bin of a 4 s
window."""
FLUTTER_VOTES: Final = 3
"""Flutter votes in a row that turn the VT state on, and windows in a row without one that
turn the flutter path off (hop 1 s)."""


@lru_cache(maxsize=16)
def _acf_lags(n: int, fs: float) -> tuple[int, int, NDArray[np.int64]]:
    """First and last autocorrelation lag searched in ``n`` samples at ``fs``, and ``n - lag``."""
    lo, hi = round(ACF_LAG_S[0] * fs), min(round(ACF_LAG_S[1] * fs), n - 1)
    return lo, hi, n - np.arange(lo, hi + 1)


def _centred_mean_freq(y: NDArray[np.float64], fs: float) -> tuple[NDArray[np.float64], float]:
    """``y`` less its mean, and its derivative-based mean frequency, Hz (``mean_freq_hz``)."""
    y = y - _mean(y)
    n = y.size
    dev = y - _mean(y)
    std = max(math.sqrt(float(_sum(dev * dev)) / n), 1e-12)  # np.std(y), bit for bit
    return y, _mean(np.abs(y[1:] - y[:-1])) * fs / (2.0 * math.pi * std)


def _log_std(y: NDArray[np.float64]) -> float:
    """``log10`` of the window's standard deviation, µV: the last VF feature, bit for bit."""
    dev = y - _mean(y)
    return math.log10(max(math.sqrt(float(_sum(dev * dev)) / y.size), 1e-3))


def _extra_features(y: NDArray[np.float64], fs: float) -> NDArray[np.float64]:
    """Autocorrelation peak, its rate, and the mean frequency of a band-passed window."""
    y, mean_freq = _centred_mean_freq(y, fs)
    return _acf_features(y, fs, mean_freq)


def _acf_features(y: NDArray[np.float64], fs: float, mean_freq: float) -> NDArray[np.float64]:
    """Return the three extra features of the centred window ``y`` given its mean frequency."""
    n = y.size
    spec = np.fft.rfft(y, 2 * n)
    acf = np.fft.irfft(np.abs(spec) ** 2)[:n]
    acf0 = max(float(acf[0]), 1e-12)
    lo, hi, overlap = _acf_lags(n, fs)
    # unbiased: divide by the overlap so long lags are not penalised
    seg = acf[lo : hi + 1] / acf0 * n / overlap
    k = int(np.argmax(seg))
    return np.array([float(seg[k]), 60.0 * fs / (lo + k), mean_freq])


def vt_window_features(
    raw_uv: NDArray[np.float64], fs_hz: float, window_s: float
) -> NDArray[np.float64]:
    """Features of one window (:data:`VT_FEATURE_NAMES` order).

    Parameters
    ----------
    raw_uv : NDArray[np.float64]
        Raw ECG in µV, the window plus ``MARGIN_S`` before it, finite values.
    fs_hz : float
        Sampling rate of ``raw_uv``, Hz (100-1000).
    window_s : float
        Length of the judged window, s (at least ``TCSC_BLOCK_S``).

    Returns
    -------
    NDArray[np.float64]
        Shape ``(N_VT_FEATURES,)``: the nine values of
        :func:`agent.rhythm.vf.vf_window_features` (same preprocessing, bit-identical), the
        autocorrelation peak (dimensionless), its rate in bpm and the mean frequency in Hz.
    """
    y, fs_c = band_window(raw_uv, fs_hz, window_s)
    return np.concatenate([_features(y, fs_c), _extra_features(y, fs_c)])


@dataclass(frozen=True, slots=True)
class VtParams:
    """Window geometry, classifier and confirmation of :class:`VtDetector`.

    Attributes
    ----------
    window_s, hop_s : float
        Window length and hop, s.
    feature_mean, feature_scale : tuple[float, ...]
        Standardisation (:data:`VT_FEATURE_NAMES` order).
    coef : tuple[float, ...]
        Logistic weights over the standardised features.
    intercept : float
        Logistic intercept.
    threshold : float
        Vote threshold on the window probability (0..1).
    k_on, n_on, n_off : int
        ``k_on`` votes in the last ``n_on`` windows turn VT on; ``n_off`` non-votes in a row
        turn it off.
    max_mean_freq_hz : float
        Noise gate: a window whose mean frequency (``mean_freq_hz``, from the derivative) is
        above this, Hz, does not vote (``math.inf``: no gate). Ventricular tachyarrhythmias
        keep their energy at 2-6 Hz (Barro S et al., J Biomed Eng 1989;11(4):320-328;
        Jekova & Krasteva 2004); muscle and electrode-motion noise in the 1-30 Hz band is
        spread higher. Chosen from a grid by the same patient-wise tuning as the threshold.
    max_vf_leak : float
        Noise gate: a window whose VF-filter leakage (``vf_leak``, Kuo S, Dillman R, Computers
        in Cardiology 1978:347-349) is above this does not vote (``math.inf``: no gate). The
        leakage is low for the quasi-sinusoidal VT/VF waveform and high for narrow spikes:
        99 % of the voting windows of annotated VT in vfdb 418-428 + mitdb are at or below
        0.665, the windows of nstdb's electrode-motion noise (``em``) that vote are at
        0.67-0.76. Chosen in session 21 by ``python -m tools.vf vt-leak-gate`` (the
        leave-one-record-out cost of the tuning records plus the decisions on the nstdb noise
        records, docs/vf_detector.md).
    """

    window_s: float = 4.0
    hop_s: float = 1.0
    feature_mean: tuple[float, ...] = field(default=(0.0,) * N_VT_FEATURES)
    feature_scale: tuple[float, ...] = field(default=(1.0,) * N_VT_FEATURES)
    coef: tuple[float, ...] = field(default=(0.0,) * N_VT_FEATURES)
    intercept: float = 0.0
    threshold: float = 0.5
    k_on: int = 3
    n_on: int = 3
    n_off: int = 3
    max_mean_freq_hz: float = math.inf
    max_vf_leak: float = math.inf

    def validate(self) -> None:
        """Check the parameters.

        Raises
        ------
        ConfigError
            If a length or count is out of range or a vector has the wrong length.
        """
        validate_window_model(self, N_VT_FEATURES, "VT detector")
        if not self.max_mean_freq_hz > 0.0:
            msg = f"invalid VT detector parameter max_mean_freq_hz in {self}"
            raise ConfigError(msg, "max_mean_freq_hz")
        if not self.max_vf_leak > 0.0:
            msg = f"invalid VT detector parameter max_vf_leak in {self}"
            raise ConfigError(msg, "max_vf_leak")


# Tuned by `python -m tools.vf vt-tune --data ../shared/data` (leave-one-record-out folds on
# vfdb 418-428 and all mitdb records). Provenance and figures: models/vt_features.json,
# reports/rhythm.md. Version 2 = version 1 (same coefficients, threshold, k-of-n) + the
# mean-frequency noise gate; version 3 = version 2 + the VF-filter-leakage noise gate.
VT_PARAMS_TUNED: Final = VtParams(
    window_s=4.0,
    hop_s=1.0,
    feature_mean=(
        16.4795,
        0.772864,
        0.206036,
        3.4338,
        3.3192,
        0.0907291,
        0.194466,
        10.1228,
        2.39362,
        0.566321,
        74.068,
        3.61643,
    ),
    feature_scale=(
        14.3258,
        0.105723,
        0.111763,
        1.70064,
        1.61172,
        0.0391148,
        0.14139,
        7.3903,
        0.240801,
        0.229112,
        28.4687,
        0.884232,
    ),
    coef=(
        0.725423,
        -0.437155,
        -0.324105,
        -0.757875,
        0.321208,
        1.19444,
        -1.66398,
        0.768474,
        0.0295607,
        0.198581,
        0.381855,
        0.826764,
    ),
    intercept=-4.25553,
    threshold=0.7,
    k_on=5,
    n_on=5,
    n_off=3,
    max_mean_freq_hz=6.0,
    max_vf_leak=0.65,
)


def vt_window_probability(features: NDArray[np.float64], params: VtParams) -> NDArray[np.float64]:
    """Logistic P(VT/VF/VFL) of windows, shape ``(n_windows,)`` (or ``()`` for one window).

    Parameters
    ----------
    features : NDArray[np.float64]
        Shape ``(n_windows, N_VT_FEATURES)`` or ``(N_VT_FEATURES,)``.
    params : VtParams
        Standardisation and coefficients.
    """
    z = (features - np.asarray(params.feature_mean)) / np.asarray(params.feature_scale)
    logit = z @ np.asarray(params.coef) + params.intercept
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(logit, -50.0, 50.0))))


@dataclass(frozen=True, slots=True)
class VtChange:
    """A change of the waveform VT state.

    Attributes
    ----------
    rhythm : {"VT", "none"}
        The new state.
    onset_idx : int
        Stream sample index where it is estimated to start (VT: the middle of the first
        voting window of the deciding run; none: the end of the last voting window).
    decided_idx : int
        Stream sample index at which it was decided (one past the deciding window).
    probability : float
        Window probability of the deciding window (0..1).
    flutter : bool
        VT: the flutter votes decided it (the logistic model had not); none: False.
    """

    rhythm: Literal["VT", "none"]
    onset_idx: int
    decided_idx: int
    probability: float
    flutter: bool = False


class VtDetector(WindowVoter):
    """Streaming VT (ventricular tachyarrhythmia) window detector over one ECG lead.

    Parameters
    ----------
    fs_hz : float
        Sampling rate, Hz (100-1000).
    params : VtParams, optional
        Detector parameters (default :data:`VT_PARAMS_TUNED`).

    Raises
    ------
    ConfigError
        If ``params`` is invalid.

    Notes
    -----
    A window votes only when its band amplitude is at least ``MIN_STD_UV`` (the VF
    detector's asystole gate), its mean frequency at most ``params.max_mean_freq_hz`` and its
    VF-filter leakage at most ``params.max_vf_leak`` (the noise gates) and at most
    ``MAX_INVALID_FRAC`` of it is NaN. Cost: one
    resampling, band-pass, two FFTs per hop (about 0.33 ms at 130 Hz on an x86 core;
    ``docs/benchmarks.md``, session 7); the gates are judged first, and a gated window (98-100 %
    of windows on mitdb) skips the FFTs (about 0.09 ms; session 22).

    **Flutter votes** (version 4): a window whose band amplitude passes the same amplitude
    gate also votes *flutter* when it is a fast, regular, near-sinusoidal wave, whatever the
    logistic model says: excess kurtosis below :data:`FLUTTER_MAX_KURTOSIS`, spectral peak
    at least :data:`FLUTTER_MIN_PEAK_HZ` and, since versions 5 and 6, the wave's own rate (its
    :func:`subharmonic_ratio` below :data:`FLUTTER_MAX_SUBHARMONIC`), autocorrelation peak
    at least :data:`FLUTTER_MIN_ACF_PEAK` (the ``kurtosis``, ``peak_hz`` and ``acf_peak`` of
    :func:`vt_window_features`); the logistic path's noise gates do not apply.
    :data:`FLUTTER_VOTES` in a row turn the flutter path on, as many windows without one
    turn it off; the detector is in VT while either path is. What it is for: a VT at 240-255
    bpm that reads as ventricular flutter (vfdb 421), whose 12-30 Hz power is that of other
    rhythms, so the logistic model tuned without it never calls it (``docs/vf_detector.md``,
    sessions 22 and 35, with what was looked at before the thresholds were fixed). The
    kurtosis is judged first (a few µs); most windows with QRS complexes stop there.
    """

    def __init__(self, fs_hz: float, params: VtParams = VT_PARAMS_TUNED) -> None:
        params.validate()
        super().__init__(fs_hz, params)
        self.params = params
        self._flutter = VoteConfirmation(FLUTTER_VOTES, FLUTTER_VOTES, FLUTTER_VOTES, self._win_n)
        self._off_end = 0  # latest end of a voting window among the paths already off
        self._flutter_flags: list[bool] = []  # per transition of this push: decided by flutter

    @property
    def active(self) -> bool:
        """In VT: while either path (logistic or flutter votes) is on."""
        return self._confirm.active or self._flutter.active

    @property
    def in_vt(self) -> bool:
        """True while the detector is in VT."""
        return self.active

    def push(self, samples_uv: NDArray[np.float32]) -> list[VtChange]:
        """Feed the next contiguous samples (µV, NaN = invalid); return the state changes."""
        changes = self.push_transitions(samples_uv)
        flags, self._flutter_flags = self._flutter_flags, []
        return [
            VtChange("VT" if on else "none", onset, end, prob, flutter=by_flutter)
            for (on, onset, end, prob), by_flutter in zip(changes, flags, strict=True)
        ]

    def _judge(self, raw: NDArray[np.float64], end: int) -> tuple[bool, int, int, float] | None:
        """Count both votes of the window ending at ``end``; return the VT state's transition."""
        prob, flutter = self.window_votes(raw)
        self.probability = prob
        was_on = self.active
        model = self._confirm.push(prob >= self._threshold, end)
        changes = [c for c in (model, self._flutter.push(flutter, end)) if c is not None]
        if self.active and not was_on:
            self._off_end = 0
            self._flutter_flags.append(not self._confirm.active)
            return (True, min(idx for turned_on, idx in changes if turned_on), end, prob)
        off_ends = [idx for turned_on, idx in changes if not turned_on]
        if off_ends:
            self._off_end = max(self._off_end, *off_ends)
        if was_on and not self.active:
            self._flutter_flags.append(False)
            return (False, self._off_end, end, prob)
        return None

    def window_votes(self, raw: NDArray[np.float64]) -> tuple[float, bool]:
        """VT probability of one raw window and its flutter vote (see the class notes).

        Returns
        -------
        tuple[float, bool]
            :meth:`window_probability` and whether the window votes flutter (False when too
            much is NaN or it is near flat).
        """
        band = self._band(raw)
        if band is None:
            return 0.0, False
        return self._gated_probability(*band), _flutter_vote(*band)

    def window_probability(self, raw: NDArray[np.float64]) -> float:
        """VT probability of one raw window; 0 when too much is NaN or it is near flat.

        The gates are judged before the other features are computed (issue 11): on mitdb
        98-100 % of windows fail one, and a gated window's probability is 0 whatever its
        other features. Same probabilities as gating after :func:`vt_window_features`
        (``tests/agent/rhythm/test_ventricular.py`` pins it on real records).
        """
        band = self._band(raw)
        return 0.0 if band is None else self._gated_probability(*band)

    def _band(self, raw: NDArray[np.float64]) -> tuple[NDArray[np.float64], float] | None:
        """Return the band-passed window and its rate; None when too much is NaN or near flat."""
        bridged = _bridge_nans(raw)
        if bridged is None:
            return None
        y, fs_c = band_window(bridged, self.fs_hz, self.params.window_s)
        return None if _log_std(y) < _LOG_MIN_STD else (y, fs_c)

    def _gated_probability(self, y: NDArray[np.float64], fs_c: float) -> float:
        """Return the logistic probability of a band-passed window past the amplitude gate."""
        p = self.params
        if _vf_leak(y) > p.max_vf_leak:
            return 0.0
        centred, mean_freq = _centred_mean_freq(y, fs_c)
        if mean_freq > p.max_mean_freq_hz:
            return 0.0
        feats = np.concatenate([_features(y, fs_c), _acf_features(centred, fs_c, mean_freq)])
        return float(vt_window_probability(feats, p))


def subharmonic_ratio(y: NDArray[np.float64], fs: float) -> tuple[float, float]:
    """Return the spectral peak of a band-passed window and its subharmonic amplitude ratio.

    Parameters
    ----------
    y : NDArray[np.float64]
        Band-passed window (:func:`agent.rhythm.vf.band_window`), shape ``(n,)``.
    fs : float
        Its rate, Hz (125).

    Returns
    -------
    tuple[float, float]
        ``peak_hz`` exactly as :func:`agent.rhythm.vf.vf_window_features` computes it, and
        the largest Hamming amplitude within :data:`SUBHARMONIC_BAND_HZ` of a half or a third
        of that frequency over the largest within the same distance of the peak (the
        spectrum before the VF features' floor). Near 0 when the peak is the wave's fundamental (a
        sine); large when the peak is the second or third harmonic of a slower rhythm (QRS
        and T waves of a tachycardia at a half or a third of the rate): the subharmonic test
        of pitch detection (Hermes DJ, Measurement of pitch by subharmonic summation, J
        Acoust Soc Am 1988;83:257-264).
    """
    g = _vf_geometry(y.size, fs)
    amp = np.abs(np.fft.rfft(y * g.hamming))
    peak_hz = _floored_peak_hz(amp.copy(), g)
    f = g.f

    def near(c: float) -> float:
        sel = amp[np.abs(f - c) <= SUBHARMONIC_BAND_HZ]
        return float(sel.max()) if sel.size else 0.0

    return peak_hz, max(near(peak_hz / 2.0), near(peak_hz / 3.0)) / max(near(peak_hz), 1e-12)


def _flutter_vote(y: NDArray[np.float64], fs: float) -> bool:
    """Whether a band-passed window (125 Hz) votes flutter (:class:`VtDetector` notes).

    Judged in order of cost: the excess kurtosis (time domain), the spectral peak and its
    subharmonic ratio (:func:`subharmonic_ratio`, session 36), the autocorrelation peak; the
    values are those of :func:`vt_window_features`. The logistic path's noise gates do not
    apply (with them two of vfdb 421's flutter episodes were lost, ``docs/vf_detector.md``,
    session 35).
    """
    if _kurtosis_var(y)[0] >= FLUTTER_MAX_KURTOSIS:
        return False
    peak_hz, subharmonic = subharmonic_ratio(y, fs)
    if peak_hz < FLUTTER_MIN_PEAK_HZ or subharmonic >= FLUTTER_MAX_SUBHARMONIC:
        return False
    centred, mean_freq = _centred_mean_freq(y, fs)
    return bool(_acf_features(centred, fs, mean_freq)[0] >= FLUTTER_MIN_ACF_PEAK)


class EctopyBeatRuns(EctopyRules):
    """The ectopy rules without their own ``vtach`` alarm: the beat-run V-tach is handed over.

    Everything else is :class:`agent.alarms.ectopy.EctopyRules` unchanged. Its ``vtach``
    finding (a run of ``vtach_min_beats`` V beats above ``vtach_rate_bpm``) is kept in
    :attr:`beat_run` for :class:`VentricularConsumer`, which owns the ``vtach`` alarm.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.specs = [s for s in self.specs if s.code is not AlarmCode.VTACH]
        self.beat_run: Finding | None = None
        """The latest active beat-run V-tach finding (None when inactive)."""

    def findings(self, t_s: float) -> list[Finding]:
        """Return the ectopy findings except ``vtach``, which is kept in :attr:`beat_run`."""
        out: list[Finding] = []
        for f in super().findings(t_s):
            if f.code is AlarmCode.VTACH:
                self.beat_run = f if f.active else None
            else:
                out.append(f)
        return out

    def idle_until_s(self, t_s: float) -> float:
        """As :meth:`EctopyRules.idle_until_s`, and not while a beat-run V-tach is held."""
        return -math.inf if self.beat_run is not None else super().idle_until_s(t_s)


EvidenceAt = Callable[[float], AlarmEvidence]


class VentricularConsumer:
    """The one ventricular-rhythm decision behind ``vtach`` (see the module docstring).

    An immediate consumer: fed :class:`VtChange` from the waveform detector and
    :class:`agent.rhythm.vf.VfChange` from the VF detector the moment they are decided, and
    judged at every chunk. ``vtach`` is active while the waveform says VT and the VF detector
    does not say VF, or while the beat-run V-tach of ``beat_runs`` is active.

    Parameters
    ----------
    fs_hz
        Stream rate, Hz.
    evidence
        Evidence at a stream time.
    beat_runs
        The ectopy rules whose beat-run V-tach is one input (None without a beat classifier).
    hr_bpm
        The monitor's averaged heart rate now (bpm, None when unknown): waveform VT counts
        only above ``VT_MIN_RATE_BPM`` or when unknown (VF and fast VT often leave no
        countable beats). None: no rate gate.
    """

    def __init__(
        self,
        fs_hz: float,
        evidence: EvidenceAt,
        beat_runs: EctopyBeatRuns | None,
        hr_bpm: Callable[[], float | None] | None = None,
    ) -> None:
        self._fs_hz = fs_hz
        self._hr_bpm = hr_bpm
        self._evidence = evidence
        self._beat_runs = beat_runs
        self.wave_vt = False
        self.vf = False
        self._wave_onset_s = 0.0
        self._probability = 0.0
        self._flutter = False
        self.episodes: list[tuple[float, float | None]] = []
        """``(onset_s, end_s)`` of VT episodes decided from the waveform or beat runs."""
        self.specs: Sequence[ConditionSpec] = (
            ConditionSpec(
                AlarmCode.VTACH,
                AlarmPriority.HIGH,
                AlarmCondition.PHYSIOLOGICAL,
                latched=True,
                immediate=True,
                model_versions={VT_DETECTOR_NAME: VT_DETECTOR_VERSION},
            ),
        )

    def feed(self, item: object) -> None:
        """Take a VT or VF decision (other items are ignored)."""
        if isinstance(item, VfChange):
            self.vf = item.rhythm == "VF"
        elif isinstance(item, VtChange):
            self._probability = item.probability
            self._flutter = item.flutter
            self.wave_vt = item.rhythm == "VT"
            if self.wave_vt:
                self._wave_onset_s = item.onset_idx / self._fs_hz

    @property
    def active(self) -> bool:
        """Whether ventricular tachycardia is decided now."""
        return self._onset_s() is not None

    def _onset_s(self) -> float | None:
        onsets: list[float] = []
        if self.wave_vt and not self.vf:
            hr = self._hr_bpm() if self._hr_bpm is not None else None
            if hr is None or hr > VT_MIN_RATE_BPM:
                onsets.append(self._wave_onset_s)
        run = self._beat_runs.beat_run if self._beat_runs is not None else None
        if run is not None and run.onset_s is not None:
            onsets.append(run.onset_s)
        return min(onsets) if onsets else None

    def idle_until_s(self, t_s: float) -> float:
        """Idle for good while neither input says VT and no episode is open.

        The waveform input changes only with a decision fed, the beat-run input only when the
        ectopy rules are judged (never skipped while their run is active).
        """
        run = self._beat_runs.beat_run if self._beat_runs is not None else None
        return -math.inf if self.wave_vt or run is not None or self._open else math.inf

    @property
    def _open(self) -> bool:
        """Whether the latest VT episode is still open."""
        return bool(self.episodes) and self.episodes[-1][1] is None

    def findings(self, t_s: float) -> list[Finding]:
        """Return the ``vtach`` finding and keep the VT episodes up to date."""
        onset = self._onset_s()
        open_ep = self._open
        if onset is None:
            if open_ep:
                self.episodes[-1] = (self.episodes[-1][0], t_s)
            return [Finding(AlarmCode.VTACH, active=False)]
        if not open_ep:
            self.episodes.append((onset, None))
        run = self._beat_runs.beat_run if self._beat_runs is not None else None
        if run is not None and run.message:
            text = run.message
        elif self._flutter:
            text = "Ventricular tachycardia (waveform: fast regular sine wave, flutter)"
        else:
            text = f"Ventricular tachycardia (waveform, p={self._probability:.2f})"
        return [Finding(AlarmCode.VTACH, True, onset, text, partial(self._evidence, t_s))]

    def close(self, t_s: float) -> None:
        """End of stream: close an open episode at ``t_s``."""
        if self.episodes and self.episodes[-1][1] is None:
            self.episodes[-1] = (self.episodes[-1][0], t_s)
