"""The pipeline core that the live agent and ``bedside analyze`` share.

One :class:`EcgPipeline` per stream: chunks of ECG go in, detected beats and alarm events come
out. It is synchronous and does no I/O, so the live agent runs it off the event loop
(``asyncio.to_thread``) and offline analysis calls it directly: offline numbers *are* the
live agent's numbers (DESIGN.md, "Data flow").

Ordering: the R-peak detector commits beats up to ``committed_until_idx``, a little behind
the newest sample. Beats and flat-line changes are applied to the alarm rules in stream-time
order up to that point, and time-driven conditions (asystole, pause) are judged just before
each beat and at the committed time, so an alarm's ``onset_s`` is exact to the sample and
does not depend on chunk sizes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import numpy as np
from numpy.typing import NDArray

from agent.alarms.engine import AlarmEngine
from agent.alarms.rules import EcgRules, ecg_condition_specs
from agent.beats import Beat
from agent.config import AgentConfig
from agent.dsp.flatline import FlatlineChange, FlatlineDetector
from agent.dsp.quality import QualityChange, SignalQualityMonitor
from agent.dsp.rpeaks import RPeak, StreamingRPeakDetector
from agent.messages import AlarmCode, AlarmEvent, EcgStrip, VitalsMessage, utc_now

logger = logging.getLogger(__name__)

RING_S: Final = 40.0
"""ECG kept for evidence strips, s: the strip (<= 30 s) plus the detector's commit lag."""

_JUST_BEFORE_S: Final = 1e-6

MAX_PLAUSIBLE_UV: Final = 50_000.0
"""Samples beyond ±50 mV are not ECG (surface ECG is a few mV; clinical front ends clip
at ±5-10 mV): they are treated as invalid (NaN, i.e. lead-off) and counted."""


@dataclass(frozen=True, slots=True)
class StepOutput:
    """What one call to the pipeline produced.

    Attributes
    ----------
    beats : list[Beat]
        Newly committed beats, in order.
    events : list[AlarmEvent]
        Alarm events to publish, in order.
    committed_s : float
        Stream time up to which everything has been decided, s.
    """

    beats: list[Beat] = field(default_factory=list)
    events: list[AlarmEvent] = field(default_factory=list)
    committed_s: float = 0.0


class _Ring:
    """The last ``capacity`` samples of the stream, for ECG strips."""

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
        else:
            self._buf = np.roll(self._buf, -n)
            self._buf[-n:] = samples
        self._end += n

    def window(self, start_idx: int, stop_idx: int) -> tuple[int, NDArray[np.float32]]:
        first = max(start_idx, self._end - len(self._buf), 0)
        stop = min(stop_idx, self._end)
        if stop <= first:
            return first, np.empty(0, dtype=np.float32)
        off = len(self._buf) - self._end
        return first, self._buf[first + off : stop + off]


class EcgPipeline:
    """Conditioner → R-peaks → alarm rules → alarm engine for one ECG stream.

    Parameters
    ----------
    cfg
        The agent configuration (DSP and alarm sections are used).
    fs_hz
        Sampling rate of the samples that will be pushed, Hz.
    stream_start_utc
        Wall-clock time of stream sample 0 (maps ``onset_s`` to ``onset_utc``).
    model_versions
        Name → version of the models that decide, copied into every alarm.
    """

    def __init__(
        self,
        cfg: AgentConfig,
        fs_hz: float,
        *,
        stream_start_utc: datetime | None = None,
        model_versions: dict[str, str] | None = None,
    ) -> None:
        self.cfg = cfg
        self.fs_hz = fs_hz
        self._detector = StreamingRPeakDetector(
            fs_hz, cfg.dsp.powerline_hz, window_s=cfg.dsp.window_s, hop_s=cfg.dsp.hop_s
        )
        self._flat = FlatlineDetector(
            fs_hz, ptp_uv=cfg.dsp.flatline_ptp_uv, min_s=cfg.dsp.flatline_s
        )
        self._quality = SignalQualityMonitor(fs_hz)
        self._ring = _Ring(round(RING_S * fs_hz))
        self.rules = EcgRules(cfg.alarms, strip=self._strip)
        self.engine = AlarmEngine(
            ecg_condition_specs(cfg.alarms),
            device_id=cfg.bed.device_id,
            stream_start_utc=stream_start_utc or utc_now(),
            clear_delay_s=cfg.alarms.clear_delay_s,
            model_versions=dict(model_versions or {}),
        )
        self._pending: list[FlatlineChange | QualityChange] = []
        self._prev_beat_s: float | None = None
        self.samples_in = 0
        self.samples_implausible = 0
        """Samples rejected by the plausibility gate (non-finite or beyond ±50 mV)."""
        self.beats_total = 0
        self.committed_s = 0.0

    def process(self, samples_uv: NDArray[np.float32]) -> StepOutput:
        """Push a chunk of ECG; return the beats and alarm events it completed.

        Parameters
        ----------
        samples_uv
            Shape ``(n_samples,)``, float32 ECG in µV at ``fs_hz``, contiguous with the
            previous chunk; NaN marks invalid samples.
        """
        samples = np.asarray(samples_uv, dtype=np.float32)
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(samples) <= MAX_PLAUSIBLE_UV) & ~np.isnan(samples)
        if bad.any():
            samples = np.where(bad, np.float32(np.nan), samples)
            self.samples_implausible += int(bad.sum())
        self._ring.push(samples)
        self.samples_in += len(samples)
        self._pending.extend(self._flat.push(samples))
        self._pending.extend(self._quality.push(samples))
        step = self._detector.push(samples)
        return self._advance(step.r_peaks, step.committed_until_idx)

    def finish(self) -> StepOutput:
        """End of stream: commit what is left, then clear every active alarm."""
        step = self._detector.flush()
        out = self._advance(step.r_peaks, max(step.committed_until_idx, self.samples_in))
        out.events.extend(self.engine.clear_all(self.committed_s))
        return out

    def acknowledge(self, alarm_id: str) -> list[AlarmEvent]:
        """Apply a nurse-station acknowledgement; return the events to publish."""
        return self.engine.acknowledge(alarm_id, self.committed_s)

    def vitals(self, device_id: str, ts_utc: datetime) -> VitalsMessage:
        """Return the current vitals (HR per IEC averaging, last RR, leads-off, alarms)."""
        asystole = self.engine.is_active(AlarmCode.ASYSTOLE)
        hr = 0.0 if asystole else self.rules.hr_bpm
        rr = self.rules.rr_ms
        return VitalsMessage(
            device_id=device_id,
            ts_utc=ts_utc,
            t_s=round(self.committed_s, 3),
            hr_bpm=None if hr is None else round(hr, 1),
            rr_ms=round(rr[-1], 1) if rr else None,
            beats_total=self.beats_total,
            signal_quality=None if self._quality.sqi is None else round(self._quality.sqi, 3),
            leads_off=self.rules.leads_off,
            active_alarms=[e.condition for e in self.engine.active],
        )

    # -- internals ---------------------------------------------------------------------------

    def _advance(self, r_peaks: tuple[RPeak, ...], committed_idx: int) -> StepOutput:
        fs = self.fs_hz
        committed_s = committed_idx / fs
        timeline: list[tuple[float, int, RPeak | FlatlineChange | QualityChange]] = []
        for peak in r_peaks:
            timeline.append((peak.r_peak_idx / fs, 1, peak))
        keep: list[FlatlineChange | QualityChange] = []
        for change in self._pending:
            t = change.onset_idx / fs
            if t <= committed_s:
                timeline.append((t, 0, change))
            else:
                keep.append(change)
        self._pending = keep
        timeline.sort(key=lambda item: (item[0], item[1]))
        out = StepOutput()
        for t, _, item in timeline:
            if isinstance(item, FlatlineChange | QualityChange):
                if isinstance(item, FlatlineChange):
                    self.rules.set_leads_off(item.flat, t)
                    unusable = item.flat
                else:
                    self.rules.set_signal_poor(item.poor, t)
                    unusable = item.poor
                if unusable:
                    self._prev_beat_s = None
                out.events.extend(self.engine.update(t, self.rules.findings(t)))
                continue
            # a beat: judge the open interval just before it, then add it
            before = t - _JUST_BEFORE_S
            out.events.extend(self.engine.update(before, self.rules.findings(before)))
            beat = self._beat(item, t)
            self.rules.add_beat(beat)
            out.beats.append(beat)
            out.events.extend(self.engine.update(t, self.rules.findings(t)))
        if committed_s > self.committed_s:
            self.committed_s = committed_s
        out.events.extend(
            self.engine.update(self.committed_s, self.rules.findings(self.committed_s))
        )
        self.beats_total += len(out.beats)
        return StepOutput(out.beats, out.events, self.committed_s)

    def _beat(self, peak: RPeak, t_s: float) -> Beat:
        rr = None if self._prev_beat_s is None else (t_s - self._prev_beat_s) * 1000.0
        self._prev_beat_s = t_s
        return Beat(
            r_peak_idx=peak.r_peak_idx,
            r_peak_time_s=t_s,
            rr_ms=rr,
            amplitude_uv=peak.amplitude_uv,
        )

    def _strip(self, end_s: float, duration_s: float) -> EcgStrip | None:
        fs = self.fs_hz
        stop = round(end_s * fs)
        first, samples = self._ring.window(stop - round(duration_s * fs), stop)
        if len(samples) == 0:
            return None
        clean = np.nan_to_num(samples, nan=0.0)
        return EcgStrip(
            fs_hz=fs,
            t0_s=round(first / fs, 4),
            samples_uv=[int(v) for v in np.rint(clean)],
        )
