"""A scripted synthetic ECG source: the agent's default input and its demo.

The stream follows a timeline of :class:`Segment` s (a heart rate, or ``None`` for asystole) and
loops over it. The default script shows a normal rhythm, a run of extreme tachycardia and a
5-second asystole within the first minute, so that ``bedside run`` with no configuration raises
alarms at the nurse station within one minute.

How the signal is made
----------------------
Each segment is generated with NeuroKit2's ``ecg_simulate(method="ecgsyn")``, the ECGSYN
dynamical model [1]_ (realistic P-QRS-T morphology; R waves about 1.1 mV above baseline; the
QT interval shortens with heart rate; 1 bpm of heart-rate variability). Segments are generated
lazily, one block of at most ``MAX_BLOCK_S`` seconds at a time (memory stays bounded however
long the script or the run), in a worker thread so that the event loop never waits on it.

Blocks are joined without a step: each block is cut at the flattest point of a T-P interval
(between 50 % and 70 % of an RR interval after an R peak; the slope in whole µV per sample,
the first of equal ones, so that the cut is the same on every machine), and a straight line
through its two cut points is subtracted, so every block starts and ends at 0 µV. A block
therefore ends within half an RR interval of its scripted end, and the error never accumulates
(each block aims at the scripted end time, not at a duration); the last block of a script
that does not loop is padded with baseline so that the stream ends exactly on time. Asystole is
no QRS at all, but not a flat line either: all segments get the same continuous baseline wander
(respiration and slow drift) and white noise of ``noise_uv`` µV RMS, as a real lead does.

Cost: ECGSYN integrates an ODE; at 250 Hz one minute of signal takes about 0.15 s of CPU at
70 bpm and 0.3 s at 175 bpm on a desktop x86 core (the default script: about 0.25 s per minute
of stream), which keeps the live agent cheap; ``method="simple"`` would be faster still but
gives a 7 mV wavelet with no P or T wave.

Why this transport imports NeuroKit2
------------------------------------
STYLE.md keeps NeuroKit out of ``transports/``: a transport must not pull the DSP stack into a
process that only moves bytes. The simulation source is the exception the design asks for
(DESIGN.md, "NeuroKit2 simulation"): it *is* NeuroKit's ``ecg_simulate``. The import is lazy,
inside the generating function, because importing ``neurokit2`` costs 2-3 s and about 200 MB;
a process that only replays records or talks to a BLE strap never pays it.

References
----------
.. [1] McSharry PE, Clifford GD, Tarassenko L, Smith LA. A dynamical model for generating
   synthetic electrocardiogram signals. IEEE Trans Biomed Eng 50(3):289-294 (2003).
   doi:10.1109/TBME.2003.808805
.. [2] Makowski D, Pham T, Lau ZJ, et al. NeuroKit2: A Python toolbox for neurophysiological
   signal processing. Behav Res Methods 53(4):1689-1696 (2021). doi:10.3758/s13428-020-01516-y

Length: one transport; the scripted patient, the ECGSYN generator and the pacing belong
together.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from scipy.signal import find_peaks

from firmware_bridge.errors import SourceError
from firmware_bridge.frames import DeviceEvent, DeviceEventKind, EcgChunk, Frame
from firmware_bridge.transports.clock import Clock, MonotonicClock, StreamPacer, validate_pacing

logger = logging.getLogger(__name__)

# Heart rates a segment may ask for. ECGSYN's morphology (and ecg_simulate's RR process) is
# meant for the adult physiological range; 20 bpm is below any alarm limit (extreme
# bradycardia is typically < 40 bpm), 250 bpm above any (extreme tachycardia > 140-150 bpm).
MIN_HR_BPM = 20.0
MAX_HR_BPM = 250.0

# Beat-to-beat variability passed to ECGSYN as heart_rate_std: 1 bpm, NeuroKit's default, gives
# a realistic, non-metronomic RR series without blurring the scripted rate.
HR_STD_BPM = 1.0

# Longest block generated at once. ECGSYN integrates a power-of-two number of seconds of RR
# series, so blocks of up to 28 s (plus the cutting margin) cost one 32-s integration.
MAX_BLOCK_S = 28.0

# Extra signal generated around a block so that there are cut points before and after it:
# ECGSYN starts on an R peak, the first cut is 0.5-0.7 RR after the second R peak, and the last
# cut may fall up to half an RR beyond the block's scripted end.
GEN_MARGIN_RR = 3.0
GEN_MARGIN_S = 0.5

# Where blocks are cut: at the flattest sample between 50 % and 70 % of the RR interval after
# an R peak. ECGSYN places the T wave at 100° * sqrt(HR/60) of the cycle and the P wave at
# -70° * sqrt(HR/60); this window lies in the isoelectric T-P segment from 40 to 250 bpm
# (measured: < 10 µV/sample slope at 250 Hz, 175 bpm; < 1 µV/sample at 72 bpm).
CUT_WINDOW_RR = (0.5, 0.7)

# R peaks of the clean ECGSYN signal (normalised to -0.4 .. 1.2 mV): above 60 % of its range and
# at least 60 % of an RR interval apart (HR_STD_BPM jitter is far smaller).
R_PEAK_HEIGHT_FRACTION = 0.6
R_PEAK_MIN_DISTANCE_RR = 0.6

# Continuous baseline wander added to every segment, asystole included: respiration (0.22 Hz,
# ~13 breaths/min) and slow electrode drift (0.05 Hz). Amplitudes in µV; real leads show tens
# to hundreds of µV of wander (Clifford, Azuaje, McSharry. Advanced Methods and Tools for ECG
# Data Analysis, Artech House 2006, ch. 3).
BASELINE_WANDER_HZ_UV: tuple[tuple[float, float], ...] = ((0.22, 30.0), (0.05, 15.0))


@dataclass(frozen=True, slots=True)
class Segment:
    """One part of a simulation script.

    Attributes
    ----------
    duration_s : float
        Length of the segment in seconds (> 0).
    hr_bpm : float | None
        Mean heart rate in beats per minute, ``MIN_HR_BPM`` to ``MAX_HR_BPM``; ``None`` is
        asystole: no QRS complexes, only baseline wander and noise.
    label : str | None
        Name of the scripted event this segment represents (e.g. ``"extreme_tachy"``), reported
        by :meth:`SimulatedSource.events`. An asystole segment without a label is labelled
        ``"asystole"``; other unlabelled segments are not events.

    Raises
    ------
    ValueError
        If ``duration_s`` is not positive or ``hr_bpm`` is outside the accepted range.
    """

    duration_s: float
    hr_bpm: float | None
    label: str | None = None

    def __post_init__(self) -> None:
        if not self.duration_s > 0:
            msg = f"segment duration_s must be > 0, got {self.duration_s}"
            raise ValueError(msg)
        if self.hr_bpm is not None and not MIN_HR_BPM <= self.hr_bpm <= MAX_HR_BPM:
            msg = (
                f"segment hr_bpm must be {MIN_HR_BPM:g}-{MAX_HR_BPM:g} bpm or None (asystole),"
                f" got {self.hr_bpm}"
            )
            raise ValueError(msg)

    @property
    def event_label(self) -> str | None:
        """The event this segment represents, or ``None`` for an unremarkable segment."""
        if self.label is not None:
            return self.label
        return "asystole" if self.hr_bpm is None else None


DEFAULT_SCRIPT: tuple[Segment, ...] = (
    Segment(20.0, 72.0),
    Segment(20.0, 175.0, "extreme_tachy"),  # a run of tachycardia well above any HR limit
    Segment(12.0, 72.0),
    Segment(5.0, None, "asystole"),  # 5 s without QRS: above the usual 4-s asystole delay
    Segment(25.0, 68.0),
)
"""The demo timeline (82 s, then it loops): alarms within the first minute."""


def ecgsyn_block_uv(
    n_samples: int, fs_hz: float, hr_bpm: float, random_state: int, *, exact_length: bool = False
) -> NDArray[np.float64]:
    """Generate about ``n_samples`` of ECGSYN ECG that start and end in a T-P interval at 0 µV.

    Parameters
    ----------
    n_samples : int
        Target length in samples at ``fs_hz``; the result is within half an RR interval of it,
        unless ``exact_length``.
    fs_hz : float
        Sampling rate in Hz.
    hr_bpm : float
        Mean heart rate in beats per minute.
    random_state : int
        Seed for ECGSYN's RR process.
    exact_length : bool
        Return exactly ``n_samples``: end at the last cut point that fits, and fill the rest
        (less than one RR interval) with the 0 µV baseline. Used for the last block of a script
        that does not loop, so that the stream ends on its scripted time.

    Returns
    -------
    NDArray[np.float64]
        Shape ``(n,)``, ECG in µV, with ``x[0] == 0`` and a last sample next to 0.

    Raises
    ------
    SourceError
        If ECGSYN produced fewer than two beats to cut at (never expected in the accepted range
        of rates).
    """
    import neurokit2 as nk  # lazy: 2-3 s and ~200 MB, see the module docstring

    rr_s = 60.0 / hr_bpm
    duration_s = n_samples / fs_hz + GEN_MARGIN_RR * rr_s + GEN_MARGIN_S
    ecg_mv = np.asarray(
        nk.ecg_simulate(
            duration=duration_s,
            sampling_rate=round(fs_hz),
            heart_rate=hr_bpm,
            heart_rate_std=HR_STD_BPM,
            method="ecgsyn",
            random_state=random_state,
            noise=0.0,
        ),
        dtype=np.float64,
    )
    lo_mv, hi_mv = float(ecg_mv.min()), float(ecg_mv.max())
    r_peak_idx, _ = find_peaks(
        ecg_mv,
        height=lo_mv + R_PEAK_HEIGHT_FRACTION * (hi_mv - lo_mv),
        distance=max(1, int(R_PEAK_MIN_DISTANCE_RR * rr_s * fs_hz)),
    )
    # the T-P interval is flat to a few µV per sample, so the raw minimum is a near-tie that
    # last-bit differences of the ODE's maths move between machines (x86-64 vs aarch64: a cut
    # one or more samples apart shifts the whole stream); whole µV break ties on the first
    slope_uv = np.round(np.abs(np.diff(ecg_mv)) * 1000.0)
    cuts: list[int] = []
    for r_idx, next_r_idx in itertools.pairwise(r_peak_idx):
        rr_samples = int(next_r_idx - r_idx)
        lo = int(r_idx) + int(CUT_WINDOW_RR[0] * rr_samples)
        hi = int(r_idx) + max(int(CUT_WINDOW_RR[1] * rr_samples), 1)
        cuts.append(lo + int(np.argmin(slope_uv[lo:hi])))
    if len(cuts) < 2:
        msg = f"ECGSYN produced {len(r_peak_idx)} beats at {hr_bpm:g} bpm; cannot cut a block"
        raise SourceError(msg)
    start = cuts[0]
    if exact_length:
        fitting = [cut for cut in cuts[1:] if cut - start <= n_samples]
        end = fitting[-1] if fitting else start
    else:
        end = min(cuts[1:], key=lambda cut: abs(cut - start - n_samples))
    ramp = np.arange(end - start) / max(end - start, 1)
    body_mv = ecg_mv[start:end] - (ecg_mv[start] + (ecg_mv[end] - ecg_mv[start]) * ramp)
    body_uv = np.asarray(body_mv * 1000.0, dtype=np.float64)
    if exact_length:
        body_uv = np.concatenate([body_uv, np.zeros(n_samples - len(body_uv))])
    return body_uv


@dataclass(frozen=True, slots=True)
class _Block:
    """A piece of one segment to generate: its script position and scripted end."""

    loop_idx: int
    segment_idx: int
    block_idx: int
    hr_bpm: float | None
    end_sample_idx: int  # scripted end, in stream samples from the start of the stream
    is_last: bool  # the last block of a script that does not loop: must end on time


class SimulatedSource:
    """Stream a scripted synthetic ECG as :class:`~firmware_bridge.frames.EcgChunk` frames.

    Parameters
    ----------
    fs_hz : float
        Sampling rate in Hz (an integer rate; ECGSYN is run at it directly).
    speed : float | None
        Multiple of real time (1.0 = live); ``None`` = as fast as possible, still yielding to the
        event loop between chunks.
    chunk_s : float
        Chunk length in seconds; chunks hold ``round(chunk_s * fs_hz)`` samples.
    script : Sequence[Segment]
        The timeline; :data:`DEFAULT_SCRIPT` by default.
    loop : bool
        Repeat the script forever (the default, for the demo); otherwise end with one
        ``END_OF_STREAM`` event. Later loops use new seeds (new beat-to-beat variability,
        same scripted rates).
    seed : int
        Seed for everything random: the same seed gives the same stream, sample for sample.
    noise_uv : float
        RMS of the white measurement noise added everywhere, in µV (≥ 0).
    start_utc : datetime | None
        Timezone-aware wall-clock time of the first sample; ``None`` = when the first frame is
        emitted.
    clock : Clock | None
        Time source for pacing; ``None`` = the real monotonic clock.

    Raises
    ------
    ValueError
        If ``fs_hz`` is not a positive integer rate, ``speed``/``chunk_s`` is not positive,
        ``noise_uv`` is negative, the script is empty, or ``start_utc`` is naive.

    References
    ----------
    .. [1] McSharry PE et al. (2003) doi:10.1109/TBME.2003.808805 (ECGSYN).
    .. [2] Makowski D et al. (2021) doi:10.3758/s13428-020-01516-y (NeuroKit2).
    """

    def __init__(
        self,
        *,
        fs_hz: float = 250.0,
        speed: float | None = 1.0,
        chunk_s: float = 0.25,
        script: Sequence[Segment] = DEFAULT_SCRIPT,
        loop: bool = True,
        seed: int = 42,
        noise_uv: float = 20.0,
        start_utc: datetime | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not fs_hz > 0 or fs_hz != round(fs_hz):
            msg = f"fs_hz must be a positive integer rate, got {fs_hz}"
            raise ValueError(msg)
        validate_pacing(speed, chunk_s)
        if not noise_uv >= 0:
            msg = f"noise_uv must be >= 0, got {noise_uv}"
            raise ValueError(msg)
        if len(script) == 0:
            msg = "script must have at least one segment"
            raise ValueError(msg)
        if start_utc is not None and start_utc.utcoffset() is None:
            msg = "start_utc must be timezone-aware (e.g. datetime.now(UTC))"
            raise ValueError(msg)
        self._fs_hz = float(fs_hz)
        self._speed = speed
        self._chunk_len = max(1, round(chunk_s * self._fs_hz))
        self._script = tuple(script)
        self._loop = loop
        self._seed = seed
        self._noise_uv = noise_uv
        self._start_utc = start_utc
        self._clock: Clock = clock if clock is not None else MonotonicClock()

    # -- properties ---------------------------------------------------------------------------

    @property
    def fs_hz(self) -> float:
        """Sampling rate in Hz."""
        return self._fs_hz

    @property
    def script(self) -> tuple[Segment, ...]:
        """The timeline."""
        return self._script

    @property
    def loop_duration_s(self) -> float:
        """Scripted duration of one pass through the script, in seconds."""
        return sum(segment.duration_s for segment in self._script)

    def counters(self) -> dict[str, int]:
        """Return no counters: a recording or a simulation has nothing to count."""
        return {}

    def describe(self) -> str:
        """Return e.g. ``"simulate:ecgsyn 250Hz x1 5 segments/82s loop seed=42"``."""
        speed = "xmax" if self._speed is None else f"x{self._speed:g}"
        loop = " loop" if self._loop else ""
        return (
            f"simulate:ecgsyn {self._fs_hz:g}Hz {speed} {len(self._script)} segments/"
            f"{self.loop_duration_s:g}s{loop} seed={self._seed}"
        )

    def events(self) -> list[tuple[float, float, str]]:
        """Return the scripted events of the first pass.

        Returns
        -------
        list[tuple[float, float, str]]
            ``(start_s, end_s, label)`` for every segment with an event label, in stream
            seconds. These are the scripted times; the generated boundaries lie within half an
            RR interval of them (blocks are cut in a T-P interval). Later passes repeat them
            every :attr:`loop_duration_s` seconds.
        """
        events: list[tuple[float, float, str]] = []
        t_s = 0.0
        for segment in self._script:
            label = segment.event_label
            if label is not None:
                events.append((t_s, t_s + segment.duration_s, label))
            t_s += segment.duration_s
        return events

    # -- generation ---------------------------------------------------------------------------

    def _blocks(self) -> Iterator[_Block]:
        """Yield the blocks to generate, in stream order (forever when looping)."""
        loop_idx = 0
        t_end_s = 0.0
        while True:
            for segment_idx, segment in enumerate(self._script):
                n_blocks = max(1, math.ceil(segment.duration_s / MAX_BLOCK_S))
                t_start_s = t_end_s
                for block_idx in range(n_blocks):
                    t_end_s = t_start_s + segment.duration_s * (block_idx + 1) / n_blocks
                    is_last = (
                        not self._loop
                        and segment_idx == len(self._script) - 1
                        and block_idx == n_blocks - 1
                    )
                    yield _Block(
                        loop_idx=loop_idx,
                        segment_idx=segment_idx,
                        block_idx=block_idx,
                        hr_bpm=segment.hr_bpm,
                        end_sample_idx=round(t_end_s * self._fs_hz),
                        is_last=is_last,
                    )
                t_end_s = t_start_s + segment.duration_s
            if not self._loop:
                return
            loop_idx += 1

    def _render(self, block: _Block, first_sample_idx: int) -> NDArray[np.float32]:
        """Generate one block (ECG or asystole, plus wander and noise), in µV, float32."""
        n_target = max(1, block.end_sample_idx - first_sample_idx)
        if block.hr_bpm is None:
            ecg_uv = np.zeros(n_target)
        else:
            # A distinct, reproducible ECGSYN seed per block of the whole (looping) stream.
            block_serial = (
                block.loop_idx * len(self._script) + block.segment_idx
            ) * 1_000 + block.block_idx
            ecg_uv = ecgsyn_block_uv(
                n_target,
                self._fs_hz,
                block.hr_bpm,
                self._seed + block_serial,
                exact_length=block.is_last,
            )
        t_s = (first_sample_idx + np.arange(len(ecg_uv))) / self._fs_hz
        for freq_hz, amplitude_uv in BASELINE_WANDER_HZ_UV:
            ecg_uv += amplitude_uv * np.sin(2.0 * np.pi * freq_hz * t_s)
        if self._noise_uv > 0:
            rng = np.random.default_rng(
                [self._seed, block.loop_idx, block.segment_idx, block.block_idx]
            )
            ecg_uv += rng.normal(0.0, self._noise_uv, len(ecg_uv))
        return ecg_uv.astype(np.float32)

    # -- streaming ----------------------------------------------------------------------------

    async def frames(self) -> AsyncIterator[Frame]:
        """Yield the scripted ECG as contiguous :class:`EcgChunk` frames.

        Each call starts a new, identical stream (same seed).

        Yields
        ------
        EcgChunk
            ``samples_uv`` float32 µV of shape ``(round(chunk_s * fs_hz),)`` (the last chunk of
            a non-looping script may be shorter), ``first_sample_idx`` counted at ``fs_hz``
            from 0 across loops (``source_sample_idx`` is the same, ``source_fs_hz ==
            fs_hz``), ``t0_monotonic_ns`` the emission time, ``t0_utc`` ``start_utc`` plus
            the stream time.
        DeviceEvent
            One ``END_OF_STREAM`` after the last chunk, only when ``loop`` is false.
        """
        pacer = StreamPacer(fs_hz=self._fs_hz, speed=self._speed, clock=self._clock)
        start_utc = self._start_utc
        blocks = self._blocks()
        pending_uv = np.empty(0, dtype=np.float32)
        stream_idx = 0
        exhausted = False
        while True:
            while len(pending_uv) < self._chunk_len and not exhausted:
                block = next(blocks, None)
                if block is None:
                    exhausted = True
                    break
                block_uv = await asyncio.to_thread(
                    self._render, block, stream_idx + len(pending_uv)
                )
                pending_uv = np.concatenate([pending_uv, block_uv])
            if len(pending_uv) == 0:
                break
            chunk_uv, pending_uv = pending_uv[: self._chunk_len], pending_uv[self._chunk_len :]
            t0_ns = await pacer.wait_for_sample(stream_idx)
            if start_utc is None:
                start_utc = datetime.now(UTC)
            yield EcgChunk(
                samples_uv=chunk_uv.copy(),
                fs_hz=self._fs_hz,
                first_sample_idx=stream_idx,
                t0_monotonic_ns=t0_ns,
                t0_utc=start_utc + timedelta(seconds=stream_idx / self._fs_hz),
                source_sample_idx=stream_idx,
                source_fs_hz=self._fs_hz,
            )
            stream_idx += len(chunk_uv)
        t_end_ns = await pacer.wait_for_sample(stream_idx)
        yield DeviceEvent(
            kind=DeviceEventKind.END_OF_STREAM,
            t_s=stream_idx / self._fs_hz,
            t0_monotonic_ns=t_end_ns,
            detail=f"{self.describe()} ended after {stream_idx} samples",
        )
