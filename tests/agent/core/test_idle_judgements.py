"""Judgements skipped while nothing can change leave every alarm event as it was (issue 11).

The core judges the timeline every 0.25 s of stream time and twice per beat, and the
immediate conditions every 0.25 s; most of those judgements find every condition false with
no alarm active. :meth:`MonitorCore.judge` skips them when the engine is idle and every
consumer judged says its findings stay false past that time (``idle_until_s``). Each test
runs the same stream twice, skipping and with every judgement made (the engine made never
idle), and asserts the same events, and how many judgements were made: on sinus rhythm
almost none, while an alarm is active almost all.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.alarms.rules import LINK_SETTLE_S, EcgRules
from agent.analyze import RecordResult, analyze_record
from agent.config import AgentConfig, AlarmConfig
from agent.inference.bundle import ModelBundle, load_models
from agent.messages import AlarmCode, AlarmEvent, AlarmLifecycle
from firmware_bridge.frames import DeviceEvent, DeviceEventKind
from tests.agent.core.streaming import Stream
from tests.records import cut_record
from tools.judgements import both_ways

Event = tuple[str, str, float, float, float | None, bool, str]


def _events(events: list[AlarmEvent]) -> list[Event]:
    return [
        (
            e.condition.value,
            e.lifecycle.value,
            e.onset_s,
            e.raised_s,
            e.cleared_s,
            e.acknowledged,
            e.message,
        )
        for e in events
    ]


def _both_ways(
    run: Callable[[], list[AlarmEvent]],
) -> tuple[list[Event], list[Event], int, int]:
    """Run ``run`` skipping and judging every time; return both events and both update counts."""
    skipping, every, n_skipping, n_every = both_ways(run)
    return _events(skipping), _events(every), n_skipping, n_every


def _analyse(record: Path) -> RecordResult:
    cfg = AgentConfig.model_validate({"dsp": {"powerline_hz": 60}})
    return asyncio.run(analyze_record(record, cfg, load_models(cfg.inference), ack_after_s=15.0))


@pytest.mark.parametrize(
    ("db", "name", "start_s", "end_s", "codes", "made_at_most"),
    [
        # sinus rhythm: nothing to alarm, so nearly every judgement is skipped
        ("mitdb", "100", 0, 300, set(), 0.01),
        # ventricular flutter, waveform and beat-run V-tach, a re-raise after acknowledgement:
        # an alarm is active nearly throughout, so nearly every judgement is made
        ("mitdb", "207", 180, 330, {"vtach", "vfib"}, 1.0),
        # 6 dB electrode-motion noise in 2-minute bursts: signal_poor raised and cleared
        ("nstdb", "118e06", 420, 720, {"signal_poor"}, 0.6),
        # atrial fibrillation from the start, couplets and runs of PVCs
        ("mitdb", "203", 0, 240, {"afib", "pair_pvcs"}, 1.0),
    ],
)
def test_records_raise_the_same_events_with_idle_judgements_skipped(
    db: str,
    name: str,
    start_s: int,
    end_s: int,
    codes: set[str],
    made_at_most: float,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    record = cut_record(data_dir, db, name, start_s, end_s, tmp_path)
    skipping, every, n_skipping, n_every = _both_ways(lambda: _analyse(record).events)
    assert skipping == every
    raised = {code for code, life, *_ in skipping if life == "raised"}
    assert codes <= raised  # the strip exercises what it is chosen for
    # judged every 0.25 s and twice per beat: over a thousand judgements without skipping
    assert n_every > 1000
    assert n_skipping <= made_at_most * n_every


def test_rr_stream_pause_asystole_leads_off_link_and_battery_unchanged() -> None:
    cfg = AgentConfig.model_validate({"inference": {"beats": False, "af": False}})

    def run() -> list[AlarmEvent]:
        p = Stream(cfg, 1000.0, ModelBundle())
        events: list[AlarmEvent] = []
        t = 0.0
        for _ in range(30):  # 75 bpm
            t += 0.8
            events += p.rr([800.0], t).events
        t += 3.3  # a pause, reported with the beat that ends it
        events += p.rr([3300.0], t).events
        for _ in range(10):
            t += 0.8
            events += p.rr([800.0], t).events
        events += p.core.tick(t + 6.0).events  # no beat for 6 s: asystole from the clock
        t += 6.5
        events += p.rr([6500.0], t).events
        for _ in range(10):
            t += 0.8
            events += p.rr([800.0], t).events
        events += p.event(DeviceEventKind.CONTACT_LOST, t + 0.1).events
        events += p.event(DeviceEventKind.CONTACT_RESTORED, t + 5.0).events
        events += p.event(DeviceEventKind.DISCONNECTED, t + 6.0).events
        events += p.event(DeviceEventKind.CONNECTED, t + 9.0).events
        t += 9.0
        for _ in range(40):
            t += 0.45  # 133 bpm: HR high after its delay
            events += p.rr([450.0], t).events
        battery = DeviceEvent(kind=DeviceEventKind.BATTERY, t_s=t, t0_monotonic_ns=0, battery_pct=5)
        events += p.core.step(battery).events
        for _ in range(10):
            t += 0.8
            events += p.rr([800.0], t).events
        events += p.finish().events
        return events

    skipping, every, n_skipping, n_every = _both_ways(run)
    assert skipping == every
    raised = {code for code, life, *_ in skipping if life == AlarmLifecycle.RAISED.value}
    assert {"pause", "asystole", "leads_off", "hr_high", "battery_low"} <= raised
    assert n_skipping < n_every


def test_ecg_rules_are_idle_until_the_open_interval_reaches_a_pause() -> None:
    cfg = AlarmConfig()
    rules = EcgRules(cfg)
    for k in range(1, 13):
        rules.add_qrs(0.8 * k, 800.0)  # 75 bpm, within the limits
    last = 0.8 * 12
    assert rules.idle_until_s(last) == pytest.approx(last + cfg.pause_s)
    assert not any(f.active for f in rules.findings(last + cfg.pause_s - 0.01))
    assert any(f.active for f in rules.findings(last + cfg.pause_s))
    assert rules.idle_until_s(last + cfg.pause_s) == -math.inf


def test_ecg_rules_are_not_idle_while_a_heart_rate_limit_is_crossed() -> None:
    rules = EcgRules(AlarmConfig())
    for k in range(1, 13):
        rules.add_qrs(0.4 * k, 400.0)  # 150 bpm
    assert rules.idle_until_s(4.9) == -math.inf
    assert any(f.active for f in rules.findings(4.9))


def test_ecg_rules_suspended_after_a_reconnection_are_idle_until_the_link_settles() -> None:
    rules = EcgRules(AlarmConfig())
    rules.set_sensor_disconnected(True, 10.0)
    assert rules.idle_until_s(11.0) == math.inf  # nothing but the link alarm while it is down
    rules.set_sensor_disconnected(False, 20.0)
    rules.set_leads_off(True, 20.0)  # the NaN the gap was filled with, still flat
    assert rules.idle_until_s(21.0) == pytest.approx(20.0 + LINK_SETTLE_S)
    codes = {f.code for f in rules.findings(20.0 + LINK_SETTLE_S) if f.active}
    assert codes == {AlarmCode.LEADS_OFF}
