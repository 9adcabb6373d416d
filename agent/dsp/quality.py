"""Streaming ECG signal-quality index: in-band noise relative to the QRS amplitude.

The question a bedside monitor must answer is not "is this ECG pretty" but "can the QRS
detector be trusted here": noise that reaches the detector's band makes false beats (false
tachy) or hides true ones (false pause / asystole). The index is therefore an online
estimate of the signal-to-noise ratio *in the detector's QRS band*, defined the way the
MIT-BIH Noise Stress Test defines SNR (Moody, Muldrow & Mark 1984): signal = the QRS
amplitude, noise = the level of everything else.

- The ECG is band-passed causally (8-20 Hz, the detector's band, Butterworth, state carried
  across chunks, so the result does not depend on chunking) and rectified.
- It is summarised in blocks of ``BLOCK_S`` (0.5 s): per block the median (a QRS lasts
  under 120 ms, so the median of a block is the inter-beat level, i.e. the noise, at any
  heart rate below ~250 bpm) and the maximum (the QRS, when the block holds one).
- Every block, the window of the last ``window_s`` seconds gives ``noise_uv`` = median of
  its block medians, and a QRS level = the second-largest block maximum (one spike
  does not count). The reference QRS amplitude ``qrs_ref_uv`` is the median of the QRS
  levels of the last ``REFERENCE_WINDOWS`` windows judged good, so noise cannot raise it.
- ``sqi = clip((snr_db - SNR_POOR_DB) / (SNR_CLEAN_DB - SNR_POOR_DB) * 0.5 + 0.5)`` with
  ``snr_db = 20 log10(qrs_ref_uv / noise_uv)``: 0.5 at ``SNR_POOR_DB``, 1 at or above
  ``SNR_CLEAN_DB``. A window whose noise is below ``NOISE_FLOOR_UV`` is clean whatever the
  reference (true asystole is quiet: it must stay analysable so that asystole is alarmed).
- State: poor after ``POOR_MIN_S`` of windows under ``poor_below``; good again after
  ``GOOD_MIN_S`` of windows at or above it. The onset of a poor state is the start of the
  first poor window (retroactive: where the noise began, at most ``window_s`` earlier), so
  with the default 2 s window and 0.5 s confirmation it is decided within 2.5 s of its
  onset, inside the R-peak detector's commitment lag (≈ 2.6 s): the pipeline can apply it in
  stream-time order before it judges a noise-masked pause or asystole.

- **Baseline artifacts.** A jump of the baseline (a movement or electrode artifact that
  saturates the amplifier, as in mitdb 116 and 208) leaves a quiet, attenuated ECG while the
  baseline recovers: the band SNR calls it clean, the detector misses every beat and the
  agent would call it asystole. So the raw signal's baseline is followed too: the median of
  each block; a change of at least ``BASELINE_STEP_UV`` between consecutive blocks marks an
  artifact, and every window is poor until the baseline has stayed settled (changes below
  ``BASELINE_SETTLED_UV`` between blocks) for ``ARTIFACT_HOLD_S``. The return to usable
  signal is then dated from the end of that hold, not from the start of its window, so the
  asystole clock restarts only where the ECG is usable again.

Why not NeuroKit2 ``ecg_quality`` or template matching: ``ecg_quality`` ("averageQRS",
Orphanidou's "zhao2018" fuzzy rules) needs detected R peaks and 10 s windows, so it is
decided after the detector's lag plus a window (> 10 s: too late to suppress a noise-made
pause) and costs a NeuroKit call per window; template matching (Orphanidou et al. 2015) and
bSQI (Li, Mark & Clifford 2008, agreement of two detectors) likewise depend on beats
detected in the noise they judge. The band SNR needs no beat, is a few vectorised numpy
operations per block (about 0.15 s CPU per 30-min 360 Hz record), and measures exactly what
breaks the detector. Its pSQI-like band choice follows Li et al. (2008).

The detector's R peaks are not used (``r_peak_idx`` is accepted and ignored): an index that
must flag the stretches where the detector is wrong should not depend on the detector.

References
----------
Moody GB, Muldrow WE, Mark RG. A noise stress test for arrhythmia detectors. Computers in
Cardiology 1984;11:381-384 (the nstdb SNR definition).
Li Q, Mark RG, Clifford GD. Robust heart rate estimation from multiple asynchronous noisy
sources using signal quality indices and a Kalman filter. Physiol Meas 2008;29(1):15-32.
doi:10.1088/0967-3334/29/1/002
Orphanidou C, Bonnici T, Charlton P, Clifton D, Vallance D, Tarassenko L. Signal-quality
indices for the electrocardiogram and photoplethysmogram: derivation and applications to
wireless monitoring. IEEE J Biomed Health Inform 2015;19(3):832-838.
doi:10.1109/JBHI.2014.2338351
Pan J, Tompkins WJ. A real-time QRS detection algorithm. IEEE Trans Biomed Eng
1985;32(3):230-236. doi:10.1109/TBME.1985.325532
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from agent.dsp.stats import median_finite, median_rows
from agent.dsp.zerophase import sosfilt_stateful
from agent.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["QualityChange", "SignalQualityMonitor"]

QRS_BAND_HZ: Final = (8.0, 20.0)
"""Band in which noise and QRS are compared: the R-peak detector's band
(:data:`agent.dsp.rpeaks.QRS_BAND_HZ`), where noise turns into false or masked beats."""
QRS_BAND_ORDER: Final = 2
"""Butterworth order of the band-pass (causal, run once)."""
BLOCK_S: Final = 0.5
"""Block length, s: the hop of the index. Longer than a QRS (< 120 ms) so that a block
median is the inter-beat level at rates up to ~250 bpm (2 QRS of 120 ms in 0.5 s)."""
MIN_FS_HZ: Final = 60.0
"""Lowest supported rate: the 20 Hz band edge must be below Nyquist with margin."""
SNR_POOR_DB: Final = 16.0
"""Band SNR (dB, 20 log10 of QRS peak over inter-beat median of the rectified 8-20 Hz
signal) that maps to sqi 0.5. Set on nstdb and mitdb DS1 (2 s windows): 97 / 93 % of the
118e_6 / 119e_6 noise windows, 80 / 43 % at 0 dB and 16 / 0 % at 6 dB fall under it, and
0.2 % of the DS1 windows (worst 207, in its ventricular flutter). Clean windows sit at
25-35 dB (per-window study script, not yet in tools/qrs_study.py)."""
SNR_CLEAN_DB: Final = 26.0
"""Band SNR mapping to sqi 1 (and above): about the lower quartile of clean mitdb windows."""
REFERENCE_MIN_SQI: Final = 0.8
"""Only windows at least this clean (band SNR >= 22 dB) update the QRS reference, so that a
noise burst judged just usable cannot raise the reference and hide the next burst."""
PEAK_WINDOW_S: Final = 4.0
"""The QRS level of a window is the second-largest block maximum of the last 4 s: at least
two beats at rates down to 30 bpm, so it is a QRS, not a T wave or a gap."""
NOISE_FLOOR_UV: Final = 15.0
"""Inter-beat band level (µV) below which a window is clean whatever the QRS reference:
quantisation and amplifier noise (AAMI EC13 allows 30 µV p-v system noise) cannot make or
mask a QRS of more than the 150 µV the detector needs (IEC 60601-2-27 201.12.1.101.1.2).
Keeps true asystole (a quiet baseline) analysable."""
REFERENCE_WINDOWS: Final = 16
"""The QRS reference is the median QRS level of the last 16 good windows (8 s at the
default 0.5 s hop): long enough to ignore a spike, short enough to follow a gain change."""
POOR_MIN_S: Final = 0.5
"""Poor windows needed in a row before the state turns poor (one block of confirmation)."""
BASELINE_STEP_UV: Final = 1000.0
"""A change of the raw block median of at least 1 mV within 0.5 s is a baseline artifact:
respiratory baseline wander (<= ~0.5 mV at ~0.25 Hz) changes it by ~0.2 mV per 0.5 s, and on
all 48 mitdb records channel 0 only 0.1 % of consecutive 0.5 s blocks differ by 1 mV or more
(99.9th percentile 1.06 mV; mitdb 116 and 208's asystole-like artifacts: 1.5-3.5 mV)."""
BASELINE_SETTLED_UV: Final = 200.0
"""After an artifact the baseline has settled once consecutive block medians differ by less
than 0.2 mV (about the respiratory wander per 0.5 s; the 90th percentile on mitdb is 0.21 mV)."""
ARTIFACT_HOLD_S: Final = 3.0
"""After an artifact the baseline must stay settled this long before the signal can be usable
again, s (the amplifier's recovery attenuates the QRS for seconds after the jump; 116, 208)."""
GOOD_MIN_S: Final = 3.0
"""Good windows needed in a row before the state turns good again: the signal must be
clean for a few beats before ECG alarms resume (avoids flapping at segment edges)."""


@dataclass(frozen=True, slots=True)
class QualityChange:
    """A change of the signal-quality state.

    Attributes
    ----------
    poor : bool
        True when the signal became unusable, False when it became usable again.
    onset_idx : int
        Stream sample index (at ``fs_hz``) where the new state began: for ``poor=True`` the
        first sample of the first poor window of the run (retroactive), for ``poor=False``
        the first sample of the first good window of the run.
    decided_idx : int
        Stream sample index at which the monitor decided (end of the confirming block).
    sqi : float
        The index value (0..1, 1 = clean) of the window that decided it.
    """

    poor: bool
    onset_idx: int
    decided_idx: int
    sqi: float


class SignalQualityMonitor:
    """Streaming signal-quality index and poor/usable state of one ECG lead.

    Parameters
    ----------
    fs_hz : float
        Sampling rate of the pushed samples, Hz (at least 60).
    window_s : float, optional
        Length of the window each index value describes, s (default 2; a multiple of
        ``BLOCK_S`` is used, at least two blocks).
    poor_below : float, optional
        The signal is poor while the index stays below this (default 0.5, i.e. a band SNR
        of ``SNR_POOR_DB``).

    Raises
    ------
    ConfigError
        If ``fs_hz < 60``, ``window_s < 2 * BLOCK_S`` or ``poor_below`` is not in (0, 1).

    Notes
    -----
    Needs ``window_s`` of signal before the first index; before that ``sqi`` is None and
    no change is reported (the state starts usable). NaN samples (invalid) are not judged: the
    window restarts after them and the filter restarts at rest on the first valid sample, so
    a lead or link coming back is not read as noise; a flat or invalid lead is the flat-line
    detector's business (:mod:`agent.dsp.flatline`).

    References
    ----------
    Moody, Muldrow & Mark 1984 (nstdb SNR); Li, Mark & Clifford 2008,
    doi:10.1088/0967-3334/29/1/002; Orphanidou et al. 2015, doi:10.1109/JBHI.2014.2338351.
    """

    def __init__(
        self,
        fs_hz: float,
        *,
        window_s: float = 2.0,
        poor_below: float = 0.5,
    ) -> None:
        if not fs_hz >= MIN_FS_HZ:
            msg = f"fs_hz must be >= {MIN_FS_HZ} Hz, got {fs_hz}"
            raise ConfigError(msg, "fs_hz")
        if not window_s >= 2 * BLOCK_S:
            msg = f"window_s must be >= {2 * BLOCK_S} s, got {window_s}"
            raise ConfigError(msg, "window_s")
        if not 0.0 < poor_below < 1.0:
            msg = f"poor_below must be in (0, 1), got {poor_below}"
            raise ConfigError(msg, "poor_below")
        self.fs_hz = float(fs_hz)
        self.poor_below = float(poor_below)
        self._block_n = max(1, round(BLOCK_S * fs_hz))
        self._win_blocks = max(2, round(window_s / BLOCK_S))
        self._poor_min_blocks = max(1, round(POOR_MIN_S / BLOCK_S))
        self._good_min_blocks = max(1, round(GOOD_MIN_S / BLOCK_S))
        self._sos = np.ascontiguousarray(
            signal.butter(
                QRS_BAND_ORDER, QRS_BAND_HZ, btype="bandpass", fs=self.fs_hz, output="sos"
            ),
            dtype=np.float64,
        )
        self._zi = np.zeros((self._sos.shape[0], 2), dtype=np.float64)
        self._pending = np.zeros(0, dtype=np.float64)  # rectified band samples, < 1 block
        self._n_blocks = 0  # blocks completed so far
        self._block_med: deque[float] = deque(maxlen=self._win_blocks)
        self._block_max: deque[float] = deque(
            maxlen=max(self._win_blocks, round(PEAK_WINDOW_S / BLOCK_S))
        )
        self._ref_levels: deque[float] = deque(maxlen=REFERENCE_WINDOWS)
        self._sqi: float | None = None
        self.poor = False
        self._run = 0  # windows in a row that disagree with the state
        self._run_onset = 0
        self._restart = False  # restart the band-pass filter at the next valid sample
        self._raw_pending = np.zeros(0, dtype=np.float64)  # raw samples, < 1 block
        self._prev_base_uv: float | None = None  # raw median of the previous block
        self._artifact_blocks = 0  # blocks of artifact hold left (0: no artifact)
        self._settled_idx: int | None = None  # where the baseline settled after an artifact
        self.artifact_blocks_total = 0
        """Blocks judged part of a baseline artifact so far."""
        self.bounds: list[tuple[int, int]] | None = None
        """Set to a list to collect ``(block end, earliest_onset_idx after it)`` for every
        block judged (stream samples; the caller empties it): when the bound passed each
        sample. None (default): not collected."""

    @property
    def earliest_onset_idx(self) -> int:
        """The earliest ``onset_idx`` a change not yet reported can have (stream samples).

        A run of windows that disagree with the state dates its change from the first of
        them; otherwise the next change can start no earlier than the next window. Everything
        before this index is decided, whatever samples come next.
        """
        if self._run > 0:
            return self._run_onset
        return max(0, (self._n_blocks + 1 - self._win_blocks) * self._block_n)

    @property
    def sqi(self) -> float | None:
        """Latest index (0..1, 1 = clean), or None before the first full window."""
        return self._sqi

    def push(
        self, samples_uv: NDArray[np.float32], r_peak_idx: Sequence[int] = ()
    ) -> list[QualityChange]:
        """Feed samples; return the quality changes they caused, in order.

        Parameters
        ----------
        samples_uv : NDArray[np.float32]
            ECG in µV at ``fs_hz``, shape ``(n_samples,)``, any length; NaN = invalid.
        r_peak_idx : Sequence[int], optional
            Committed R-peak sample indices from the detector. Accepted for interface
            stability and ignored: the index is independent of the detector.

        Returns
        -------
        list[QualityChange]
            State changes, in stream order (usually none).
        """
        del r_peak_idx  # deliberately unused, see the module docstring
        x = np.asarray(samples_uv, dtype=np.float64).reshape(-1)
        if x.size == 0:
            return []
        finite = np.isfinite(x)
        if finite.all():
            band = self._band(x)
        else:
            # invalid runs (leads off, a link gap filled with NaN) become NaN blocks, which
            # restart the window; the filter restarts at the first valid sample after them,
            # so the jump from "nothing" back to the signal is not read as noise
            edges = np.flatnonzero(np.diff(finite.astype(np.int8))) + 1
            parts = []
            for seg in np.split(np.arange(x.size), edges):
                if finite[seg[0]]:
                    parts.append(self._band(x[seg]))
                else:
                    self._restart = True
                    parts.append(np.full(seg.size, np.nan))
            band = np.concatenate(parts)
        buf = np.concatenate([self._pending, band])
        raw = np.concatenate([self._raw_pending, x])
        n_blocks = buf.size // self._block_n
        changes: list[QualityChange] = []
        if n_blocks:
            cut = n_blocks * self._block_n
            blocks = buf[:cut].reshape(n_blocks, self._block_n)
            meds = median_rows(blocks).tolist()
            maxs = blocks.max(axis=1).tolist()
            bases = median_rows(raw[:cut].reshape(n_blocks, self._block_n)).tolist()
            for med, mx, base in zip(meds, maxs, bases, strict=True):
                if math.isfinite(med) and math.isfinite(base):
                    changes.extend(self._step(med, mx, base))
                else:
                    self._gap_block()
                if self.bounds is not None:
                    self.bounds.append((self._n_blocks * self._block_n, self.earliest_onset_idx))
        self._pending = buf[n_blocks * self._block_n :]
        self._raw_pending = raw[n_blocks * self._block_n :]
        return changes

    def _band(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Rectified 8-20 Hz band of valid samples (filter restarted at rest after a gap)."""
        if self._restart:
            self._zi = signal.sosfilt_zi(self._sos) * x[0]
            self._restart = False
        band, self._zi = sosfilt_stateful(self._sos, x, self._zi)
        return np.abs(band)

    def _gap_block(self) -> None:
        """Skip a block with invalid samples: the window starts again after it."""
        self._n_blocks += 1
        self._block_med.clear()
        self._block_max.clear()
        self._run = 0
        self._sqi = None
        self._prev_base_uv = None
        self._artifact_blocks = 0

    def _baseline_artifact(self, base_uv: float, end_idx: int) -> bool:
        """Follow the raw baseline; return whether this block is part of an artifact."""
        step_uv = 0.0 if self._prev_base_uv is None else abs(base_uv - self._prev_base_uv)
        self._prev_base_uv = base_uv
        hold = max(1, round(ARTIFACT_HOLD_S / BLOCK_S))
        if step_uv >= BASELINE_STEP_UV:
            self._artifact_blocks = hold
            self._settled_idx = None
        elif self._artifact_blocks:
            if step_uv < BASELINE_SETTLED_UV:
                self._artifact_blocks -= 1
                if self._artifact_blocks == 0:
                    self._settled_idx = end_idx - self._block_n
            else:
                self._artifact_blocks = hold
        if self._artifact_blocks:
            self.artifact_blocks_total += 1
        return self._artifact_blocks > 0

    def _window_sqi(self) -> float:
        """Index of the current window; updates the QRS reference when it is good."""
        # finite: a block with a NaN never reaches _step (its median is NaN: _gap_block)
        noise_uv = median_finite(np.fromiter(self._block_med, np.float64, len(self._block_med)))
        qrs_uv = sorted(self._block_max)[-2]
        if not self._ref_levels:
            self._ref_levels.append(qrs_uv)  # first window: assume usable
        ref_uv = median_finite(np.fromiter(self._ref_levels, np.float64, len(self._ref_levels)))
        if noise_uv < NOISE_FLOOR_UV:
            sqi = 1.0
        else:
            snr_db = 20.0 * math.log10(max(ref_uv, 1e-9) / noise_uv)
            sqi = 0.5 + 0.5 * (snr_db - SNR_POOR_DB) / (SNR_CLEAN_DB - SNR_POOR_DB)
            sqi = min(1.0, max(0.0, sqi))
        if sqi >= REFERENCE_MIN_SQI:
            self._ref_levels.append(qrs_uv)
        return sqi

    def _step(self, block_med: float, block_max: float, base_uv: float) -> list[QualityChange]:
        self._block_med.append(block_med)
        self._block_max.append(block_max)
        self._n_blocks += 1
        end_idx = self._n_blocks * self._block_n
        artifact = self._baseline_artifact(base_uv, end_idx)
        if len(self._block_med) < self._win_blocks:
            return []
        win_start = end_idx - self._win_blocks * self._block_n
        if artifact:
            # the QRS level of an artifact window must not become the reference
            self._sqi = sqi = 0.0
        else:
            sqi = self._window_sqi()
            self._sqi = sqi
            if self._settled_idx is not None:
                # usable again from where the baseline settled, not from the window start
                win_start = max(win_start, self._settled_idx)
        is_poor = sqi < self.poor_below
        if is_poor == self.poor:
            self._run = 0
            return []
        if self._run == 0:
            self._run_onset = win_start
        self._run += 1
        need = self._poor_min_blocks if is_poor else self._good_min_blocks
        if self._run < need:
            return []
        self.poor = is_poor
        self._run = 0
        logger.debug(
            "signal quality %s at %d (sqi %.2f)", "poor" if is_poor else "ok", end_idx, sqi
        )
        return [QualityChange(is_poor, self._run_onset, end_idx, sqi)]
