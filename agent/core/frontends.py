"""Front ends: one per input kind, each turning its frames into timeline items in stream time.

- :class:`WaveformFrontEnd`: ECG chunks → plausibility gate → ring buffer (for beat windows
  and evidence strips) → flat-line and signal-quality states, R-peaks (committed a little
  behind the newest sample) and VF/VFL decisions (made as the samples arrive).
- :class:`RrFrontEnd`: RR-interval notifications (a Heart Rate Service strap) → beats
  reconstructed backwards from the notification time.

Both are synchronous and do no I/O. Which one a stream gets is decided once, by its first
frame (:func:`agent.core.monitor.build_core`).
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray

from agent.config import DspConfig
from agent.core.items import Qrs, Signal, StateChange
from agent.core.timing import StageTimes, timed
from agent.dsp.flatline import FlatlineDetector
from agent.dsp.quality import SignalQualityMonitor
from agent.dsp.rpeaks import RPeak, StreamingRPeakDetector
from agent.messages import EcgStrip
from agent.rhythm.vf import VfChange, VfDetector, VfParams
from firmware_bridge.frames import EcgChunk
from firmware_bridge.limits import ECG_MAX_PLAUSIBLE_UV

logger = logging.getLogger(__name__)

MAX_STEP_S: Final = 30.0
"""Longest ECG chunk the core steps at once, s; :class:`agent.core.monitor.MonitorCore` steps a
longer frame in pieces of this length, as the frames of a source that had sent them one by one
(fed whole, a 60 s frame left 889 of mitdb 100's 2,272 beats without a class, session 22).
Shorter pieces would also cut a frame that carries a reconnection's NaN-filled gap, which the
link logic reads as one frame (``tests/agent/core/test_link.py``)."""

RING_S: Final = 40.0
"""How far back a consumer may ask for raw ECG, s, measured from the moment the item being
applied reached the timeline (:meth:`agent.core.streams.WaveformMonitor.segment`): the evidence
strip (<= 30 s) plus the timeline's lag, and an AF-waveform window with the wait for the beat
after it. The ring holds ``RING_S + MAX_STEP_S`` behind the newest sample, so that moment's
reach is always held and what a consumer gets does not depend on the chunk size (session 23:
measured from the newest sample, 30 s chunks had lost AF-waveform segments in 8 mitdb records
that 5 s chunks kept, and a beat whose next R-peak came 37 s later, after VF, lost its class)."""

MAX_GAP_FILL_S: Final = 120.0
"""Missing stretches up to this long (dropped chunks, a failed chunk) are filled with NaN so
stream time stays exact and the gap reads as invalid signal (leads-off past 2 s)."""


class _Ring:
    """The last ``capacity`` samples of the stream, for beat windows and ECG strips."""

    def __init__(self, capacity: int) -> None:
        self._buf = np.zeros(capacity, dtype=np.float32)
        self._end = 0  # stream index one past the newest sample

    def push(self, samples: NDArray[np.float32]) -> None:
        n = len(samples)
        cap = len(self._buf)
        if n == 0:
            return
        if n >= cap:
            self._buf[:] = samples[-cap:]
        else:  # shift in place (no new array per chunk); window() callers copy what they keep
            self._buf[:-n] = self._buf[n:]
            self._buf[-n:] = samples
        self._end += n

    def window(self, start_idx: int, stop_idx: int) -> tuple[int, NDArray[np.float32]]:
        first = max(start_idx, self._end - len(self._buf), 0)
        stop = min(stop_idx, self._end)
        if stop <= first:
            return first, np.empty(0, dtype=np.float32)
        off = len(self._buf) - self._end
        return first, self._buf[first + off : stop + off]


@dataclass(frozen=True, slots=True)
class WaveStep:
    """What one chunk produced in :class:`WaveformFrontEnd`.

    Attributes
    ----------
    samples_uv : NDArray[np.float32]
        The chunk after the gap fill and the plausibility gate, shape ``(n_samples,)``, µV.
    first_idx : int
        Stream index of ``samples_uv[0]``.
    changes : list[StateChange]
        Flat-line and signal-quality changes, in detection order (they wait for the commit
        horizon on the timeline).
    rhythm : list[VfChange]
        VF/VFL decisions, applied at once (they do not wait for the horizon).
    peaks : list[tuple[float, RPeak]]
        Newly committed R-peaks with their stream times, s.
    committed_s : float
        The commit horizon, s: the R-peak detector's, held back by the classifier's
        look-ahead and by the earliest onset a flat-line or quality change could still have.
    decided_s : list[float]
        For each of ``peaks``, the stream time of the newest sample when it reached the
        timeline: the latest of the end of the detector's hop window that reported it, its
        R-peak plus the look-ahead, and the block ends at which neither the flat-line nor the
        quality detector could still date a change at or before it. It does not depend on
        the chunking; a live agent fed short chunks reaches the timeline then (plus at most
        one chunk).
    """

    samples_uv: NDArray[np.float32]
    first_idx: int
    changes: list[StateChange] = field(default_factory=list)
    rhythm: list[VfChange] = field(default_factory=list)
    peaks: list[tuple[float, RPeak]] = field(default_factory=list)
    committed_s: float = 0.0
    decided_s: list[float] = field(default_factory=list)


@dataclass(slots=True)
class _Held:
    """An R-peak the detector reported, waiting for the commit horizon."""

    peak: RPeak
    detector_idx: int  # samples in when the detector reported it
    flat_idx: int | None = None  # ... when no flat-line change could be dated at it any more
    quality_idx: int | None = None  # ... the same for signal-quality changes

    def decided_idx(self, lookahead_n: int) -> int:
        """Return the samples in when the beat could go on the timeline (every bound passed)."""
        return max(
            self.detector_idx,
            self.peak.r_peak_idx + lookahead_n,
            self.flat_idx or 0,
            self.quality_idx or 0,
        )


class _Passes:
    """When a non-decreasing bound on the commit horizon passed each sample.

    Fed ``(samples in, bound)`` pairs as a detector reports them (at hop or block ends, fixed
    absolute positions); :meth:`passed_at` answers when the bound first reached a sample,
    which does not depend on how the stream was chunked.
    """

    __slots__ = ("_ends", "_lo", "_values")

    def __init__(self) -> None:
        self._ends: list[int] = []
        self._values: list[int] = []
        self._lo = 0

    def add(self, end_idx: int, value: int) -> None:
        """Record that after ``end_idx`` samples the bound was ``value`` (clamped monotonic)."""
        if self._values and value < self._values[-1]:
            value = self._values[-1]
        self._ends.append(end_idx)
        self._values.append(value)

    def passed_at(self, idx: int) -> int | None:
        """Return the samples in when the bound first reached ``idx`` (>=); None: not yet."""
        k = bisect.bisect_left(self._values, idx, self._lo)
        return self._ends[k] if k < len(self._values) else None

    def forget_below(self, idx: int) -> None:
        """Drop what no query at or after ``idx`` needs."""
        self._lo = bisect.bisect_left(self._values, idx, self._lo)
        if self._lo > 512:
            del self._ends[: self._lo], self._values[: self._lo]
            self._lo = 0


class WaveformFrontEnd:
    """Everything that reads the ECG waveform of one stream.

    Parameters
    ----------
    fs_hz
        Sampling rate of the stream, Hz.
    dsp
        Detector settings.
    vf
        VF/VFL detector parameters, or None for no VF detection (also when ``fs_hz`` is
        outside the detector's range).
    stage_times
        Collects the CPU time of each stage when given.
    lookahead_n
        Samples that must have arrived after an R-peak before the beat *after* it is put on
        the timeline: the beat finaliser classifies a beat when the next one comes, from a
        raw segment reaching this far past its R-peak
        (:func:`agent.inference.beat_features.segment_bounds`). Holding the commit horizon
        back this way makes every beat's class independent of how the stream is chunked
        (0.25 s live, 5 s offline). 0 without a classifier.

    Attributes
    ----------
    samples_in : int
        Samples taken in so far (including NaN gap fill).
    samples_implausible : int
        Samples rejected by the plausibility gate (beyond ±``ECG_MAX_PLAUSIBLE_UV``, from
        :mod:`firmware_bridge.limits`).
    samples_gap_filled : int
        Samples filled with NaN where chunks were missing.
    """

    def __init__(
        self,
        fs_hz: float,
        dsp: DspConfig,
        vf: VfParams | None,
        stage_times: StageTimes | None = None,
        lookahead_n: int = 0,
    ) -> None:
        self.fs_hz = fs_hz
        self._times = stage_times
        self._lookahead_n = lookahead_n
        self._invert = dsp.invert_ecg
        self._held: list[_Held] = []  # committed by the detector, not yet on the timeline
        self._detector = StreamingRPeakDetector(
            fs_hz, dsp.powerline_hz, window_s=dsp.window_s, hop_s=dsp.hop_s
        )
        self._flat = FlatlineDetector(fs_hz, ptp_uv=dsp.flatline_ptp_uv, min_s=dsp.flatline_s)
        self._quality = SignalQualityMonitor(fs_hz)
        self._flat.bounds, self._quality.bounds = [], []
        # when each bound on the horizon passed each sample (dates the timeline's judgements)
        self._passes = (_Passes(), _Passes(), _Passes())  # R-peaks, flat line, quality
        self._vf = None if vf is None else VfDetector(fs_hz, vf)
        self._ring = _Ring(round((RING_S + MAX_STEP_S) * fs_hz))
        self.samples_in = 0
        self.samples_implausible = 0
        self.samples_gap_filled = 0

    @property
    def now_s(self) -> float:
        """Stream time of the newest sample, s."""
        return self.samples_in / self.fs_hz

    @property
    def sqi(self) -> float | None:
        """The latest signal-quality index (0..1), or None before the first window."""
        return self._quality.sqi

    def align(self, chunk: EcgChunk) -> NDArray[np.float32]:
        """Return the chunk's samples, preceded by NaN for any gap since the last one."""
        gap = chunk.first_sample_idx - self.samples_in
        if gap == 0:
            return chunk.samples_uv
        if 0 < gap <= MAX_GAP_FILL_S * chunk.fs_hz:
            self.samples_gap_filled += gap
            filler = np.full(gap, np.nan, dtype=np.float32)
            return np.concatenate([filler, chunk.samples_uv])
        if gap < 0:  # overlap with what was already processed
            return chunk.samples_uv[-gap:]
        logger.warning("stream jumped %.1f s ahead; not filled", gap / chunk.fs_hz)
        return chunk.samples_uv

    def push(self, samples_uv: NDArray[np.float32]) -> WaveStep:
        """Take the next contiguous samples, shape ``(n_samples,)``, µV, NaN = invalid.

        With ``dsp.invert_ecg`` they are turned over first: everything downstream (R-peaks,
        beat classes, rhythm detectors, evidence strips) sees the lead upright.
        """
        samples = np.asarray(samples_uv, dtype=np.float32)
        if self._invert:
            samples = -samples
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(samples) <= ECG_MAX_PLAUSIBLE_UV) & ~np.isnan(samples)
        if bad.any():
            samples = np.where(bad, np.float32(np.nan), samples)
            self.samples_implausible += int(bad.sum())
        first_idx = self.samples_in
        self._ring.push(samples)
        self.samples_in += len(samples)
        fs, times = self.fs_hz, self._times
        flat = timed(times, "flatline", self._flat.push, samples)
        poor = timed(times, "quality", self._quality.push, samples)
        changes = [StateChange(Signal.FLAT, c.flat, c.onset_idx / fs) for c in flat]
        changes += [StateChange(Signal.POOR, c.poor, c.onset_idx / fs) for c in poor]
        rhythm = timed(times, "vf", self._vf.push, samples) if self._vf is not None else []
        step = timed(times, "rpeaks", self._detector.push, samples)
        self._held.extend(_Held(p, d) for p, d in zip(step.r_peaks, step.decided_idx, strict=True))
        flat_bounds, quality_bounds = self._flat.bounds or [], self._quality.bounds or []
        r_pass, flat_pass, quality_pass = self._passes
        for end_idx, committed in step.bounds:
            r_pass.add(end_idx, committed)
        for end_idx, bound in flat_bounds:  # a beat at idx waits for bound > idx
            flat_pass.add(end_idx, bound - 1)
        for end_idx, bound in quality_bounds:
            quality_pass.add(end_idx, bound - 1)
        for held in self._held:
            idx = held.peak.r_peak_idx
            if held.flat_idx is None:
                held.flat_idx = flat_pass.passed_at(idx)
            if held.quality_idx is None:
                held.quality_idx = quality_pass.passed_at(idx)
        flat_bounds.clear()
        quality_bounds.clear()
        # a beat goes on the timeline once no flat-line or quality change can still be dated
        # at or before it (they are dated back), so every change meets the beats it precedes
        # whatever the chunk size
        horizon_idx = min(
            step.committed_until_idx,
            self.samples_in - self._lookahead_n,
            self._flat.earliest_onset_idx - 1,
            self._quality.earliest_onset_idx - 1,
        )
        n = sum(1 for h in self._held if h.peak.r_peak_idx <= horizon_idx)
        released, self._held = self._held[:n], self._held[n:]
        return WaveStep(
            samples,
            first_idx,
            changes,
            rhythm,
            [(h.peak.r_peak_idx / fs, h.peak) for h in released],
            max(horizon_idx, 0) / fs,
            [h.decided_idx(self._lookahead_n) / fs for h in released],
        )

    def decided_idx_at(self, idx: int) -> int:
        """Return the samples in when the commit horizon first reached sample ``idx``.

        The latest of the moments the R-peak detector's commitment, the classifier's
        look-ahead and the flat-line and quality bounds each reached it: when a live agent
        fed short chunks judges the timeline at ``idx``, whatever the chunking. The newest
        sample when a bound has not reached it, and never after the newest sample (at the end
        of the stream the horizon jumps to its last sample).
        """
        when = [idx + self._lookahead_n]
        for passes in self._passes:
            at = passes.passed_at(idx)
            when.append(self.samples_in if at is None else at)
        return min(max(when), self.samples_in)

    def forget_before(self, idx: int) -> None:
        """No :meth:`decided_idx_at` query will come for a sample before ``idx``."""
        for passes in self._passes:
            passes.forget_below(idx)

    def flush(self) -> tuple[list[tuple[float, RPeak]], float]:
        """End of stream: the R-peaks still held back and the final horizon, s."""
        step = self._detector.flush()
        fs = self.fs_hz
        end_s = max(step.committed_until_idx, self.samples_in) / fs
        peaks, self._held = [*(h.peak for h in self._held), *step.r_peaks], []
        return [(p.r_peak_idx / fs, p) for p in peaks], end_s

    def segment(self, start_idx: int, stop_idx: int) -> NDArray[np.float32] | None:
        """Raw µV samples ``[start, stop)`` of the stream, or None if not all are buffered."""
        first, samples = self._ring.window(start_idx, stop_idx)
        if first != start_idx or len(samples) != stop_idx - start_idx:
            return None
        return samples.copy()

    def strip(self, end_s: float, duration_s: float) -> EcgStrip | None:
        """Return the ECG that ended at stream time ``end_s`` (up to ``duration_s``), or None."""
        fs = self.fs_hz
        stop = round(end_s * fs)
        first, samples = self._ring.window(stop - round(duration_s * fs), stop)
        if len(samples) == 0:
            return None
        whole = np.rint(np.nan_to_num(samples, nan=0.0))
        # one cast instead of an int() per sample; the same integers while they fit int64
        # (an ECG in µV always does; an infinity would not, and keeps the slow path)
        fits = bool(np.abs(whole).max() < 2.0**62)
        return EcgStrip(
            fs_hz=fs,
            t0_s=round(first / fs, 4),
            samples_uv=whole.astype(np.int64).tolist() if fits else [int(v) for v in whole],
        )


class RrFrontEnd:
    """Beats from RR-interval notifications (no waveform).

    Parameters
    ----------
    fs_hz
        Rate at which beat sample indices are counted (1000: indices in ms).
    """

    def __init__(self, fs_hz: float) -> None:
        self.fs_hz = fs_hz

    def beats(
        self,
        rr_ms: Sequence[float],
        t_s: float,
        *,
        last_beat_s: float | None,
        after_gap: bool,
    ) -> list[tuple[float, Qrs]]:
        """Reconstruct the beats of one notification, backwards from ``t_s``.

        Parameters
        ----------
        rr_ms
            RR intervals in ms, oldest first, as one notification carries them.
        t_s
            Stream time of the R-peak that ends the last interval, s.
        last_beat_s
            Stream time of the last beat already on the timeline (None before the first):
            beats at or before it are a repeated notification and are dropped.
        after_gap
            True at the start of the stream or after a gap: the beat that starts the first
            interval is added too, without an RR.
        """
        items: list[tuple[float, Qrs]] = []
        t = t_s
        times: list[tuple[float, float]] = []
        for rr in reversed(rr_ms):
            times.append((t, float(rr)))
            t -= float(rr) / 1000.0
        times.reverse()
        if times and after_gap:
            start = times[0][0] - times[0][1] / 1000.0
            if start >= 0.0 and (last_beat_s is None or start > last_beat_s):
                items.append((start, self._qrs(start, None)))
        for t_beat, rr in times:
            if last_beat_s is None or t_beat > last_beat_s + 1e-6:
                items.append((t_beat, self._qrs(t_beat, rr)))
        return items

    def _qrs(self, t_s: float, rr_ms: float | None) -> Qrs:
        return Qrs(round(t_s * self.fs_hz), t_s, rr_ms, float("nan"))
