"""Beats and alarms do not depend on how the stream is chunked.

A live agent gets short chunks (a BLE notification, 0.25 s of replay); ``bedside analyze``
feeds 30 s at a time (5 s before session 23; no more than ``--ack-after``). What it raises
and clears, and when, must be what the live agent would:
the beat-run V-tach is raised when the beat completing it reaches the timeline, VF/VFL and
waveform-VT decisions are judged in the order they were made, the timeline and the immediate
conditions are judged on a fixed 0.25 s grid between their inputs (not where a chunk ends),
and ``--ack-after`` acknowledges on its own sample. The record is mitdb 207 from 180 s to
330 s: ventricular flutter and tachycardia (reference VFL about 250-285 s) with V-tach raised
both from the waveform and from a run of V beats, and a re-raise after the first alarm is
acknowledged.

Beats wait on the commit horizon until no flat-line or signal-quality change can still be
dated at or before them (those changes are dated back to where the noise began), so a change
meets the beats it precedes in live 0.25 s chunks as in 5 s ones: nstdb 118e06 (6 dB noise in
2-minute bursts) from 420 s to 720 s gets the same beats, classes, confidences and
alarms.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import agent.analyze as analyze
from agent.config import AgentConfig
from agent.inference.bundle import load_models
from tests.records import cut_record

START_S, END_S = 180, 330


@pytest.fixture(scope="module")
def vt_vf_strip(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mitdb 207, 180-330 s, channel 0 (MLII), as a WFDB record in a temporary folder."""
    folder = tmp_path_factory.mktemp("mit207")
    return cut_record(data_dir, "mitdb", "207", START_S, END_S, folder)


@pytest.fixture(scope="module")
def noise_bursts(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """nstdb 118e06, 420-720 s, channel 0, as a WFDB record in a temporary folder."""
    folder = tmp_path_factory.mktemp("nst118")
    return cut_record(data_dir, "nstdb", "118e06", 420, 720, folder)


@pytest.fixture(scope="module")
def pauses(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mitdb 232, 0-120 s, channel 0: sinus bradycardia with pauses of up to 6 s."""
    folder = tmp_path_factory.mktemp("mit232")
    return cut_record(data_dir, "mitdb", "232", 0, 120, folder)


@pytest.fixture(scope="module")
def beatless_vf(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """vfdb 427, 1800-1960 s: R-peaks at 1870.0 and 1871.5 s, then none until 1909.1 s."""
    folder = tmp_path_factory.mktemp("vf427")
    return cut_record(data_dir, "vfdb", "427", 1800, 1960, folder)


def _analyse(
    record: Path,
    chunk_s: float,
    monkeypatch: pytest.MonkeyPatch,
    *,
    ack_after_s: float | None = 15.0,
) -> analyze.RecordResult:
    monkeypatch.setattr(analyze, "ANALYZE_CHUNK_S", chunk_s)
    cfg = AgentConfig.model_validate({"dsp": {"powerline_hz": 60}})
    return asyncio.run(
        analyze.analyze_record(record, cfg, load_models(cfg.inference), ack_after_s=ack_after_s)
    )


Event = tuple[str, str, float, float, float | None, bool]
BeatRow = tuple[int, str | None, float | None]

WALL_CLOCK_FIELDS = {"alarm_id", "ts_utc", "onset_utc", "acknowledged_utc"}
"""Fields of an alarm event that differ between two runs whatever the stream (a UUID4 and
wall-clock stamps, as ``tools.golden`` masks them)."""


def _beats(result: analyze.RecordResult) -> list[BeatRow]:
    return [(b.r_peak_idx, b.aami_class, b.confidence) for b in result.beats]


def _whole_events(result: analyze.RecordResult) -> list[dict[str, object]]:
    """Every field of every event (evidence, strip and text included) but the wall clock's."""
    return [e.model_dump(mode="json", exclude=WALL_CLOCK_FIELDS) for e in result.events]


def _events(result: analyze.RecordResult) -> list[Event]:
    return [
        (e.condition.value, e.lifecycle.value, e.onset_s, e.raised_s, e.cleared_s, e.acknowledged)
        for e in result.events
    ]


def test_every_alarm_event_is_the_same_in_5_s_and_quarter_s_chunks(
    vt_vf_strip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    five = _events(_analyse(vt_vf_strip, 5.0, monkeypatch))
    quarter = _events(_analyse(vt_vf_strip, 0.25, monkeypatch))
    assert five == quarter  # raised, acknowledged, cleared: same times, same order
    raised = [(code, raised_s) for code, life, _, raised_s, _, _ in five if life == "raised"]
    codes = [code for code, _ in raised]
    assert codes.count("vtach") >= 2  # the strip exercises both V-tach paths and VFL
    assert "vfib" in codes
    # not every raise sits on a 5 s chunk boundary: the beat-run V-tach has its own time
    assert any(abs(t / 5.0 - round(t / 5.0)) > 1e-6 for code, t in raised if code == "vtach")
    assert any(life == "cleared" for _, life, _, _, _, _ in five)


def test_beats_and_signal_poor_are_the_same_in_5_s_and_quarter_s_chunks(
    noise_bursts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = {chunk: _analyse(noise_bursts, chunk, monkeypatch) for chunk in (5.0, 0.25)}
    beats = {chunk: _beats(r) for chunk, r in runs.items()}
    assert len(beats[5.0]) > 300
    assert beats[5.0] == beats[0.25]
    events = {chunk: _events(r) for chunk, r in runs.items()}
    assert events[5.0] == events[0.25]
    poor = [e for e in events[5.0] if e[0] == "signal_poor" and e[1] == "raised"]
    assert len(poor) >= 2  # the strip exercises the quality monitor


def test_a_frame_longer_than_the_ecg_ring_is_stepped_as_5_s_chunks(
    vt_vf_strip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a source may send long frames (a 60 s block); fed whole, the front end's 40 s ring had
    # lost the ECG the beat windows needed (mitdb 100 in 60 s frames: 889 of 2,272 beats
    # without a class); the core now steps such a frame in MAX_STEP_S (30 s) pieces. No
    # acknowledgements here: ``--ack-after`` acts between frames, so an alarm raised and due
    # inside one long frame is acknowledged at its end (the analysis reads chunks no longer
    # than --ack-after)
    cfg = AgentConfig.model_validate({"dsp": {"powerline_hz": 60}})
    models = load_models(cfg.inference)
    runs = {}
    for chunk_s in (60.0, 5.0):
        monkeypatch.setattr(analyze, "ANALYZE_CHUNK_S", chunk_s)
        runs[chunk_s] = asyncio.run(analyze.analyze_record(vt_vf_strip, cfg, models))
    beats = {chunk_s: _beats(r) for chunk_s, r in runs.items()}
    assert len(beats[5.0]) > 150
    assert beats[60.0] == beats[5.0]
    assert _events(runs[60.0]) == _events(runs[5.0])
    assert any(e[0] == "vtach" for e in _events(runs[5.0]))


def test_af_waveform_windows_are_judged_alike_in_30_s_and_quarter_s_chunks(
    pauses: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the waveform AF path judges the last 17 beats (here up to 28 s of ECG with the pauses)
    # when the newest becomes final; measured from the newest sample, a 30 s chunk had gone
    # past the window's start (mitdb 232: the AF state, an S relabel and the SBR row changed).
    # Consumers now reach RING_S back from when the item reached the timeline
    runs = {chunk: _analyse(pauses, chunk, monkeypatch, ack_after_s=None) for chunk in (30.0, 0.25)}
    beats = {chunk: _beats(r) for chunk, r in runs.items()}
    assert len(beats[30.0]) > 60
    assert beats[30.0] == beats[0.25]
    assert _whole_events(runs[30.0]) == _whole_events(runs[0.25])
    assert runs[30.0].episodes == runs[0.25].episodes


def test_the_beat_before_a_long_beatless_vf_episode_keeps_its_class(
    beatless_vf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a beat's class needs the next beat's RR; the next R-peak came 37.6 s later, and the beat's
    # window, fetched then, was no longer held: now it is fetched when the beat arrives
    runs = {
        chunk: _analyse(beatless_vf, chunk, monkeypatch, ack_after_s=None) for chunk in (30.0, 0.25)
    }
    assert _beats(runs[30.0]) == _beats(runs[0.25])
    before = [b for b in runs[30.0].beats if 71.0 < b.r_peak_time_s < 72.0]
    after = [b for b in runs[30.0].beats if 72.0 < b.r_peak_time_s < 108.5]
    assert len(before) == 1  # one beat, then 37 s of VF without R-peaks
    assert not after
    assert before[0].aami_class is not None
    # every event with its evidence: a VF decision is judged before the timeline items that
    # reached the timeline after it (before session 23, in 30 s chunks a vfib came out ahead
    # of an asystole raised 21 s earlier)
    assert _whole_events(runs[30.0]) == _whole_events(runs[0.25])
