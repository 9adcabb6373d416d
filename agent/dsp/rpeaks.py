"""Streaming R-peak detection: NeuroKit2 cleaning on overlapping windows plus monitor logic.

The stream is cut into windows of ``window_s`` seconds that end every ``hop_s`` seconds at
fixed absolute positions (``k * hop``), so the output does not depend on how the samples
were chunked when pushed. Each window is cleaned with NeuroKit2 ``ecg_clean`` (method
"neurokit": 0.5 Hz high-pass, power-line moving average; reproduced here with the filters
designed once, a test pins it to ``nk.ecg_clean``); a Pan-Tompkins feature (band-pass,
derivative, 150 ms moving-window RMS, all zero-phase inside the window) gives QRS
candidates, local maxima at least 200 ms apart. Each candidate is decided exactly once, in
the window where it falls in the *decision region* ``[previous region end, window end -
look-ahead)``, by a sequential Hamilton-Tompkins decision stage whose state runs across
windows:

- adaptive thresholds from the medians of the last 8 QRS and 8 noise peak heights
  (amplitude adaptation);
- a 200 ms refractory period (which also removes the same beat seen by two windows);
- T-wave rejection: a candidate within 360 ms of the previous QRS whose steepest slope is
  under half that of the previous QRS is a T wave; a candidate within 250 ms after a QRS
  and lower than it is part of that QRS or its T wave (no mitdb RR is shorter);
- P-wave rejection (look-ahead): a candidate followed within 250 ms by a higher one, or
  within 300 ms by one more than 1/0.6 times steeper, is a P wave or a QRS onset;
- a 150 µV peak-to-peak floor (IEC 60601-2-27 / AAMI EC13 small-signal rejection);
- searchback: when no QRS has been found for 1.5 mean RR intervals, the largest candidate
  above half the threshold since the last QRS is taken as a missed beat;
- the detected position is moved to the R apex (largest deviation of the cleaned ECG from
  its local median within ±R_APEX_SEARCH_MS), since AAMI EC57 scores within 150 ms.

Measured (tools/qrs_study.py, whole records, channel 0, EC57 150 ms window): all 48 mitdb
records Se 99.87 %, +P 99.87 % at 360 Hz, 99.87 / 99.86 % at 130 Hz; about 0.55 s CPU per
30-min 360 Hz record on one x86-64 core. Studies vary the constants through
:class:`RPeakTuning` (``tools/qrs_study.py --const NAME=VALUE``), never by patching them.

Latency: ``committed_until_idx`` trails the newest pushed sample by at most
``hop_s + LOOKAHEAD_S + R_APEX_SEARCH_MS`` (2.58 s with the defaults) while beats come
regularly. Just after a beat, candidates that a later searchback could still pick hold the
commitment back by up to the searchback interval (1.5 mean RR, at most
``SEARCHBACK_MAX_S``); once that interval has passed without a QRS (e.g. asystole) the lag
is again ``hop_s + LOOKAHEAD_S + R_APEX_SEARCH_MS`` at most.

The module is over 400 lines because the decision stage is one state machine whose rules
interact (refractory, T- and P-wave tests, searchback, re-learning), and every constant keeps
beside it the measurement that chose its value.

References
----------
Pan J, Tompkins WJ. A real-time QRS detection algorithm. IEEE Trans Biomed Eng
1985;32(3):230-236. doi:10.1109/TBME.1985.325532
Hamilton PS, Tompkins WJ. Quantitative investigation of QRS detection rules using the
MIT/BIH arrhythmia database. IEEE Trans Biomed Eng 1986;33(12):1157-1165.
doi:10.1109/TBME.1986.325695
Makowski D, Pham T, Lau ZJ, et al. NeuroKit2: A Python toolbox for neurophysiological signal
processing. Behav Res Methods 2021;53:1689-1696. doi:10.3758/s13428-020-01516-y
ANSI/AAMI EC57:2012, section 3.1 (150 ms beat matching window).
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import deque
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, signal

from agent.dsp.stats import median_rows
from agent.dsp.zerophase import ZeroPhaseBa, ZeroPhaseSos
from agent.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TUNING",
    "DEFAULT_WINDOW_S",
    "DetectorStep",
    "RPeak",
    "RPeakTuning",
    "StreamingRPeakDetector",
]

# --- feature (Pan & Tompkins 1985) ------------------------------------------------------
QRS_BAND_HZ: Final = (8.0, 20.0)
"""QRS band-pass. Pan & Tompkins (1985) use 5-15 Hz; 8-20 Hz keeps less T-wave energy and
was best on the de Chazal DS1 records (5-15: +P 99.19 %, 8-20: 99.65 %, 10-25: 99.43 %,
same Se, before the P-wave rules; tools/qrs_study.py)."""
QRS_BAND_ORDER: Final = 2
"""Butterworth order of the QRS band-pass (run forward-backward, so effectively 4)."""
MWI_MS: Final = 150.0
"""Moving-window integration width: about the widest normal QRS (Pan & Tompkins 1985)."""

# --- decision rules (Hamilton & Tompkins 1986) --------------------------------------------
REFRACTORY_MS: Final = 200.0
"""No second QRS within 200 ms: physiological refractory period (Pan & Tompkins 1985)."""
T_WAVE_WINDOW_MS: Final = 360.0
"""Candidates this close to the previous QRS get the T-wave slope test (Pan & Tompkins)."""
T_WAVE_SLOPE_RATIO: Final = 0.5
"""A candidate in the T-wave window whose steepest slope is below this fraction of the
previous QRS's is a T wave (Pan & Tompkins 1985)."""
P_WAVE_WINDOW_MS: Final = 300.0
"""Look-ahead counterpart of the T-wave rule: a P wave peaks at most ~300 ms before its R
(PR interval up to 300 ms in first-degree AV block)."""
P_WAVE_SLOPE_RATIO: Final = 0.6
"""A candidate followed within P_WAVE_WINDOW_MS by a higher one whose steepest slope is
more than 1/0.6 times its own is a P wave (or the onset of the same QRS), not a QRS."""
MIN_RR_MS: Final = 250.0
"""Of two candidates closer than this, only the higher can be a QRS: no RR interval in the
48 mitdb records is shorter than 250 ms (39 are under 300 ms, in VT runs)."""
SLOPE_HALF_WIDTH_MS: Final = 75.0
"""Half-width of the window around a candidate in which its steepest slope is measured."""
THRESHOLD_COEF: Final = 0.3125
"""Detection threshold = noise + coef * (QRS - noise) peak levels; Hamilton & Tompkins'
best rule on mitdb (1986, table VI)."""
LEVEL_MEMORY_BEATS: Final = 8
"""QRS / noise / RR levels are medians or means of the last 8 values (Hamilton 1986)."""
SEARCHBACK_RR_RATIO: Final = 1.5
"""Search back for a missed beat after 1.5 mean RR without a QRS (Hamilton 1986; Pan &
Tompkins use 1.66)."""
SEARCHBACK_THRESHOLD_RATIO: Final = 0.5
"""Searchback accepts candidates above half the detection threshold (Pan & Tompkins)."""
SEARCHBACK_MIN_S: Final = 0.5
"""Lower bound of the searchback interval; below it RR estimates come from noise."""
SEARCHBACK_MAX_S: Final = 2.0
"""Upper bound of the searchback interval: bounds the commitment lag after a beat."""
RR_DEFAULT_S: Final = 0.8
"""RR assumed before any has been measured (75 bpm, an adult resting rate)."""
RR_MIN_S: Final = 0.2
"""Shortest RR kept for the mean RR (300 bpm): shorter intervals are detection artefacts."""
RR_MAX_S: Final = 3.0
"""Longest RR kept for the mean RR (20 bpm): longer gaps are pauses or signal loss."""
MIN_QRS_PP_UV: Final = 150.0
"""Smallest accepted QRS peak-to-peak amplitude in the cleaned ECG. IEC 60601-2-27:2011
201.12.1.101.1.2 requires monitors not to count complexes of 0.15 mV or less (noise)."""
QRS_PP_HALF_WIDTH_MS: Final = 60.0
"""Half-width of the window in which the QRS peak-to-peak amplitude is measured."""

NK_CLEAN_HIGHPASS_HZ: Final = 0.5
"""NeuroKit2 ecg_clean "neurokit" high-pass corner (baseline wander), Makowski et al. 2021."""
NK_CLEAN_HIGHPASS_ORDER: Final = 5
"""NeuroKit2 ecg_clean "neurokit" high-pass Butterworth order."""
MIN_FS_HZ: Final = 100.0
"""Lowest supported rate: the 5-15 Hz band and the 50/60 Hz filter need it."""

# --- windowing ---------------------------------------------------------------------------
DEFAULT_WINDOW_S: Final = 5.0
"""Length of each cleaning window, s. Every sample is filtered ``window_s / hop_s`` times, so
the window is the detector's main cost. 5 s leaves 2.5 s of left context before the decision
region, enough for the 0.5 Hz high-pass and the QRS band-pass to settle; measured with
``tools/qrs_study.py --window-s`` (channel 0, EC57 150 ms, gross): all 48 mitdb records
Se/+P 99.87/99.87 % with 145 FN / 141 FP at 5 s against 147 FN / 141 FP at 10 s (130 Hz:
139/149 against 141/150); svdb 40 records 99.76/99.81 % and nstdb 118/119 at 24-0 dB
97.57/87.27 % against 97.56/87.26 %, both unchanged; detector CPU about 20 % lower."""
LOOKAHEAD_S: Final = 0.5
"""Right context a candidate needs before it is decided: the forward-backward filters'
edge transients (5-15 Hz band-pass settles in well under 0.3 s), the slope and apex search."""
INIT_S: Final = 4.0
"""Signal needed before the first decision: thresholds are learnt from the first window."""
INIT_QRS_FRACTION: Final = 0.3
"""At start-up, feature peaks above this fraction of the window's largest (an amplitude
ratio of about 0.55, since the feature is squared) are taken as QRS complexes."""
REINIT_S: Final = 5.0
"""After this long without a QRS the thresholds are learnt again from the current window
(lead change, gain change); longer than any mitdb pause that is a true pause of a few s."""
R_APEX_SEARCH_MS: Final = 80.0
"""Half-width of the search for the R apex around the feature peak: the zero-phase
integrated feature peaks near the QRS centre, within half a wide QRS of the apex."""
APEX_BASELINE_HALF_WIDTH_MS: Final = 200.0
"""Half-width of the window whose median is the local baseline for the apex search."""
NAN_GUARD_S: Final = 0.3
"""Feature samples this close to an invalid (NaN) sample are zeroed: the gap edges of the
filled signal would otherwise look like QRS slopes."""
STREAM_EDGE_S: Final = 0.2
"""Candidates this close to the first sample of the stream are filter start-up transients
(forward-backward filters see a step there), not beats."""
MIN_VALID_S: Final = 1.0
"""Windows with less valid signal than this yield no candidates."""


@dataclass(frozen=True, slots=True)
class RPeakTuning:
    """The detector's tuning constants as one value, for studies that vary them.

    Each field is the module constant of the same name in lower case, and defaults to it
    (``threshold_coef`` defaults to :data:`THRESHOLD_COEF`; the constants document each
    value's reason and source). The agent always runs :data:`DEFAULT_TUNING`; a study passes
    a changed copy, e.g. ``dataclasses.replace(DEFAULT_TUNING, threshold_coef=0.25)``
    (``tools/qrs_study.py --const THRESHOLD_COEF=0.25``), instead of patching the module.
    The NeuroKit2 cleaning constants (``NK_CLEAN_*``) and :data:`MIN_FS_HZ` are not tuning:
    they pin the cleaning to ``nk.ecg_clean`` and the filters' validity.
    """

    qrs_band_hz: tuple[float, float] = QRS_BAND_HZ
    qrs_band_order: int = QRS_BAND_ORDER
    mwi_ms: float = MWI_MS
    refractory_ms: float = REFRACTORY_MS
    t_wave_window_ms: float = T_WAVE_WINDOW_MS
    t_wave_slope_ratio: float = T_WAVE_SLOPE_RATIO
    p_wave_window_ms: float = P_WAVE_WINDOW_MS
    p_wave_slope_ratio: float = P_WAVE_SLOPE_RATIO
    min_rr_ms: float = MIN_RR_MS
    slope_half_width_ms: float = SLOPE_HALF_WIDTH_MS
    threshold_coef: float = THRESHOLD_COEF
    level_memory_beats: int = LEVEL_MEMORY_BEATS
    searchback_rr_ratio: float = SEARCHBACK_RR_RATIO
    searchback_threshold_ratio: float = SEARCHBACK_THRESHOLD_RATIO
    searchback_min_s: float = SEARCHBACK_MIN_S
    searchback_max_s: float = SEARCHBACK_MAX_S
    rr_default_s: float = RR_DEFAULT_S
    rr_min_s: float = RR_MIN_S
    rr_max_s: float = RR_MAX_S
    min_qrs_pp_uv: float = MIN_QRS_PP_UV
    qrs_pp_half_width_ms: float = QRS_PP_HALF_WIDTH_MS
    lookahead_s: float = LOOKAHEAD_S
    init_s: float = INIT_S
    init_qrs_fraction: float = INIT_QRS_FRACTION
    reinit_s: float = REINIT_S
    r_apex_search_ms: float = R_APEX_SEARCH_MS
    apex_baseline_half_width_ms: float = APEX_BASELINE_HALF_WIDTH_MS
    nan_guard_s: float = NAN_GUARD_S
    stream_edge_s: float = STREAM_EDGE_S
    min_valid_s: float = MIN_VALID_S


DEFAULT_TUNING: Final = RPeakTuning()
"""The shipped tuning: every module constant as written above."""


@dataclass(frozen=True, slots=True)
class RPeak:
    """One detected R peak.

    Attributes
    ----------
    r_peak_idx : int
        Absolute sample index in the stream at ``fs_hz`` (0 = first sample ever pushed).
    amplitude_uv : float
        Amplitude of the cleaned ECG at the peak, µV.
    """

    r_peak_idx: int
    amplitude_uv: float


@dataclass(frozen=True, slots=True)
class DetectorStep:
    """What one :meth:`StreamingRPeakDetector.push` (or ``flush``) produced.

    Attributes
    ----------
    r_peaks : tuple[RPeak, ...]
        New final R peaks in increasing order; each true R peak is reported exactly once
        over the whole stream.
    committed_until_idx : int
        Every R peak with a smaller sample index has now been reported; no later step will
        report one below it. Monotonic non-decreasing.
    decided_idx : tuple[int, ...]
        For each of ``r_peaks``, how many samples had been pushed when it was decided: the
        end of the hop window that reported it (fixed absolute positions, so it does not
        depend on how the samples were chunked), or the last pushed sample for ``flush``.
        Empty when the step was built without it.
    bounds : tuple[tuple[int, int], ...]
        ``(hop window end, committed_until_idx after it)`` for every hop window this step
        processed, in order: when the commitment passed each sample, whatever the chunking
        (:class:`agent.core.frontends.WaveformFrontEnd` dates the timeline's judgements by it).
    """

    r_peaks: tuple[RPeak, ...]
    committed_until_idx: int
    decided_idx: tuple[int, ...] = ()
    bounds: tuple[tuple[int, int], ...] = ()


@dataclass(slots=True)
class _Candidate:
    idx: int  # feature peak, absolute sample index
    height: float  # feature height, (µV/s)^2
    slope: float  # steepest |derivative| of the band-passed ECG nearby, µV/s
    apex_idx: int  # refined R apex, absolute sample index
    amplitude_uv: float  # cleaned ECG at the apex, µV
    pp_uv: float  # peak-to-peak amplitude of the cleaned ECG around the apex, µV
    pre_wave: bool  # a much steeper candidate follows within P_WAVE_WINDOW_MS (P wave)


class StreamingRPeakDetector:
    """Detect R peaks in an ECG stream pushed in chunks of any length.

    Parameters
    ----------
    fs_hz : float
        Sampling rate of the stream, Hz (tested at 130, 250 and 360 Hz; at least 100 Hz).
    powerline_hz : {50, 60}
        Mains frequency removed by ``ecg_clean``.
    window_s : float, optional
        Length of each cleaning window, s (default :data:`DEFAULT_WINDOW_S`, 5). At least
        ``hop_s + 2 s``.
    hop_s : float, optional
        Windows end every ``hop_s`` seconds (default 2).
    tuning : RPeakTuning, optional
        Detection constants (default :data:`DEFAULT_TUNING`, the module constants); only
        studies change them.

    Raises
    ------
    ConfigError
        If ``fs_hz < 100``, ``powerline_hz`` is not 50 or 60, or the window/hop are
        inconsistent.

    Notes
    -----
    NaN samples (lead off, invalid) are filled with the window median before cleaning and the
    feature is zeroed within ``NAN_GUARD_S`` of them, so they create no peak. No minimum
    input length: a stream shorter than ``MIN_VALID_S`` simply yields no peak.

    References
    ----------
    Pan & Tompkins 1985, doi:10.1109/TBME.1985.325532; Hamilton & Tompkins 1986,
    doi:10.1109/TBME.1986.325695; Makowski et al. 2021, doi:10.3758/s13428-020-01516-y.
    """

    def __init__(
        self,
        fs_hz: float,
        powerline_hz: Literal[50, 60],
        *,
        window_s: float = DEFAULT_WINDOW_S,
        hop_s: float = 2.0,
        tuning: RPeakTuning = DEFAULT_TUNING,
    ) -> None:
        self._tuning = tuning
        if not fs_hz >= MIN_FS_HZ:
            msg = f"fs_hz must be >= 100 Hz, got {fs_hz}"
            raise ConfigError(msg, "fs_hz")
        if powerline_hz not in (50, 60):
            msg = f"powerline_hz must be 50 or 60, got {powerline_hz}"
            raise ConfigError(msg, "powerline_hz")
        if not hop_s > 0 or not window_s >= hop_s + self._tuning.lookahead_s + 1.5:
            msg = f"need hop_s > 0 and window_s >= hop_s + 2 s, got {window_s=} {hop_s=}"
            raise ConfigError(
                msg,
                "window_s",
            )
        self.fs_hz = float(fs_hz)
        self.powerline_hz: Literal[50, 60] = powerline_hz
        self._win_n = round(window_s * fs_hz)
        self._hop_n = max(1, round(hop_s * fs_hz))
        self._look_n = round(self._tuning.lookahead_s * fs_hz)
        self._init_n = round(self._tuning.init_s * fs_hz)
        self._refr_n = round(self._tuning.refractory_ms * fs_hz / 1000.0)
        self._twave_n = round(self._tuning.t_wave_window_ms * fs_hz / 1000.0)
        self._pwave_n = round(self._tuning.p_wave_window_ms * fs_hz / 1000.0)
        self._close_n = round(self._tuning.min_rr_ms * fs_hz / 1000.0)
        self._stream_edge_n = round(self._tuning.stream_edge_s * fs_hz)
        self._slope_n = round(self._tuning.slope_half_width_ms * fs_hz / 1000.0)
        self._apex_n = round(self._tuning.r_apex_search_ms * fs_hz / 1000.0)
        self._base_n = round(self._tuning.apex_baseline_half_width_ms * fs_hz / 1000.0)
        self._pp_n = round(self._tuning.qrs_pp_half_width_ms * fs_hz / 1000.0)
        self._mwi_n = max(1, round(self._tuning.mwi_ms * fs_hz / 1000.0))
        self._nan_guard_n = round(self._tuning.nan_guard_s * fs_hz)
        # NeuroKit2 0.2.13 ecg_clean(method="neurokit"), with its filters designed once:
        # 5th-order Butterworth high-pass at 0.5 Hz run forward-backward, then a moving
        # average one mains period long, forward-backward (nk.signal_filter "powerline").
        # The forward-backward filters keep their initial conditions too (agent.dsp.zerophase:
        # bit-for-bit SciPy's sosfiltfilt / filtfilt, without a linear solve per window).
        self._clean_highpass = ZeroPhaseSos(
            signal.butter(
                NK_CLEAN_HIGHPASS_ORDER,
                NK_CLEAN_HIGHPASS_HZ,
                btype="highpass",
                fs=fs_hz,
                output="sos",
            )
        )
        taps = np.ones(max(1, int(fs_hz / powerline_hz)))
        self._clean_powerline = ZeroPhaseBa(taps, np.array([float(taps.size)]))
        self._band = ZeroPhaseSos(
            signal.butter(
                self._tuning.qrs_band_order,
                self._tuning.qrs_band_hz,
                btype="bandpass",
                fs=self.fs_hz,
                output="sos",
            )
        )
        # stream buffer: the last window of samples (float64), starting at _buf_start
        self._buf = np.zeros(0, dtype=np.float64)
        self._buf_start = 0
        self._n_pushed = 0
        self._next_end = self._hop_n  # absolute end of the next window to process
        # decision state
        self._decided_until = 0  # candidates below this have been decided
        self._last_cand_idx = -(10**9)  # last decided candidate (feature peak index)
        self._initialised = False
        self._qrs_levels: deque[float] = deque(maxlen=self._tuning.level_memory_beats)
        self._noise_levels: deque[float] = deque(maxlen=self._tuning.level_memory_beats)
        self._rr_n: deque[int] = deque(maxlen=self._tuning.level_memory_beats)
        self._last_qrs: _Candidate | None = None
        self._last_qrs_feature_idx = -(10**9)
        self._sb_anchor = 0  # searchback measures time since max(last QRS, failed searchback)
        self._pending: list[_Candidate] = []  # sub-threshold candidates since the last QRS
        self._last_reported_idx = -(10**9)
        self._committed = 0

    # ------------------------------------------------------------------ public API
    def push(self, samples_uv: NDArray[np.float32]) -> DetectorStep:
        """Append samples and return the R peaks that became final.

        Parameters
        ----------
        samples_uv : NDArray[np.float32]
            ECG samples in µV at ``fs_hz``, shape ``(n_samples,)``, any length (0 allowed);
            NaN marks invalid samples.

        Returns
        -------
        DetectorStep
            New R peaks and the commitment index.
        """
        x = np.asarray(samples_uv, dtype=np.float64).reshape(-1)
        if x.size:
            self._buf = np.concatenate([self._buf, x])
            self._n_pushed += x.size
        peaks: list[RPeak] = []
        decided: list[int] = []
        bounds: list[tuple[int, int]] = []
        while self._n_pushed >= self._next_end:
            new = self._process(self._next_end, final=False)
            peaks.extend(new)
            decided.extend([self._next_end] * len(new))
            bounds.append((self._next_end, self._committed))
            self._next_end += self._hop_n
        return DetectorStep(tuple(peaks), self._committed, tuple(decided), tuple(bounds))

    def flush(self) -> DetectorStep:
        """Process the tail of the stream and commit up to the last pushed sample.

        Returns
        -------
        DetectorStep
            The remaining R peaks; ``committed_until_idx`` equals the number of samples
            pushed.
        """
        peaks = self._process(self._n_pushed, final=True) if self._n_pushed > 0 else []
        self._committed = max(self._committed, self._n_pushed)
        return DetectorStep(
            tuple(peaks),
            self._committed,
            (self._n_pushed,) * len(peaks),
            ((self._n_pushed, self._committed),) if self._n_pushed else (),
        )

    # ------------------------------------------------------------------ windows
    def _ecg_clean(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """NeuroKit2 ``ecg_clean(x, fs_hz, method="neurokit", powerline=powerline_hz)``.

        Same filters and calls as NeuroKit2 0.2.13 (pinned by a test against
        ``nk.ecg_clean``), without redesigning the Butterworth filter on every window, which
        cost half of the detector's CPU time.

        Parameters
        ----------
        x : NDArray[np.float64]
            Raw ECG window in µV at ``fs_hz``, shape ``(n_samples,)``, no NaN.

        Returns
        -------
        NDArray[np.float64]
            Cleaned ECG in µV, shape ``(n_samples,)``.

        References
        ----------
        Makowski et al. 2021, doi:10.3758/s13428-020-01516-y (``ecg_clean``, method
        "neurokit").
        """
        return self._clean_powerline(self._clean_highpass(x))

    def _process(self, end: int, *, final: bool) -> list[RPeak]:
        """Clean the window ending at ``end`` and decide the candidates in its region."""
        start = max(self._buf_start, end - self._win_n)
        window = self._buf[start - self._buf_start : end - self._buf_start]
        region_end = end if final else end - self._look_n
        peaks: list[RPeak] = []
        if end >= self._init_n or final:
            cands = self._candidates(window, start, region_end, final=final)
            peaks = self._decide(cands, region_end, final=final)
        # keep only what the next window needs
        keep_from = max(0, end + self._hop_n - self._win_n)
        if keep_from > self._buf_start:
            self._buf = self._buf[keep_from - self._buf_start :]
            self._buf_start = keep_from
        return peaks

    def _candidates(
        self, window: NDArray[np.float64], start: int, region_end: int, *, final: bool
    ) -> list[_Candidate]:
        """Return the undecided QRS candidates of one window, in time order."""
        invalid = np.isnan(window)
        n_valid = int(window.size - invalid.sum())
        if n_valid < self._tuning.min_valid_s * self.fs_hz:
            return []
        x = window
        if n_valid < window.size:
            x = np.where(invalid, np.nanmedian(window), window)
        clean = self._ecg_clean(x)
        band = self._band(clean)
        deriv = np.gradient(band) * self.fs_hz  # µV/s
        energy = ndimage.uniform_filter1d(deriv * deriv, self._mwi_n, mode="nearest")
        feature = np.sqrt(np.maximum(energy, 0.0))  # RMS slope, µV/s; clip rounding below 0
        if n_valid < window.size:
            guard = ndimage.binary_dilation(invalid, iterations=self._nan_guard_n)
            feature[guard] = 0.0
        if not self._initialised and not self._learn(feature):
            return []
        peak_pos, _ = signal.find_peaks(feature, distance=self._refr_n)
        lo = max(self._decided_until - self._slope_n, self._last_cand_idx + self._refr_n // 2)
        abs_pos = peak_pos + start
        sel = peak_pos[(abs_pos >= lo) & (abs_pos < region_end)]
        out: list[_Candidate] = []
        n = window.size
        abs_deriv = np.abs(deriv)

        def slope_at(p: int) -> float:
            return float(abs_deriv[max(0, p - self._slope_n) : p + self._slope_n + 1].max())

        following = np.searchsorted(peak_pos, sel, side="right")
        # local baseline of each candidate: median of the cleaned ECG around it (edge-clipped)
        around = sel[:, None] + np.arange(-self._base_n, self._base_n + 1)
        np.maximum(around, 0, out=around)  # np.clip(around, 0, n - 1) without its wrapper
        np.minimum(around, n - 1, out=around)
        bases = median_rows(clean[around]) if sel.size else np.zeros(0)  # np.median(axis=1)
        for p, k, base in zip(sel.tolist(), following.tolist(), bases.tolist(), strict=True):
            slope = slope_at(p)
            pre_wave = False
            if k < peak_pos.size and peak_pos[k] - p <= self._pwave_n:
                q = int(peak_pos[k])
                pre_wave = feature[q] > feature[p] and (
                    q - p <= self._close_n or slope < self._tuning.p_wave_slope_ratio * slope_at(q)
                )
            a0, a1 = max(0, p - self._apex_n), min(n, p + self._apex_n + 1)
            seg = clean[a0:a1]
            apex = a0 + int(np.argmax(np.abs(seg - base)))
            q0, q1 = max(0, apex - self._pp_n), min(n, apex + self._pp_n + 1)
            pp = float(clean[q0:q1].max() - clean[q0:q1].min())
            out.append(
                _Candidate(
                    idx=p + start,
                    height=float(feature[p]),
                    slope=slope,
                    apex_idx=apex + start,
                    amplitude_uv=float(clean[apex]),
                    pp_uv=pp,
                    pre_wave=pre_wave,
                )
            )
        return out

    def _learn(self, feature: NDArray[np.float64]) -> bool:
        """Initialise the QRS and noise levels from one window's feature."""
        peak_pos, _ = signal.find_peaks(feature, distance=self._refr_n)
        if peak_pos.size == 0:
            return False
        heights = feature[peak_pos]
        top = float(heights.max())
        if top <= 0.0:
            return False
        is_qrs = heights > self._tuning.init_qrs_fraction * top
        qrs_level = float(np.median(heights[is_qrs]))
        noise_level = float(np.median(heights[~is_qrs])) if (~is_qrs).any() else 0.0
        self._qrs_levels.clear()
        self._noise_levels.clear()
        self._qrs_levels.extend([qrs_level] * self._tuning.level_memory_beats)
        self._noise_levels.extend([noise_level] * self._tuning.level_memory_beats)
        self._initialised = True
        logger.debug("thresholds learnt: qrs %.3g noise %.3g", qrs_level, noise_level)
        return True

    # ------------------------------------------------------------------ decisions
    def _threshold(self) -> float:
        if not self._qrs_levels:
            return math.inf  # nothing learnt yet: nothing is a QRS
        qrs = statistics.median(self._qrs_levels)
        noise = statistics.median(self._noise_levels) if self._noise_levels else 0.0
        return noise + self._tuning.threshold_coef * (qrs - noise)

    def _sb_interval_n(self) -> int:
        rr_s = (
            statistics.fmean(self._rr_n) / self.fs_hz if self._rr_n else self._tuning.rr_default_s
        )
        sb_s = min(
            max(self._tuning.searchback_rr_ratio * rr_s, self._tuning.searchback_min_s),
            self._tuning.searchback_max_s,
        )
        return round(sb_s * self.fs_hz)

    def _is_t_wave(self, cand: _Candidate) -> bool:
        last = self._last_qrs
        return (
            last is not None
            and cand.idx - self._last_qrs_feature_idx < self._twave_n
            and cand.slope < self._tuning.t_wave_slope_ratio * last.slope
        )

    def _accept(self, cand: _Candidate, out: list[RPeak], *, searchback: bool) -> None:
        if self._last_qrs is not None:
            rr = cand.idx - self._last_qrs_feature_idx
            if self._tuning.rr_min_s * self.fs_hz <= rr <= self._tuning.rr_max_s * self.fs_hz:
                self._rr_n.append(rr)
        self._qrs_levels.append(cand.height)
        self._last_qrs = cand
        self._last_qrs_feature_idx = cand.idx
        self._sb_anchor = cand.idx
        self._pending = []
        if cand.apex_idx >= self._last_reported_idx + self._refr_n:
            out.append(RPeak(r_peak_idx=cand.apex_idx, amplitude_uv=cand.amplitude_uv))
            self._last_reported_idx = cand.apex_idx
        if searchback:
            logger.debug("searchback found a beat at %d", cand.apex_idx)

    def _searchback(self, now: int, out: list[RPeak]) -> None:
        """Look for missed beats while ``now`` is a searchback interval past the anchor."""
        while now - self._sb_anchor > self._sb_interval_n():
            limit = self._tuning.searchback_threshold_ratio * self._threshold()
            best: _Candidate | None = None
            for cand in self._pending:
                better = best is None or cand.height > best.height
                if better and cand.height > limit and not self._is_t_wave(cand):
                    best = cand
            if best is None:
                self._sb_anchor = max(self._sb_anchor + self._sb_interval_n(), now)
                self._pending = []
                return
            rest = [c for c in self._pending if c.idx > best.idx]
            self._accept(best, out, searchback=True)
            self._pending = rest

    def _decide(self, cands: list[_Candidate], region_end: int, *, final: bool) -> list[RPeak]:
        out: list[RPeak] = []
        for cand in cands:
            self._last_cand_idx = cand.idx
            since_qrs = cand.idx - self._last_qrs_feature_idx
            if since_qrs < self._refr_n or cand.apex_idx < self._stream_edge_n:
                continue
            if (
                self._last_qrs is not None
                and since_qrs <= self._close_n
                and cand.height <= self._last_qrs.height
            ):
                self._noise_levels.append(cand.height)  # MIN_RR_MS rule, backwards
                continue
            self._searchback(cand.idx, out)
            if cand.pp_uv < self._tuning.min_qrs_pp_uv or cand.pre_wave:
                self._noise_levels.append(cand.height)
                continue
            if cand.height > self._threshold() and not self._is_t_wave(cand):
                self._accept(cand, out, searchback=False)
            else:
                self._noise_levels.append(cand.height)
                self._pending.append(cand)
        self._searchback(region_end, out)
        if (
            self._initialised
            and region_end - self._last_qrs_feature_idx > self._tuning.reinit_s * self.fs_hz
        ):
            self._initialised = False  # relearn from the next window
        self._decided_until = max(self._decided_until, region_end)
        hold = region_end if final else region_end - self._apex_n
        if self._pending and not final:
            hold = min(hold, self._pending[0].idx - self._apex_n)
        # a later peak is at least a refractory period after the last reported one
        self._committed = max(self._committed, hold, self._last_reported_idx + 1)
        return out
