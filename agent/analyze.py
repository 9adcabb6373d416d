"""``bedside analyze``: the live agent's core and driver over recordings, as fast as the CPU allows.

For each record it writes ``OUT/<record name>/`` (DESIGN.md, "Offline analysis output"):

- ``beats.csv``: ``sample,time_s,aami_class,confidence,template_corr``; ``sample`` is the
  R-peak index at the *record's own* sampling rate even when ``--fs`` resamples;
  ``aami_class``, ``confidence`` and ``template_corr`` (the beat's match with the patient's
  dominant-beat template, ``inference.dominant_template``) are empty
  until a beat classifier is configured;
- ``rhythm.csv``: ``start_s,end_s,rhythm`` with PhysioNet rhythm codes. Without a rhythm model
  the agent distinguishes ``ASYS`` (no QRS for at least the asystole limit), ``NOISE`` (flat,
  stuck or invalid signal), ``SBR`` (averaged HR below 60 bpm) and ``N`` (none of these; it does
  *not* assert sinus rhythm);
- ``alarms.jsonl``: every alarm event the live agent would have published, one JSON object a
  line, with ``onset_s`` (onset of the condition) and ``raised_s`` (when the agent raised it)
  in seconds from the start of the record;
- ``<record name>.bedside``: the same beats as a WFDB annotation file
  (:func:`agent.batch.write_beat_annotations`).

With ``ack_after_s`` (``bedside analyze --ack-after S``) a simulated nurse acknowledges every
*latched* alarm (``vfib``, ``vtach``) ``S`` seconds of stream time after it was raised, through
the core's public :meth:`~agent.core.monitor.MonitorCore.acknowledge`, as the nurse station's
``alarms/ack`` message would: the alarm then clears once its condition is gone, so a later
episode of the same condition raises its own alarm. Without it (the default, as before) a
latched alarm stays active to the end of the record and hides every later episode.

Many records, in parallel worker processes, with progress and a summary: :mod:`agent.batch`.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from agent.beats import Beat
from agent.config import AgentConfig
from agent.core.driver import CoreDriver
from agent.core.monitor import MonitorCore, StepOutput
from agent.core.timing import StageTimes, timed
from agent.dsp.heart_rate import hr_bpm_monitor
from agent.inference.bundle import ModelBundle
from agent.messages import AlarmCode, AlarmEvent, AlarmLifecycle
from agent.runtime import check_ecg_rate
from firmware_bridge.frames import EcgChunk
from firmware_bridge.transports.replay import WfdbReplaySource
from firmware_bridge.transports.rr_replay import RrReplaySource

logger = logging.getLogger(__name__)

ANALYZE_CHUNK_S: Final = 30.0
"""Chunk size offline, s (``agent.core.frontends.MAX_STEP_S``, the longest the core steps at
once); results do not depend on it (``tests/agent/core/test_chunk_invariance.py``, and
``python -m tools.golden check``: its 71 waveform records the same in 5 s chunks, session 23). 30 s
chunks cost 6-24 % less analysis CPU than the 5 s ones used before (``docs/benchmarks.md``).
With ``ack_after_s`` the chunks are no longer than that (and at least
``ACK_MIN_CHUNK_S``): an alarm raised in a chunk then falls due after its end, and the
acknowledgement lands on its own sample (:meth:`_Nurse.split`)."""

ACK_MIN_CHUNK_S: Final = 5.0
"""Shortest chunk with ``ack_after_s``, s: an acknowledgement due sooner than this after its
alarm is given at the end of the chunk the alarm was raised in (at most 5 s late)."""

SBR_BPM: Final = 60.0
"""Sinus bradycardia threshold for ``SBR`` segments (AHA/ACC/HRS 2018 bradycardia guideline)."""

RHYTHM_MIN_S: Final = 10.0
"""An ``N``/``SBR`` change must persist this long to start a new segment (no beat-to-beat
flicker around 60 bpm; a monitor's rhythm label changes on a similar time scale)."""


@dataclass(slots=True)
class RecordResult:
    """Everything found in one record.

    Attributes
    ----------
    record : str
        Record name (base name of the WFDB record).
    fs_hz : float
        Rate the pipeline ran at, Hz.
    source_fs_hz : float
        The record's own rate, Hz.
    duration_s : float
        Record duration, s.
    beats : list[Beat]
        Detected beats (indices at ``fs_hz``).
    events : list[AlarmEvent]
        Alarm events in publication order.
    leads_off : list[tuple[float, float]]
        ``(start_s, end_s)`` of flat/stuck/invalid stretches.
    episodes : dict[str, list[tuple[float, float]]]
        Rhythm code (``AFIB``, ``VF``) → ``(start_s, end_s)`` episodes the detectors found.
    cpu_s : float
        CPU time spent on the record (process time), s.
    lead_reversed : list[tuple[float, float]]
        ``(start_s, end_s)`` where the ECG lead looked reversed (QRS and T wave upside down:
        :class:`agent.inference.beat_features.LeadPolarityMonitor`); a warning names the
        record when it is not empty.
    """

    record: str
    fs_hz: float
    source_fs_hz: float
    duration_s: float
    beats: list[Beat] = field(default_factory=list)
    events: list[AlarmEvent] = field(default_factory=list)
    leads_off: list[tuple[float, float]] = field(default_factory=list)
    episodes: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    cpu_s: float = 0.0
    lead_reversed: list[tuple[float, float]] = field(default_factory=list)

    def source_samples(self) -> list[int]:
        """R-peak indices at the record's own sampling rate."""
        ratio = self.source_fs_hz / self.fs_hz
        return [round(b.r_peak_idx * ratio) for b in self.beats]


async def analyze_record(
    record: str | Path,
    cfg: AgentConfig,
    models: ModelBundle,
    *,
    channel: int = 0,
    fs_hz: float | None = None,
    rr_annotations: str | None = None,
    stage_times: StageTimes | None = None,
    ack_after_s: float | None = None,
    chunk_s: float | None = None,
) -> RecordResult:
    """Run the core over one WFDB record, as fast as possible, with the live agent's driver.

    Parameters
    ----------
    record
        WFDB record path without extension (e.g. ``../shared/data/mitdb/100``).
    cfg
        Agent configuration (DSP and alarm settings).
    models
        The loaded models (:func:`agent.inference.bundle.load_models`), shared by every
        record of a run.
    channel
        Signal channel to analyse.
    fs_hz
        Resample to this rate first (e.g. 130 Hz, a Polar H10), or None for the record's.
    rr_annotations
        RR-only input: read the record's beats from this WFDB annotation file (``qrs``) and
        feed only their RR intervals, as a Heart Rate Service strap would. A ``*.csv``
        ``record`` is always RR-only (RR intervals in ms).
    stage_times
        When given, the CPU time of reading (``read_resample``) and of each stage of the core
        is added to it (``tools.bench``).
    ack_after_s
        Acknowledge every latched alarm this many seconds (stream time) after it was raised
        (see the module docstring), or None (default) never to acknowledge.
    chunk_s
        Read a waveform record in chunks of this many seconds (> 0), or None for
        ``ANALYZE_CHUNK_S``; no longer than ``ack_after_s`` either way
        (:func:`analysis_chunk_s`). The outputs do not depend on it: it is there to check
        that (``python -m tools.golden check --chunk-s 5``).

    Raises
    ------
    ValueError
        If ``ack_after_s`` is not a finite number >= 0, or ``chunk_s`` not one > 0.
    RecordNotFoundError
        If the record header (or annotation / CSV file) does not exist.
    RecordReadError
        If the signal is truncated, unreadable, or has no such channel.
    """
    if ack_after_s is not None and not (math.isfinite(ack_after_s) and ack_after_s >= 0.0):
        msg = f"ack_after_s must be a finite number of seconds >= 0, got {ack_after_s!r}"
        raise ValueError(msg)
    if chunk_s is not None and not (math.isfinite(chunk_s) and chunk_s > 0.0):
        msg = f"chunk_s must be a finite number of seconds > 0, got {chunk_s!r}"
        raise ValueError(msg)
    cpu0 = time.process_time()
    source: WfdbReplaySource | RrReplaySource
    if rr_annotations is not None or str(record).endswith(".csv"):
        source = RrReplaySource(record, annotations=rr_annotations, speed=None, frame_s=1.0)
        source_fs_hz = source.fs_hz
    else:
        source = timed(
            stage_times,
            "read_resample",
            WfdbReplaySource,
            record,
            channel=channel,
            speed=None,
            fs_hz=fs_hz,
            chunk_s=analysis_chunk_s(ack_after_s, chunk_s),
        )
        source_fs_hz = source.source_fs_hz
        check_ecg_rate(source.fs_hz)  # outside 100-1000 Hz: one line, not a failure per beat
    result = RecordResult(
        record=source.record_name,
        fs_hz=source.fs_hz,
        source_fs_hz=source_fs_hz,
        duration_s=source.duration_s,
    )

    nurse = None if ack_after_s is None else _Nurse(ack_after_s)

    def collect(out: StepOutput, arrival_ns: int) -> None:
        result.beats.extend(out.beats)
        result.events.extend(out.events)
        if nurse is not None:
            nurse.watch(out.events)

    driver = CoreDriver(cfg, models, collect, rr_fs_hz=source.fs_hz, stage_times=stage_times)
    try:
        async for frame in source.frames():
            while nurse is not None and driver.core is not None and isinstance(frame, EcgChunk):
                head, rest = nurse.split(frame)  # so the acknowledgement lands on its sample
                if rest is None:
                    break
                await driver.feed(head)
                result.events.extend(await nurse.acknowledge_due(driver, driver.core))
                frame = rest
            await driver.feed(frame)
            if nurse is not None and driver.core is not None:
                result.events.extend(await nurse.acknowledge_due(driver, driver.core))
    except BaseException:
        driver.close()  # a record that fails mid-way does not leave the core's thread behind
        raise
    await driver.finish()
    if driver.pipeline_errors:
        logger.warning("%s: %d frame(s) failed", result.record, driver.pipeline_errors)
    result.leads_off = _leads_off_episodes(result.events, result.duration_s)
    if driver.core is not None:
        result.episodes = driver.core.rhythm_episodes()
        result.lead_reversed = driver.core.lead_reversed_episodes()
    if result.lead_reversed:
        share = sum(b - a for a, b in result.lead_reversed) / max(result.duration_s, 1e-9)
        logger.warning(
            "%s: the ECG lead looked reversed (QRS and T wave upside down) for %.0f %% of the"
            " record, from %.0f s; beat labels suffer on a reversed lead: if it is one, analyse"
            " it again with [dsp] invert_ecg = true",
            result.record,
            100.0 * share,
            result.lead_reversed[0][0],
        )
    result.cpu_s = time.process_time() - cpu0
    return result


def analyze_record_blocking(
    record: str | Path,
    cfg: AgentConfig,
    models: ModelBundle,
    *,
    channel: int = 0,
    fs_hz: float | None = None,
    rr_annotations: str | None = None,
    stage_times: StageTimes | None = None,
    ack_after_s: float | None = None,
    chunk_s: float | None = None,
) -> RecordResult:
    """:func:`analyze_record` from synchronous code, in an event loop of its own.

    Arguments, result and errors are those of :func:`analyze_record`. Why not simply
    ``asyncio.run(analyze_record(...))``: on leaving, ``asyncio.run`` in the main thread puts
    back the SIGINT handler it replaced, and ``signal.signal`` (CPython 3.11) tries to read
    the handler it returns, a partial holding the finished task, as a ``signal.Handlers``
    member; the failed lookup formats the ``repr`` of that task, and so of its result: every
    beat and event of the record (2 MB of text for mitdb 208, about 0.1 s of CPU per record).
    Here the task returns nothing and the result comes back beside it.
    """
    out: list[RecordResult] = []

    async def _analyze() -> None:
        out.append(
            await analyze_record(
                record,
                cfg,
                models,
                channel=channel,
                fs_hz=fs_hz,
                rr_annotations=rr_annotations,
                stage_times=stage_times,
                ack_after_s=ack_after_s,
                chunk_s=chunk_s,
            )
        )

    asyncio.run(_analyze())
    return out[0]


def analysis_chunk_s(ack_after_s: float | None, chunk_s: float | None = None) -> float:
    """Chunk length for an analysis, s: ``chunk_s`` (or ``ANALYZE_CHUNK_S``), capped.

    ``min(chunk, max(ack_after_s, ACK_MIN_CHUNK_S))``: an alarm is raised inside a chunk,
    and its acknowledgement, due ``ack_after_s`` later, then falls in a later chunk, which
    :class:`_Nurse` cuts on the due sample.
    """
    chunk = ANALYZE_CHUNK_S if chunk_s is None else chunk_s
    if ack_after_s is None:
        return chunk
    return min(chunk, max(ack_after_s, ACK_MIN_CHUNK_S))


class _Nurse:
    """Acknowledges latched alarms ``ack_after_s`` of stream time after they were raised."""

    def __init__(self, ack_after_s: float) -> None:
        self.ack_after_s = ack_after_s
        self._due: dict[str, float] = {}  # alarm_id -> stream time of the acknowledgement

    def watch(self, events: Sequence[AlarmEvent]) -> None:
        """Note the latched alarms raised (and forget those cleared) in ``events``."""
        for ev in events:
            if ev.lifecycle is AlarmLifecycle.RAISED and ev.latched:
                self._due[ev.alarm_id] = ev.raised_s + self.ack_after_s
            elif ev.lifecycle is AlarmLifecycle.CLEARED:
                self._due.pop(ev.alarm_id, None)

    def split(self, chunk: EcgChunk) -> tuple[EcgChunk, EcgChunk | None]:
        """Cut ``chunk`` where the next acknowledgement falls due inside it.

        Returns ``(chunk, None)`` when none falls due inside it; otherwise the part up to the
        first sample at or after the due time and the rest, so the acknowledgement is given on
        that sample whatever the chunk size (as a nurse at the bedside would, between two
        samples, not at the end of an analysis chunk).
        """
        if not self._due:
            return chunk, None
        n = len(chunk.samples_uv)
        k = math.ceil(min(self._due.values()) * chunk.fs_hz - 1e-9) - chunk.first_sample_idx
        if not 0 < k < n:
            return chunk, None
        return chunk.split(k)

    async def acknowledge_due(self, driver: CoreDriver, core: MonitorCore) -> list[AlarmEvent]:
        """Acknowledge, through the core, every alarm whose time has come on the stream clock."""
        now_s = core.clock_s()
        events: list[AlarmEvent] = []
        for alarm_id, due_s in list(self._due.items()):
            if due_s <= now_s:
                del self._due[alarm_id]
                out = await driver.call(core.acknowledge, alarm_id)
                self.watch(out)
                events.extend(out)
        return events


def _leads_off_episodes(events: Sequence[AlarmEvent], end_s: float) -> list[tuple[float, float]]:
    episodes: list[tuple[float, float]] = []
    for ev in events:
        if ev.condition is AlarmCode.LEADS_OFF and ev.lifecycle is AlarmLifecycle.CLEARED:
            episodes.append((ev.onset_s, ev.cleared_s if ev.cleared_s is not None else end_s))
    return episodes


def rhythm_segments(
    beats: Sequence[Beat],
    leads_off: Sequence[tuple[float, float]],
    *,
    asystole_s: float,
    duration_s: float,
    episodes: dict[str, list[tuple[float, float]]] | None = None,
) -> list[tuple[float, float, str]]:
    """Label the record's timeline with PhysioNet rhythm codes (see module docstring).

    Parameters
    ----------
    beats
        Detected beats in order.
    leads_off
        ``(start_s, end_s)`` stretches of unusable signal.
    asystole_s
        Gaps between beats at least this long (s) are ``ASYS``.
    duration_s
        Record duration, s.
    episodes
        Rhythm episodes from the detectors (``AFIB`` from the RR model, ``VT`` from the
        ventricular decision, ``VF`` from the waveform detector), laid over the HR-based
        labels in that order; ``NOISE`` is laid last.

    Returns
    -------
    list[tuple[float, float, str]]
        ``(start_s, end_s, rhythm)``, contiguous, merged where equal.
    """
    labels: list[tuple[float, float, str]] = []
    rr: list[float] = []
    prev_t = 0.0
    current = "N"  # the HR-based label in force (N or SBR)
    candidate: tuple[str, float] | None = None  # a different label and when it began
    for beat in beats:
        t = beat.r_peak_time_s
        if beat.rr_ms is not None:
            rr.append(beat.rr_ms)
        hr = hr_bpm_monitor(rr[-12:])
        wanted = "SBR" if hr is not None and hr < SBR_BPM else "N"
        if wanted == current:
            candidate = None
        elif candidate is None or candidate[0] != wanted:
            candidate = (wanted, prev_t)
        elif t - candidate[1] >= RHYTHM_MIN_S:
            # the change held long enough: relabel from where it began
            labels = [
                (a, b, wanted if a >= candidate[1] and lab != "ASYS" else lab)
                for a, b, lab in labels
            ]
            current, candidate = wanted, None
        labels.append((prev_t, t, "ASYS" if t - prev_t >= asystole_s else current))
        prev_t = t
    if duration_s > prev_t:
        tail = "ASYS" if duration_s - prev_t >= asystole_s else current
        labels.append((prev_t, duration_s, tail))
    for code in ("AFIB", "VT", "VF"):  # VF last: it wins where a VT episode overlaps it
        for start, end in (episodes or {}).get(code, []):
            labels = _overlay(labels, start, end, code)
    for start, end in leads_off:
        labels = _overlay(labels, start, end, "NOISE")
    return _merge(labels)


def _overlay(
    labels: list[tuple[float, float, str]], start: float, end: float, code: str
) -> list[tuple[float, float, str]]:
    out: list[tuple[float, float, str]] = []
    for s, e, lab in labels:
        if e <= start or s >= end:
            out.append((s, e, lab))
            continue
        if s < start:
            out.append((s, start, lab))
        out.append((max(s, start), min(e, end), code))
        if e > end:
            out.append((end, e, lab))
    return out


def _merge(labels: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    merged: list[tuple[float, float, str]] = []
    for s, e, lab in labels:
        if e <= s:
            continue
        if merged and merged[-1][2] == lab and abs(merged[-1][1] - s) < 1e-9:
            merged[-1] = (merged[-1][0], e, lab)
        else:
            merged.append((s, e, lab))
    return merged


def write_outputs(result: RecordResult, out_dir: Path, cfg: AgentConfig) -> Path:
    """Write ``beats.csv``, ``rhythm.csv`` and ``alarms.jsonl`` for one record.

    Returns
    -------
    Path
        The record's output folder ``out_dir / result.record``.
    """
    folder = out_dir / result.record
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "beats.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sample", "time_s", "aami_class", "confidence", "template_corr"])
        for beat, sample in zip(result.beats, result.source_samples(), strict=True):
            writer.writerow(
                [
                    sample,
                    f"{beat.r_peak_time_s:.3f}",
                    beat.aami_class.value if beat.aami_class else "",
                    "" if beat.confidence is None else f"{beat.confidence:.3f}",
                    "" if beat.template_corr is None else f"{beat.template_corr:.3f}",
                ]
            )
    segments = rhythm_segments(
        result.beats,
        result.leads_off,
        asystole_s=cfg.alarms.asystole_s,
        duration_s=result.duration_s,
        episodes=result.episodes,
    )
    with (folder / "rhythm.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["start_s", "end_s", "rhythm"])
        for start, end, code in segments:
            writer.writerow([f"{start:.3f}", f"{end:.3f}", code])
    with (folder / "alarms.jsonl").open("w", encoding="utf-8") as fh:
        for event in result.events:
            fh.write(event.model_dump_json() + "\n")
    return folder
