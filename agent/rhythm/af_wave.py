"""Atrial fibrillation from the ECG waveform: RR irregularity plus P-wave absence, per window.

For ECG sources (not RR-only straps) every ``AF_WAVE_HOP_BEATS`` beats the last
``AF_WAVE_BEATS`` beats (about 12-20 s) are described by published features
(:data:`AF_WAVE_FEATURE_NAMES`):

- RR irregularity (Tateno & Glass 2001; Sarkar et al. 2008; Dash et al. 2009; Lake & Moorman
  2011): the RMSSD normalised by the mean RR, the mean absolute successive difference over the
  median RR, the fraction of successive differences above 50 ms, the log median RR, the median
  and lower quartile of |dRR| over the median RR, COSEn, the turning-point ratio, the RR
  histogram entropy, the occupied-bin fraction of the dRR Lorenz plot, the RR lag-1
  correlation (negative in bigeminy), and an ectopy-robust nRMSSD that drops the successive
  differences touching a premature beat followed by a compensatory pause, with the fraction
  of such pairs;
- P-wave and atrial evidence from the R-aligned beats of the window, band-passed 0.5-40 Hz
  (the "no P waves, fibrillatory baseline" of the 2023 ACC/AHA/ACCP/HRS AF definition, as
  used by e.g. Ladavich & Ghoraani 2015 and the CinC 2017 feature sets, Clifford et al.
  2017): the peak-to-peak of the median beat between 250 and 80 ms before R relative to its
  QRS peak-to-peak, the mean correlation of each beat's P region with the median's, the
  residual of the P regions around the median relative to the QRS, the mean QRS correlation
  with the median beat (ectopy, noise), and after average-beat QRST cancellation the share of
  the residual's power in the 4-9 Hz f-wave band and its RMS over the QRS amplitude.

A small MLP (int8 TFLite, ``models/af_wave.tflite``, card ``models/af_wave.json`` with the
feature standardisation; trained and cross-validated patient-wise by ``./run.sh train af-wave``,
:mod:`tools.af.wave_mlp`) gives P(AF) of the window through the agent's TFLite runtime.
:class:`FusedAfDetector` judges windows of every final beat (ectopic ones included, as in
training); a window with repeating P waves or more than ``max_ectopic`` confident V beats
does not vote. It calls AF when ``k_on`` consecutive windows reach ``p_on``
(:data:`AF_WAVE_PARAMS_TUNED`) *or* when the RR LSTM (:class:`agent.rhythm.af.AfDetector`)
confirms it; it ends when neither path says AF.

References
----------
Tateno K, Glass L. Automatic detection of atrial fibrillation using the coefficient of
variation and density histograms of RR and deltaRR intervals. Med Biol Eng Comput
2001;39:664-671.
Sarkar S, Ritscher D, Mehra R. A detector for a chronic implantable atrial tachyarrhythmia
monitor. IEEE Trans Biomed Eng 2008;55(3):1219-1224.
Dash S, Chon KH, Lu S, Raeder EA. Automatic real time detection of atrial fibrillation. Ann
Biomed Eng 2009;37(9):1701-1709.
Ladavich S, Ghoraani B. Rate-independent detection of atrial fibrillation by statistical
modeling of atrial activity. Biomed Signal Process Control 2015;18:274-281.
Clifford GD et al. AF classification from a short single lead ECG recording: the
PhysioNet/Computing in Cardiology Challenge 2017. Comput Cardiol 2017;44.
Lake DE, Moorman JR. Accurate estimation of entropy in very short physiological time series:
the problem of atrial fibrillation detection in implanted ventricular devices. Am J Physiol
Heart Circ Physiol 2011;300:H319-H325.
Slocum J, Sahakian A, Swiryn S. Diagnosis of atrial fibrillation from surface
electrocardiograms based on computer-detected atrial activity. J Electrocardiol
1992;25(1):1-8.
Bollmann A et al. Analysis of surface electrocardiograms in atrial fibrillation: techniques,
research, and clinical applications. Europace 2006;8:911-926.
de Chazal P, O'Dwyer M, Reilly RB. Automatic classification of heartbeats using ECG
morphology and heartbeat interval features. IEEE Trans Biomed Eng 2004;51(7):1196-1206.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from agent.dsp.spectral import WelchPsd
from agent.dsp.stats import median_columns
from agent.dsp.zerophase import ZeroPhaseSos
from agent.inference.tflite import TfliteModel, load_model
from agent.rhythm.af import AfChange, AfDetector, AfModel
from models.card import MODELS_DIR, ModelCard, load_card

__all__ = [
    "AF_WAVE_BEATS",
    "AF_WAVE_FEATURE_NAMES",
    "AF_WAVE_HOP_BEATS",
    "AF_WAVE_PARAMS_TUNED",
    "AfWaveModel",
    "AfWaveParams",
    "FusedAfDetector",
    "PWaveVetoAfDetector",
    "af_wave_features",
    "beat_window_signal",
    "p_wave_correlation",
    "window_start",
]

AF_WAVE_BEATS: Final = 17
"""Beats per window (16 RR intervals: about 12 s at 80 bpm)."""
AF_WAVE_HOP_BEATS: Final = 4
"""A window is judged every this many beats."""
PRE_S: Final = 0.30
"""Beat segment starts this long before R, s (P wave region inside it)."""
POST_S: Final = 0.10
"""Beat segment ends this long after R, s."""
P_REGION_S: Final = (-0.25, -0.08)
"""P-wave region relative to R, s (PR interval 120-200 ms, P wave up to 120 ms)."""
QRS_REGION_S: Final = (-0.05, 0.05)
"""QRS region relative to R, s."""
BAND_HZ: Final = (0.5, 40.0)
"""Band-pass before beat averaging: baseline wander and mains removed, P and f waves kept."""
MARGIN_S: Final = 1.0
"""Signal filtered before the first beat segment, s (filter start-up)."""
NN50_MS: Final = 50.0
"""Successive-difference threshold of the pNN50-like feature, ms."""
COSEN_R_S: Final = 0.03
"""COSEn tolerance r, s (Lake & Moorman 2011 use 30 ms)."""
LORENZ_BIN_S: Final = 0.04
"""Lorenz-plot bin of successive dRR, s (Sarkar et al. 2008 use 40 ms)."""
PREMATURE_RATIO: Final = 0.88
"""An RR below this fraction of the window's median is premature."""
COMPENSATORY_RATIO: Final = 1.05
"""...when the next RR is above this fraction of the median (compensatory pause)."""
ABS_REGION_S: Final = (-0.30, 0.40)
"""Median-beat region cancelled around each R, s (QRS and T wave)."""
QRS_BLANK_S: Final = 0.06
"""Residual bridged this long either side of each R, s."""
FWAVE_BAND_HZ: Final = (4.0, 9.0)
"""Fibrillatory-wave band, Hz (f waves at 240-540 per minute; Bollmann et al. 2006)."""

AF_WAVE_FEATURE_NAMES: Final = (
    "nrmssd",
    "mad_ratio",
    "pnn50",
    "log_median_rr_s",
    "p_amp_ratio",
    "p_corr",
    "p_residual_ratio",
    "median_drr_ratio",
    "q25_drr_ratio",
    "cosen",
    "turning_point_ratio",
    "rr_entropy",
    "lorenz_bin_frac",
    "rr_lag1_corr",
    "robust_nrmssd",
    "premature_frac",
    "qrs_corr",
    "fwave_band_frac",
    "log_fwave_ratio",
)
N_AF_WAVE_FEATURES: Final = len(AF_WAVE_FEATURE_NAMES)


AF_WAVE_CARD: Final = MODELS_DIR / "af_wave.json"
"""Card of the shipped window model (``models/af_wave.tflite`` beside it)."""


@dataclass(frozen=True, slots=True)
class AfWaveParams:
    """Window model and confirmation of the waveform AF path.

    Attributes
    ----------
    p_on : float
        A window votes AF when P(AF) >= p_on.
    k_on : int
        Consecutive AF windows that confirm AF.
    p_off : float
        A window votes against AF when P(AF) < p_off.
    k_off : int
        Consecutive such windows that end the waveform AF call.
    p_corr_max : float
        P-wave veto: a window whose mean P correlation (``p_corr``) is at or above this never
        votes AF (P waves that repeat contradict AF; 2023 ACC/AHA/ACCP/HRS definition); chosen
        with the rule by :mod:`tools.af.wave_mlp`, above 1 = no veto.
    max_ectopic : int
        Ectopy veto: a window with more than this many beats the classifier calls V (at the
        ectopy rules' confidence, :func:`is_ectopic`) never votes AF: frequent PVCs and
        bigeminy make an irregular RR series that is not AF, a supraventricular rhythm; chosen
        with the rule by :mod:`tools.af.wave_mlp`, ``AF_WAVE_BEATS`` or more = no veto.
    card_file : str
        Card of the int8 window model in ``models/`` (the ``.tflite`` lies beside it).
    """

    p_on: float = 0.9
    k_on: int = 3
    p_off: float = 0.5
    k_off: int = 3
    p_corr_max: float = 1.01
    max_ectopic: int = AF_WAVE_BEATS
    card_file: str = AF_WAVE_CARD.name


# Chosen by `./run.sh train af-wave` (python -m tools.af.wave_mlp): CinC 2017 + mitdb outside
# DS2, rule (incl. both vetoes) chosen on 5-fold out-of-fold probabilities (best CinC record
# F1 with <= 0.1 confirmed calls per hour outside AF on mitdb). Must equal the card's
# preprocessing.decision (af_wave-3).
AF_WAVE_PARAMS_TUNED: Final = AfWaveParams(
    p_on=0.9, k_on=2, p_off=0.5, k_off=3, p_corr_max=0.4, max_ectopic=2
)


@dataclass(frozen=True, slots=True)
class AfWaveModel:
    """The int8 window model, read and checked against its card once per process.

    Attributes
    ----------
    card : ModelCard
        The card (``preprocessing`` holds the feature order, mean and scale).
    content : bytes
        The ``.tflite`` bytes (sha256 checked by :func:`models.card.load_card`).
    mean, scale : NDArray[np.float64]
        Feature standardisation, shape ``(N_AF_WAVE_FEATURES,)``.
    """

    card: ModelCard
    content: bytes
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]

    @classmethod
    def load(cls, card_path: Path = AF_WAVE_CARD) -> AfWaveModel:
        """Read (once per path and process) the card and the model beside it.

        Raises
        ------
        FileNotFoundError
            If the card or model is missing.
        ValueError
            If the model does not match its card's sha256, or the card's feature list differs
            from :data:`AF_WAVE_FEATURE_NAMES`.
        """
        return _load_wave_model(card_path)

    def interpreter(self) -> TfliteModel:
        """Return a fresh CPU interpreter (one per stream)."""
        return load_model(AF_WAVE_CARD.parent / self.card.file, content=self.content)

    def probability(self, features: NDArray[np.float64], model: TfliteModel) -> float:
        """P(AF) of one window, features shape ``(N_AF_WAVE_FEATURES,)``, via ``model``."""
        z = ((np.asarray(features, dtype=np.float64) - self.mean) / self.scale).astype(np.float32)
        return float(model.predict([z[None]])[0].ravel()[0])


@functools.cache
def _load_wave_model(card_path: Path) -> AfWaveModel:
    card = load_card(card_path)
    pre = card.preprocessing
    if list(pre.get("features", [])) != list(AF_WAVE_FEATURE_NAMES):
        msg = f"{card_path.name}: features {pre.get('features')} != {AF_WAVE_FEATURE_NAMES}"
        raise ValueError(msg)
    content = (card_path.parent / card.file).read_bytes()
    return AfWaveModel(
        card,
        content,
        np.asarray(pre["feature_mean"], dtype=np.float64),
        np.asarray(pre["feature_scale"], dtype=np.float64),
    )


@functools.cache
def _bandpass(fs_hz: float) -> ZeroPhaseSos:
    """Return the 0.5-40 Hz band-pass (2nd-order Butterworth, forward-backward) at ``fs_hz``."""
    return ZeroPhaseSos(signal.butter(2, BAND_HZ, btype="bandpass", fs=fs_hz, output="sos"))


@functools.cache
def _welch(nperseg: int, fs_hz: float) -> WelchPsd:
    return WelchPsd(nperseg, fs_hz)


def _rr_features(rr_s: NDArray[np.float64]) -> list[float]:
    """RR-only features of one window (:data:`AF_WAVE_FEATURE_NAMES` order, RR part)."""
    drr = np.diff(rr_s)
    med = float(np.median(rr_s))
    mean = float(np.mean(rr_s))
    if drr.size == 0:
        return [0.0, 0.0, 0.0, math.log10(max(med, 1e-3))] + [0.0] * 9
    adrr = np.abs(drr)
    nrmssd = math.sqrt(float(np.mean(drr**2))) / mean
    mad = float(np.mean(adrr)) / med
    pnn50 = float(np.mean(adrr > NN50_MS / 1000.0))
    robust = [float(v) / med for v in np.quantile(adrr, [0.5, 0.25])]
    # COSEn (Lake & Moorman 2011): SampEn(m=1, r=30 ms) + ln(2r) - ln(mean RR); +1 in both
    # match counts keeps it finite on 16 intervals
    r = COSEN_R_S
    d1 = np.abs(rr_s[:-1, None] - rr_s[None, :-1]) <= r
    d2 = d1[:-1, :-1] & (np.abs(rr_s[1:, None] - rr_s[None, 1:]) <= r)[:-1, :-1]
    b = (int(d1.sum()) - d1.shape[0]) / 2
    a = (int(d2.sum()) - d2.shape[0]) / 2
    cosen = math.log((b + 1.0) / (a + 1.0)) + math.log(2 * r) - math.log(mean)
    # turning point ratio (Dash et al. 2009): ~2/3 for a random series
    mid, prev, nxt = rr_s[1:-1], rr_s[:-2], rr_s[2:]
    tpr = float(np.mean(((mid > prev) & (mid > nxt)) | ((mid < prev) & (mid < nxt))))
    # Shannon entropy of the RR histogram, 16 bins over its range (Dash et al. 2009)
    hist = np.histogram(rr_s, bins=16)[0] / rr_s.size
    hist = hist[hist > 0]
    ent = float(-(hist * np.log(hist)).sum() / math.log(16))
    # Lorenz plot of successive dRR (Sarkar et al. 2008): occupied 40 ms bins per point
    if drr.size >= 2:
        cells = np.floor((np.stack([drr[:-1], drr[1:]], axis=1) + 0.02) / LORENZ_BIN_S)
        lorenz = len({(int(u), int(v)) for u, v in cells}) / cells.shape[0]
    else:
        lorenz = 0.0
    sd = float(np.std(rr_s))
    with np.errstate(invalid="ignore", divide="ignore"):  # one constant half: NaN, taken as 0
        lag1 = float(np.corrcoef(rr_s[:-1], rr_s[1:])[0, 1]) if sd > 1e-9 and rr_s.size > 2 else 0.0
    lag1 = 0.0 if math.isnan(lag1) else lag1
    # ectopy-robust irregularity: drop successive differences touching a premature beat
    # followed by a compensatory pause (Tateno & Glass 2001 use dRR; the pair rule follows
    # the RR-based ectopy criteria of de Chazal et al. 2004: premature < 0.88 x median)
    ect = np.zeros(rr_s.size, dtype=bool)
    prem = (rr_s[:-1] < PREMATURE_RATIO * med) & (rr_s[1:] > COMPENSATORY_RATIO * med)
    ect[:-1] |= prem
    ect[1:] |= prem
    keep = ~(ect[:-1] | ect[1:])
    rob = math.sqrt(float(np.mean(drr[keep] ** 2))) / med if keep.sum() >= 3 else nrmssd
    return [
        nrmssd,
        mad,
        pnn50,
        math.log10(max(med, 1e-3)),
        *robust,
        cosen,
        tpr,
        ent,
        lorenz,
        lag1,
        rob,
        float(prem.sum()) / rr_s.size,
    ]


def _order(rr: list[float], wave: list[float]) -> NDArray[np.float64]:
    """Assemble the vector in :data:`AF_WAVE_FEATURE_NAMES` order from the two parts."""
    # rr: nrmssd mad pnn50 logrr med_drr q25_drr cosen tpr ent lorenz lag1 rob prem
    # wave: p_amp p_corr p_resid qrs_corr fwave_frac log_fwave
    return np.array([*rr[:4], *wave[:3], *rr[4:], *wave[3:]], dtype=np.float64)


def af_wave_features(
    r_idx: NDArray[np.int64], raw_uv: NDArray[np.float64], first_idx: int, fs_hz: float
) -> NDArray[np.float64]:
    """Features of one window of beats (:data:`AF_WAVE_FEATURE_NAMES` order).

    Parameters
    ----------
    r_idx : NDArray[np.int64]
        R-peak sample indices of the window's beats (stream indices), increasing, at least 3.
    raw_uv : NDArray[np.float64]
        Raw ECG in µV covering ``first_idx`` to at least ``r_idx[-1] + POST_S``; NaN allowed
        (replaced by 0).
    first_idx : int
        Stream index of ``raw_uv[0]``.
    fs_hz : float
        Sampling rate, Hz.

    Returns
    -------
    NDArray[np.float64]
        Shape ``(N_AF_WAVE_FEATURES,)``: nRMSSD and mean |dRR| / median RR (dimensionless),
        fraction of |dRR| > 50 ms (0..1), log10 of the median RR in s, P amplitude / QRS
        amplitude, mean P correlation (-1..1), P residual / QRS amplitude, median and lower
        quartile |dRR| / median RR, COSEn, turning-point ratio (0..1), normalised RR histogram
        entropy (0..1), Lorenz-plot occupied-bin fraction (0..1), RR lag-1 correlation
        (-1..1), ectopy-robust nRMSSD, fraction of premature-compensatory pairs (0..1), mean
        QRS correlation with the median beat (-1..1), fraction of the QRST-cancelled
        residual's 1-30 Hz power in 4-9 Hz (0..1) and log10 of its 4-9 Hz RMS over the QRS
        peak-to-peak. Wave features are 0 where the signal is too short.
    """
    return _features_of(r_idx, first_idx, fs_hz, _aligned_beats(r_idx, raw_uv, first_idx, fs_hz))


_Aligned = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]
"""Band-passed window signal, its R-aligned beats and their median beat (:func:`_aligned_beats`)."""


def _features_of(
    r_idx: NDArray[np.int64], first_idx: int, fs_hz: float, aligned: _Aligned | None
) -> NDArray[np.float64]:
    """:func:`af_wave_features` from the window's aligned beats (None: RR features only)."""
    rr = _rr_features(np.diff(r_idx) / fs_hz)
    if aligned is None:  # too short to filter, or fewer than 2 whole beats: RR features only
        return _order(rr, [0.0] * 6)
    x, beats, tmpl = aligned
    pre = round(PRE_S * fs_hz)
    p0, p1 = pre + round(P_REGION_S[0] * fs_hz), pre + round(P_REGION_S[1] * fs_hz)
    q0, q1 = pre + round(QRS_REGION_S[0] * fs_hz), pre + round(QRS_REGION_S[1] * fs_hz)
    qrs = max(float(np.ptp(tmpl[q0:q1])), 1e-6)
    corr, p_t, p_b = _p_correlation(beats, tmpl, p0, p1)
    resid = float(np.sqrt(np.mean((p_b - p_t) ** 2)))
    q_t = tmpl[q0:q1] - float(np.mean(tmpl[q0:q1]))
    q_b = beats[:, q0:q1] - beats[:, q0:q1].mean(axis=1, keepdims=True)
    qden = np.linalg.norm(q_b, axis=1) * max(float(np.linalg.norm(q_t)), 1e-9)
    qcorr = float(np.mean((q_b @ q_t) / np.maximum(qden, 1e-9)))
    frac, log_fw = _fwave(x, r_idx - first_idx, fs_hz, qrs)
    return _order(rr, [float(np.ptp(tmpl[p0:p1])) / qrs, corr, resid / qrs, qcorr, frac, log_fw])


def _aligned_beats(
    r_idx: NDArray[np.int64], raw_uv: NDArray[np.float64], first_idx: int, fs_hz: float
) -> _Aligned | None:
    """Band-passed signal, R-aligned beats (each from its start) and their median beat.

    Beats are cut ``PRE_S`` before to ``POST_S`` after every R-peak but the first; None when
    the signal is shorter than 1 s or fewer than 2 whole beats fit.
    """
    if raw_uv.size < round(fs_hz):
        return None
    x = _bandpass(fs_hz)(np.nan_to_num(raw_uv))
    pre, post = round(PRE_S * fs_hz), round(POST_S * fs_hz)
    lo = r_idx[1:] - first_idx - pre
    lo = lo[(lo >= 0) & (lo + pre + post <= x.size)]
    if lo.size < 2:
        return None
    beats = x[lo[:, None] + np.arange(pre + post)]
    beats = beats - beats[:, :1]  # each beat relative to its start (baseline)
    return x, beats, median_columns(beats)  # finite: x is filtered from nan_to_num


def _p_correlation(
    beats: NDArray[np.float64], tmpl: NDArray[np.float64], p0: int, p1: int
) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    """Mean correlation of each beat's P region with the median beat's, and both centred."""
    p_t = tmpl[p0:p1] - float(np.mean(tmpl[p0:p1]))
    p_b = beats[:, p0:p1] - beats[:, p0:p1].mean(axis=1, keepdims=True)
    den = np.linalg.norm(p_b, axis=1) * max(float(np.linalg.norm(p_t)), 1e-9)
    return float(np.mean((p_b @ p_t) / np.maximum(den, 1e-9))), p_t, p_b


def p_wave_correlation(
    r_idx: NDArray[np.int64], raw_uv: NDArray[np.float64], first_idx: int, fs_hz: float
) -> float:
    """Return the ``p_corr`` feature of :func:`af_wave_features` alone (same arguments).

    How alike (-1..1) the P-wave regions (250-80 ms before R) of the window's beats are: near 1 when
    every beat has the same P wave (sinus rhythm, ectopy with P waves), low in AF, whose
    atrial activity does not repeat. 0 when the signal is too short. About a quarter of the
    cost of the whole feature vector, which adds the f-wave analysis (0.7 vs 3.1 ms for 17
    beats of mitdb 201 at 360 Hz on this x86 core).
    """
    return _p_corr_of(_aligned_beats(r_idx, raw_uv, first_idx, fs_hz), fs_hz)


def _p_corr_of(aligned: _Aligned | None, fs_hz: float) -> float:
    """:func:`p_wave_correlation` from the window's aligned beats (None: 0)."""
    if aligned is None:
        return 0.0
    _, beats, tmpl = aligned
    pre = round(PRE_S * fs_hz)
    p0, p1 = pre + round(P_REGION_S[0] * fs_hz), pre + round(P_REGION_S[1] * fs_hz)
    return _p_correlation(beats, tmpl, p0, p1)[0]


def _fwave(
    x: NDArray[np.float64], r_rel: NDArray[np.int64], fs_hz: float, qrs_uv: float
) -> tuple[float, float]:
    """Atrial activity after average-beat QRST cancellation (Slocum et al. 1992).

    The median beat (``ABS_REGION_S`` around R) is subtracted at every beat, each beat's
    share limited to its own RR neighbourhood; the QRS (+/- ``QRS_BLANK_S``) is bridged by
    linear interpolation; the Welch spectrum of what is left from the first to the last R
    gives the fraction of its 1-30 Hz power in the f-wave band 4-9 Hz (Bollmann et al. 2006;
    Stridh & Sörnmo 2001) and the log10 band RMS over the QRS amplitude.
    """
    a0, a1 = round(ABS_REGION_S[0] * fs_hz), round(ABS_REGION_S[1] * fs_hz)
    peaks: list[int] = r_rel.tolist()
    inside = [r for r in peaks if r + a0 >= 0 and r + a1 <= x.size]
    if len(inside) < 3 or peaks[-1] - peaks[0] < 2 * fs_hz:
        return 0.0, -3.0
    segs = x[np.asarray(inside)[:, None] + np.arange(a0, a1)]
    tmpl = median_columns(segs)
    y = x.copy()
    rr = [b - a for a, b in itertools.pairwise(inside)]
    for i, r in enumerate(inside):
        lo = a0 if i == 0 else max(a0, -round(0.35 * rr[i - 1]))
        hi = a1 if i == len(inside) - 1 else min(a1, round(0.65 * rr[i]))
        y[r + lo : r + hi] -= tmpl[lo - a0 : hi - a0]
    start, stop = max(peaks[0], 0), min(peaks[-1], x.size)
    seg = y[start:stop]
    blank = np.zeros(seg.size, dtype=bool)
    b = round(QRS_BLANK_S * fs_hz)
    for r in peaks:
        rr0 = r - start
        blank[max(rr0 - b, 0) : max(min(rr0 + b, seg.size), 0)] = True
    if blank.all():
        return 0.0, -3.0
    idx = np.arange(seg.size)
    seg = seg.copy()
    seg[blank] = np.interp(idx[blank], idx[~blank], seg[~blank])
    welch = _welch(min(seg.size, round(2 * fs_hz)), fs_hz)
    f, pxx = welch.freqs_hz, welch(seg)
    df = float(f[1] - f[0])
    band = float(pxx[(f >= FWAVE_BAND_HZ[0]) & (f <= FWAVE_BAND_HZ[1])].sum()) * df
    total = float(pxx[(f >= 1.0) & (f <= 30.0)].sum()) * df
    return band / max(total, 1e-12), math.log10(math.sqrt(band) / qrs_uv + 1e-3)


def window_start(first_r_idx: int, fs_hz: float) -> int | None:
    """Stream index where a window's raw signal starts, None if the stream is too young.

    ``MARGIN_S`` of filter start-up before the first beat segment, cut short at the stream
    start (index 0) as long as the first beat's own segment (``PRE_S`` before R) is there:
    short strips (CinC 2017, 9-61 s) keep their first window.
    """
    if first_r_idx - round(PRE_S * fs_hz) < 0:
        return None
    return max(first_r_idx - round((PRE_S + MARGIN_S) * fs_hz), 0)


SegmentAt = Callable[[int, int], NDArray[np.float32] | None]
"""Raw µV samples ``[start, stop)`` of the stream, or None if not buffered."""


def beat_window_signal(
    beats: Iterable[int], fs_hz: float, segment: SegmentAt
) -> tuple[NDArray[np.int64], NDArray[np.float64], int] | None:
    """R-peaks, raw µV signal and its first stream index for one window of beats.

    The signal runs from :func:`window_start` of the first beat to ``POST_S`` after the last
    (the arguments of :func:`af_wave_features`); None when the stream is too young or the
    segment is no longer (or not) held.
    """
    r = np.fromiter(beats, dtype=np.int64)
    first = window_start(int(r[0]), fs_hz)
    if first is None:
        return None
    raw = segment(first, int(r[-1]) + round(POST_S * fs_hz) + 1)
    if raw is None:
        return None
    return r, np.asarray(raw, dtype=np.float64), first


class FusedAfDetector(AfDetector):
    """AF from RR (the int8 LSTM) *or* from the waveform window model, one episode stream.

    Same interface as :class:`agent.rhythm.af.AfDetector` (``push(rr_ms, t_s)``,
    ``reset()``, ``probability``, ``in_af``), so :class:`agent.core.consumers.AfConsumer`
    uses it unchanged; built for waveform streams only (RR-only straps keep the RR path).

    Parameters
    ----------
    model
        The loaded AF LSTM.
    fs_hz
        Stream rate (R-peak times are ``t_s * fs_hz`` samples), Hz.
    segment
        Raw ECG getter of the stream.
    params
        Waveform model parameters.
    """

    def __init__(
        self,
        model: AfModel,
        fs_hz: float,
        segment: SegmentAt,
        params: AfWaveParams = AF_WAVE_PARAMS_TUNED,
    ) -> None:
        super().__init__(model=model)
        self._fs_hz = fs_hz
        self._segment = segment
        self.wave_params = params
        self.wave_model = AfWaveModel.load(MODELS_DIR / params.card_file)
        self._wave_interp = self.wave_model.interpreter()
        self._beats: deque[int] = deque(maxlen=AF_WAVE_BEATS)
        self._ectopic: deque[bool] = deque(maxlen=AF_WAVE_BEATS)
        self._since = 0
        self._wave_run = 0
        self._wave_run_start_s = 0.0
        self._wave_against = False  # the latest judged window voted below p_off
        self._wave_seen_s = 0.0  # last R-peak of the latest window that voted AF
        self.wave_af = False
        self.wave_probability: float | None = None
        self._fused = False

    @property
    def in_af(self) -> bool:
        """True while either path says AF."""
        return self._fused

    @property
    def af_seen_until_s(self) -> float | None:
        """The later of the two paths' evidence for the open episode (s); None if neither.

        The RR path: see :attr:`agent.rhythm.af.AfDetector.af_seen_until_s`. The waveform
        path judges a window of the last ``AF_WAVE_BEATS`` beats as a whole and dates an onset
        at its first beat: while it is in AF and its latest judged window still calls AF (at
        or above ``p_off``), the episode is seen up to the last R-peak of the latest window
        that voted AF. A window with repeating P waves is judged (not AF); one with more than
        ``max_ectopic`` confident V beats votes neither way and does not move it (too many
        PVCs to tell, as the RR path leaves their intervals out). ``supports_af`` (inherited)
        is whether this is not None.
        """
        rr = super().af_seen_until_s
        wave = self._wave_seen_s if self.wave_af and not self._wave_against else None
        return max((s for s in (rr, wave) if s is not None), default=None)

    def reset(self) -> list[AfChange]:
        """Restart both paths after a gap; end an open episode."""
        super().reset()
        self._beats.clear()
        self._ectopic.clear()
        self._since, self._wave_run, self.wave_af = 0, 0, False
        self._wave_against, self._wave_seen_s = False, 0.0
        return self._combine(self._last_t_s if self._last_t_s is not None else 0.0, None)

    def push(self, rr_ms: float, t_s: float) -> list[AfChange]:
        """Feed one RR interval ending at the R-peak at ``t_s`` (s) to the RR (LSTM) path.

        :class:`agent.core.consumers.AfConsumer` feeds only the RR intervals that do not touch
        an ectopic beat; the waveform path sees every beat through :meth:`observe_beat`.
        """
        was_af = self._fused
        lstm = super().push(rr_ms, t_s)
        if was_af and not self._fused:
            # an RR gap made the RR path call reset(), this class's: both paths restarted
            # and the fused episode ended there; that end is in ``lstm``
            return [c for c in lstm if not c.af]
        began = next((c for c in lstm if c.af), None)
        if began is None:
            return self._combine(t_s, None)
        return self._combine(t_s, began.onset_s, began.confirmed_s)

    def observe_beat(self, t_s: float, ectopic: bool) -> list[AfChange]:
        """Feed every final beat (R-peak at ``t_s``, s) to the waveform path.

        Every ``AF_WAVE_HOP_BEATS`` beats the last ``AF_WAVE_BEATS`` beats, ectopic ones
        included (exactly the windows :mod:`tools.af.wave` trains and tunes on), are judged;
        ``ectopic`` (a confident V, :func:`agent.core.consumers.is_ectopic`) feeds the
        ectopy veto (``AfWaveParams.max_ectopic``).
        """
        self._beats.append(round(t_s * self._fs_hz))
        self._ectopic.append(ectopic)
        self._since += 1
        onset = None
        if len(self._beats) == AF_WAVE_BEATS and self._since >= AF_WAVE_HOP_BEATS:
            self._since = 0
            onset = self._judge_wave()
        return self._combine(t_s, onset)

    def _judge_wave(self) -> float | None:
        window = beat_window_signal(self._beats, self._fs_hz, self._segment)
        if window is None:
            return None
        r, raw, first = window
        # the vetoes first: a vetoed window needs neither the other features nor the model
        # (P waves repeat in most windows of most patients; issue 11, same outputs)
        aligned = _aligned_beats(r, raw, first, self._fs_hz)
        prm = self.wave_params
        if _p_corr_of(aligned, self._fs_hz) >= prm.p_corr_max:
            p = 0.0  # P waves repeat beat to beat: not AF
            self._wave_against = True
        elif sum(self._ectopic) > prm.max_ectopic:
            p = 0.0  # frequent PVCs: an irregular RR series that is not AF
            # too many PVCs to judge: no vote either way for supports_af
        else:
            feats = _features_of(r, first, self._fs_hz, aligned)
            p = self.wave_model.probability(feats, self._wave_interp)
            self._wave_against = p < prm.p_off
            if not self._wave_against:
                self._wave_seen_s = float(r[-1]) / self._fs_hz
        self.wave_probability = p
        start_s = float(r[0]) / self._fs_hz
        if not self.wave_af:
            if p >= prm.p_on:
                if self._wave_run == 0:
                    self._wave_run_start_s = start_s
                self._wave_run += 1
                if self._wave_run >= prm.k_on:
                    self.wave_af, self._wave_run = True, 0
                    return self._wave_run_start_s
            else:
                self._wave_run = 0
        elif p < prm.p_off:
            self._wave_run += 1
            if self._wave_run >= prm.k_off:
                self.wave_af, self._wave_run = False, 0
        else:
            self._wave_run = 0
        return None

    def _combine(
        self, t_s: float, onset_s: float | None, confirmed_s: float | None = None
    ) -> list[AfChange]:
        now = self.logic.in_af or self.wave_af
        if now == self._fused:
            return []
        self._fused = now
        if now:
            return [AfChange(True, onset_s if onset_s is not None else t_s, confirmed_s)]
        return [AfChange(False, t_s)]


P_WAVE_VETO_CORR: Final = 0.4
"""P-wave veto threshold on ``p_corr``: the waveform path's own veto (``AfWaveParams.p_corr_max``,
chosen in each nested fold of ``tools.af.wave_mlp`` on CinC 2017 + mitdb outside DS2)."""
P_WAVE_VETO_WINDOWS: Final = 2
"""Consecutive RR windows whose beats show repeating P waves before the veto holds (set a
priori, as the waveform path's ``k_on``: one window of coarse f waves must not end an episode
or break an onset run)."""


class PWaveVetoAfDetector(AfDetector):
    """The RR (LSTM) AF detector, with a veto when the ECG shows repeating P waves.

    Opt-in (``inference.af_p_wave_veto``), for ECG streams without the waveform model path
    (:class:`FusedAfDetector` has its own P-wave veto). At every RR window whose P(AF) would
    count towards AF (at or above the episode logic's lower threshold), the last
    ``AF_WAVE_BEATS`` beats' P-wave correlation (:func:`p_wave_correlation`) is measured;
    when it is at or above ``P_WAVE_VETO_CORR`` in ``P_WAVE_VETO_WINDOWS`` such windows in a
    row, the window counts as not AF. Sinus rhythm with frequent or runs of atrial premature
    beats has P waves and an irregular RR series; AF has no repeating atrial wave (AHA/ACC/HRS
    2014 AF guideline, definition: "no distinct P waves"). Atrial flutter's regular F waves
    can look like repeating P waves: the veto may cost a flutter call (docs/af_detector.md).

    Parameters
    ----------
    model
        The loaded AF LSTM.
    fs_hz
        Stream rate (R-peak times are ``t_s * fs_hz`` samples), Hz.
    segment
        Raw ECG getter of the stream.
    """

    def __init__(self, model: AfModel, fs_hz: float, segment: SegmentAt) -> None:
        super().__init__(model=model)
        self._fs_hz = fs_hz
        self._segment = segment
        self._beats: deque[int] = deque(maxlen=AF_WAVE_BEATS)
        self._p_run = 0
        self.p_corr: float | None = None
        """P-wave correlation of the latest measured window (None before the first)."""
        self.vetoed_windows = 0

    def reset(self) -> list[AfChange]:
        """Restart after a gap; forget the beats and the P-wave run."""
        self._beats.clear()
        self._p_run = 0
        return super().reset()

    def observe_beat(self, t_s: float, ectopic: bool) -> list[AfChange]:
        """Keep every final beat's R-peak (ectopic ones too) for the P-wave windows."""
        self._beats.append(round(t_s * self._fs_hz))
        return []

    def _vote(self, p_af: float) -> float:
        prm = self.logic.params
        if p_af < prm.p_off:  # p_off <= p_on (EpisodeParams): a veto would change nothing
            self._p_run = 0  # nothing to measure
            return p_af
        corr = self._measure()
        self.p_corr = corr
        self._p_run = self._p_run + 1 if corr is not None and corr >= P_WAVE_VETO_CORR else 0
        if self._p_run >= P_WAVE_VETO_WINDOWS:
            self.vetoed_windows += 1
            return 0.0
        return p_af

    def _measure(self) -> float | None:
        if len(self._beats) < AF_WAVE_BEATS:
            return None
        window = beat_window_signal(self._beats, self._fs_hz, self._segment)
        return None if window is None else p_wave_correlation(*window, self._fs_hz)
