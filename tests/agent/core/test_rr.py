"""The core on RR intervals alone (a Heart Rate Service strap): beats, pauses, link events."""

from __future__ import annotations

import pytest

from agent.config import AgentConfig
from agent.inference.bundle import ModelBundle
from agent.messages import AlarmCode, AlarmEvent, AlarmLifecycle
from firmware_bridge.frames import DeviceEventKind
from tests.agent.core.streaming import Stream


def _pipeline() -> Stream:
    cfg = AgentConfig.model_validate({"inference": {"beats": False, "af": False}})
    return Stream(cfg, 1000.0, ModelBundle())


def _raised(events: list[AlarmEvent], code: AlarmCode) -> list[AlarmEvent]:
    return [e for e in events if e.condition is code and e.lifecycle is AlarmLifecycle.RAISED]


def _cleared(events: list[AlarmEvent], code: AlarmCode) -> list[AlarmEvent]:
    return [e for e in events if e.condition is code and e.lifecycle is AlarmLifecycle.CLEARED]


def test_rr_beats_and_a_pause() -> None:
    p = _pipeline()
    events: list[AlarmEvent] = []
    t = 0.0
    beats = 0
    for _ in range(20):  # 75 bpm, one notification a beat
        t += 0.8
        out = p.rr([800.0], t)
        beats += len(out.beats)
        events += out.events
    assert beats == 21  # the beat that starts the first interval, then one per interval
    assert p.core.rules.hr_bpm == pytest.approx(75.0)
    t += 3.5  # a 3.5 s pause, reported with the beat that ends it
    out = p.rr([3500.0], t)
    events += out.events
    (pause,) = _raised(events, AlarmCode.PAUSE)
    assert pause.onset_s == pytest.approx(16.0 + 3.0)  # last beat at 16.0 s + pause limit
    assert not _raised(events, AlarmCode.ASYSTOLE)
    assert out.beats[-1].rr_ms == 3500.0


def test_tick_judges_asystole_without_notifications() -> None:
    p = _pipeline()
    for k in range(1, 11):
        p.rr([1000.0], float(k))
    assert not _raised(p.core.tick(12.0).events, AlarmCode.ASYSTOLE)
    (asystole,) = _raised(p.core.tick(14.5).events, AlarmCode.ASYSTOLE)
    assert asystole.onset_s == pytest.approx(10.0 + 4.0)


def test_contact_and_link_events_raise_technical_alarms() -> None:
    p = _pipeline()
    events: list[AlarmEvent] = []
    for k in range(1, 6):
        events += p.rr([1000.0], float(k)).events
    events += p.event(DeviceEventKind.CONTACT_LOST, 5.5).events
    (leads_off,) = _raised(events, AlarmCode.LEADS_OFF)
    assert leads_off.onset_s == pytest.approx(5.5)
    events += p.event(DeviceEventKind.CONTACT_RESTORED, 8.0).events
    events += p.event(DeviceEventKind.DISCONNECTED, 9.0).events
    (link,) = _raised(events, AlarmCode.SENSOR_DISCONNECTED)
    assert link.onset_s == pytest.approx(9.0)
    assert link.raised_s == pytest.approx(9.0)  # at once, no commit horizon
    events += p.event(DeviceEventKind.CONNECTED, 10.0).events
    for k in range(11, 16):
        events += p.rr([1000.0], float(k)).events
    assert _cleared(events, AlarmCode.LEADS_OFF)
    assert _cleared(events, AlarmCode.SENSOR_DISCONNECTED)
    # no asystole for the time without contact or link
    assert not _raised(events, AlarmCode.ASYSTOLE)
