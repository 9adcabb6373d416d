"""Atrial fibrillation from the ECG waveform: RR irregularity plus P-wave absence, per window.

For ECG sources (not RR-only straps) every ``AF_WAVE_HOP_BEATS`` beats the last
``AF_WAVE_BEATS`` beats (about 12-20 s) are described by nine published features:

- RR irregularity (Tateno & Glass 2001; Sarkar et al. 2008; Dash et al. 2009): the RMSSD
  normalised by the mean RR, the mean absolute successive difference over the median RR, the
  fraction of successive differences above 50 ms, the log median RR, and the median and
  lower quartile of the absolute successive differences over the median RR (robust to a few
  ectopic beats: in AF nearly every successive difference is large);
- P-wave evidence from the R-aligned beats of the window, band-passed 0.5-40 Hz (the
  "no P waves, fibrillatory baseline" of the 2023 ACC/AHA/ACCP/HRS AF definition, as used by
  e.g. Ladavich & Ghoraani 2015 and the CinC 2017 feature sets, Clifford et al. 2017): the
  peak-to-peak of the median beat between 250 and 80 ms before R relative to its QRS
  peak-to-peak (a P wave survives the median, f waves cancel), the mean correlation of each
  beat's P region with the median's (P waves repeat, f waves do not) and the residual of the
  P regions around the median relative to the QRS (f-wave activity).

A logistic regression (:data:`AF_WAVE_PARAMS_TUNED`, tuned patient-wise on CinC 2017 by
``python -m tools.af wave-tune``) gives P(AF) of the window. :class:`FusedAfDetector` calls
AF when ``k_on`` consecutive windows reach ``p_on`` *or* when the RR LSTM
(:class:`agent.rhythm.af.AfDetector`) confirms it, so AF is called within about 20-30 s of
onset instead of the LSTM's ~64 beats; it ends when neither path says AF.

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
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from agent.rhythm.af import AfChange, AfDetector, AfModel

__all__ = [
    "AF_WAVE_BEATS",
    "AF_WAVE_FEATURE_NAMES",
    "AF_WAVE_HOP_BEATS",
    "AF_WAVE_PARAMS_TUNED",
    "AfWaveParams",
    "FusedAfDetector",
    "af_wave_features",
    "af_wave_probability",
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
)
N_AF_WAVE_FEATURES: Final = len(AF_WAVE_FEATURE_NAMES)


@dataclass(frozen=True, slots=True)
class AfWaveParams:
    """Classifier and confirmation of the waveform AF path.

    Attributes
    ----------
    feature_mean, feature_scale : tuple[float, ...]
        Standardisation (:data:`AF_WAVE_FEATURE_NAMES` order).
    coef : tuple[float, ...]
        Logistic weights.
    intercept : float
        Logistic intercept.
    p_on : float
        A window votes AF when P(AF) >= p_on.
    k_on : int
        Consecutive AF windows that confirm AF.
    p_off : float
        A window votes against AF when P(AF) < p_off.
    k_off : int
        Consecutive such windows that end the waveform AF call.
    """

    feature_mean: tuple[float, ...] = field(default=(0.0,) * N_AF_WAVE_FEATURES)
    feature_scale: tuple[float, ...] = field(default=(1.0,) * N_AF_WAVE_FEATURES)
    coef: tuple[float, ...] = field(default=(0.0,) * N_AF_WAVE_FEATURES)
    intercept: float = -10.0
    p_on: float = 0.9
    k_on: int = 3
    p_off: float = 0.5
    k_off: int = 3


# Tuned by `python -m tools.af wave-tune --data ../shared/data` (CinC 2017 + mitdb windows; the
# confirmation chosen for the best CinC record F1 with <= 0.1 confirmed calls per hour outside
# AF on mitdb). Cross-validated figures: docs/af_detector.md.
AF_WAVE_PARAMS_TUNED: Final = AfWaveParams(
    feature_mean=(
        0.154309,
        0.118462,
        0.323496,
        -0.122083,
        0.116916,
        0.692997,
        0.044636,
        0.0899728,
        0.0459916,
    ),
    feature_scale=(
        0.17857,
        0.153527,
        0.320146,
        0.101643,
        0.13172,
        0.277249,
        0.0827056,
        0.146504,
        0.090667,
    ),
    coef=(
        0.0168214,
        -0.248599,
        2.12915,
        -1.53402,
        -0.241789,
        -1.83028,
        -1.17261,
        -0.0917784,
        -0.763677,
    ),
    intercept=-3.09503,
    p_on=0.98,
    k_on=5,
    p_off=0.5,
    k_off=3,
)


def _sos(fs_hz: float) -> NDArray[np.float64]:
    return np.asarray(signal.butter(2, BAND_HZ, btype="bandpass", fs=fs_hz, output="sos"))


_SOS_CACHE: dict[float, NDArray[np.float64]] = {}


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
        nRMSSD and mean |dRR| / median RR (dimensionless), fraction of |dRR| > 50 ms (0..1),
        log10 of the median RR in s, P amplitude / QRS amplitude, mean P correlation (-1..1),
        P residual / QRS amplitude.
    """
    rr_s = np.diff(r_idx) / fs_hz
    drr = np.diff(rr_s)
    med = float(np.median(rr_s))
    nrmssd = math.sqrt(float(np.mean(drr**2))) / float(np.mean(rr_s)) if drr.size else 0.0
    mad = float(np.mean(np.abs(drr))) / med if drr.size else 0.0
    pnn50 = float(np.mean(np.abs(drr) > NN50_MS / 1000.0)) if drr.size else 0.0
    # robust to a few ectopic beats: most successive differences are small unless AF
    robust = (
        [float(v) / med for v in np.quantile(np.abs(drr), [0.5, 0.25])] if drr.size else [0.0, 0.0]
    )
    sos = _SOS_CACHE.get(fs_hz)
    if sos is None:
        sos = _SOS_CACHE.setdefault(fs_hz, _sos(fs_hz))
    if raw_uv.size < round(fs_hz):  # too short to filter: RR features only
        return np.array([nrmssd, mad, pnn50, math.log10(max(med, 1e-3)), 0.0, 0.0, 0.0, *robust])
    x = signal.sosfiltfilt(sos, np.nan_to_num(raw_uv))
    pre, post = round(PRE_S * fs_hz), round(POST_S * fs_hz)
    segs = []
    for r in r_idx[1:]:
        lo = int(r) - first_idx - pre
        if lo >= 0 and int(r) - first_idx + post <= x.size:
            segs.append(x[lo : int(r) - first_idx + post])
    if len(segs) < 2:
        return np.array([nrmssd, mad, pnn50, math.log10(max(med, 1e-3)), 0.0, 0.0, 0.0, *robust])
    beats = np.asarray(segs)
    beats = beats - beats[:, :1]  # each beat relative to its start (baseline)
    tmpl = np.median(beats, axis=0)
    p0, p1 = pre + round(P_REGION_S[0] * fs_hz), pre + round(P_REGION_S[1] * fs_hz)
    q0, q1 = pre + round(QRS_REGION_S[0] * fs_hz), pre + round(QRS_REGION_S[1] * fs_hz)
    qrs = max(float(np.ptp(tmpl[q0:q1])), 1e-6)
    p_t = tmpl[p0:p1] - float(np.mean(tmpl[p0:p1]))
    p_b = beats[:, p0:p1] - beats[:, p0:p1].mean(axis=1, keepdims=True)
    den = np.linalg.norm(p_b, axis=1) * max(float(np.linalg.norm(p_t)), 1e-9)
    corr = float(np.mean((p_b @ p_t) / np.maximum(den, 1e-9)))
    resid = float(np.sqrt(np.mean((p_b - p_t) ** 2)))
    return np.array(
        [
            nrmssd,
            mad,
            pnn50,
            math.log10(max(med, 1e-3)),
            float(np.ptp(tmpl[p0:p1])) / qrs,
            corr,
            resid / qrs,
            *robust,
        ]
    )


def af_wave_probability(features: NDArray[np.float64], params: AfWaveParams) -> NDArray[np.float64]:
    """Logistic P(AF) of windows, shape ``(n,)`` or ``()``."""
    z = (features - np.asarray(params.feature_mean)) / np.asarray(params.feature_scale)
    logit = z @ np.asarray(params.coef) + params.intercept
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(logit, -50.0, 50.0))))


SegmentAt = Callable[[int, int], NDArray[np.float32] | None]
"""Raw µV samples ``[start, stop)`` of the stream, or None if not buffered."""


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
        self._beats: deque[int] = deque(maxlen=AF_WAVE_BEATS)
        self._since = 0
        self._wave_run = 0
        self._wave_run_start_s = 0.0
        self.wave_af = False
        self.wave_probability: float | None = None
        self._fused = False

    @property
    def in_af(self) -> bool:
        """True while either path says AF."""
        return self._fused

    def reset(self) -> list[AfChange]:
        """Restart both paths after a gap; end an open episode."""
        super().reset()
        self._beats.clear()
        self._since, self._wave_run, self.wave_af = 0, 0, False
        return self._combine(self._last_t_s if self._last_t_s is not None else 0.0, None)

    def push(self, rr_ms: float, t_s: float) -> list[AfChange]:
        """Feed one RR interval ending at the R-peak at ``t_s`` (s)."""
        lstm = super().push(rr_ms, t_s)
        onset: float | None = next((c.onset_s for c in lstm if c.af), None)
        self._beats.append(round(t_s * self._fs_hz))
        self._since += 1
        if len(self._beats) == AF_WAVE_BEATS and self._since >= AF_WAVE_HOP_BEATS:
            self._since = 0
            wave_onset = self._judge_wave()
            if wave_onset is not None:
                onset = wave_onset if onset is None else min(onset, wave_onset)
        return self._combine(t_s, onset)

    def _judge_wave(self) -> float | None:
        r = np.fromiter(self._beats, dtype=np.int64)
        first = int(r[0]) - round((PRE_S + MARGIN_S) * self._fs_hz)
        raw = self._segment(first, int(r[-1]) + round(POST_S * self._fs_hz) + 1)
        if raw is None:
            return None
        feats = af_wave_features(r, np.asarray(raw, dtype=np.float64), first, self._fs_hz)
        p = float(af_wave_probability(feats, self.wave_params))
        self.wave_probability = p
        prm = self.wave_params
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

    def _combine(self, t_s: float, onset_s: float | None) -> list[AfChange]:
        now = self.logic.in_af or self.wave_af
        if now == self._fused:
            return []
        self._fused = now
        if now:
            return [AfChange(True, onset_s if onset_s is not None else t_s)]
        return [AfChange(False, t_s)]
