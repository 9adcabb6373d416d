"""Nurse station: the pure WardState, the table, and one run through a real mosquitto."""

from __future__ import annotations

import io
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from agent.alarms.engine import AlarmEngine, ConditionSpec, Finding
from agent.config import BedConfig, MqttConfig
from agent.errors import BrokerUnreachableError
from agent.messages import (
    ActiveAlarmsMessage,
    AlarmAck,
    AlarmCode,
    AlarmCondition,
    AlarmEvent,
    AlarmLifecycle,
    AlarmPriority,
    StatusMessage,
    VitalsMessage,
    topic,
)
from agent.nurse_station import WardState, parse_ack_item, render_table, run_nurse_station
from agent.publish.mqtt import MqttPublisher
from tests.fixtures_mqtt import MosquittoBroker, mqtt_collector

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
ALARMS = topic("ward1", "bed1", "alarms")


def alarm(
    code: AlarmCode,
    priority: AlarmPriority,
    onset_s: float,
    *,
    lifecycle: AlarmLifecycle = AlarmLifecycle.RAISED,
    alarm_id: str | None = None,
    kind: AlarmCondition = AlarmCondition.PHYSIOLOGICAL,
    acknowledged: bool = False,
    message: str = "",
) -> AlarmEvent:
    return AlarmEvent(
        device_id="agent",
        ts_utc=T0,
        alarm_id=alarm_id or uuid.uuid4().hex,
        condition=code,
        priority=priority,
        kind=kind,
        lifecycle=lifecycle,
        onset_s=onset_s,
        onset_utc=T0 + timedelta(seconds=onset_s),
        raised_s=onset_s + 1,
        cleared_s=onset_s + 10 if lifecycle == AlarmLifecycle.CLEARED else None,
        acknowledged=acknowledged,
        message=message or f"{code} alarm",
    )


def feed(state: WardState, msg: AlarmEvent, bed: str = "bed1") -> list[str]:
    return [
        e.text for e in state.apply(topic("ward1", bed, "alarms"), msg.model_dump_json().encode())
    ]


def cleared(ev: AlarmEvent) -> AlarmEvent:
    return ev.model_copy(update={"lifecycle": AlarmLifecycle.CLEARED, "cleared_s": ev.onset_s + 9})


def test_alarms_ordered_by_priority_then_onset() -> None:
    state = WardState()
    low = alarm(AlarmCode.BATTERY_LOW, AlarmPriority.LOW, 1.0, kind=AlarmCondition.TECHNICAL)
    med = alarm(AlarmCode.HR_HIGH, AlarmPriority.MEDIUM, 2.0)
    high_late = alarm(AlarmCode.VTACH, AlarmPriority.HIGH, 30.0)
    high_early = alarm(AlarmCode.ASYSTOLE, AlarmPriority.HIGH, 5.0)
    for ev, bed in ((low, "bed1"), (med, "bed2"), (high_late, "bed1"), (high_early, "bed3")):
        feed(state, ev, bed)
    order = [a.event.alarm_id for a in state.active_alarms()]
    assert order == [high_early.alarm_id, high_late.alarm_id, med.alarm_id, low.alarm_id]
    assert state.alarm_at_row("1").event == high_early
    assert state.find_alarm(med.alarm_id).event == med
    with pytest.raises(LookupError):
        state.find_alarm(med.alarm_id[:10])  # never a prefix


def test_raised_line_dedupe_clear_and_late_resend() -> None:
    state = WardState()
    ev = alarm(AlarmCode.ASYSTOLE, AlarmPriority.HIGH, 61.2, message="Asystole: no QRS for 4.0 s")
    assert feed(state, ev) == [
        'ward1/bed1 RAISED high asystole onset 61.2 s "Asystole: no QRS for 4.0 s"'
    ]
    assert feed(state, ev) == []  # re-sent after a reconnect
    done = cleared(ev)
    lines = feed(state, done)
    assert lines == [
        'ward1/bed1 CLEARED high asystole onset 61.2 s cleared 70.2 s "Asystole: no QRS for 4.0 s"'
    ]
    assert state.active_alarms() == []
    assert feed(state, done) == []
    assert feed(state, ev) == []  # a late duplicate raise does not resurrect it
    assert state.active_alarms() == []


def test_technical_alarm_is_marked() -> None:
    state = WardState()
    ev = alarm(AlarmCode.LEADS_OFF, AlarmPriority.MEDIUM, 3.0, kind=AlarmCondition.TECHNICAL)
    assert feed(state, ev)[0].startswith("ward1/bed1 RAISED medium leads_off [technical] onset")


def test_ack_on_the_wire_is_pending_until_the_agent_confirms() -> None:
    state = WardState()
    a = alarm(AlarmCode.VFIB, AlarmPriority.HIGH, 1.0)
    b = alarm(AlarmCode.AFIB, AlarmPriority.MEDIUM, 2.0)
    feed(state, a)
    feed(state, b)
    ack = AlarmAck(device_id="ns", ts_utc=T0, alarm_id=a.alarm_id, station_id="ns1")
    lines = [
        e.text
        for e in state.apply(topic("ward1", "bed1", "alarms/ack"), ack.model_dump_json().encode())
    ]
    assert lines == [f"ward1/bed1 ACK pending high vfib {a.alarm_id[:8]} by ns1"]
    row = state.find_alarm(a.alarm_id)
    assert (row.acknowledged, row.ack_text) == (False, "pending")
    confirmed = a.model_copy(
        update={
            "lifecycle": AlarmLifecycle.UPDATED,
            "acknowledged": True,
            "acknowledged_by": "ns1",
            "acknowledged_utc": T0,
        }
    )
    assert feed(state, confirmed)[0].startswith("ward1/bed1 ACKNOWLEDGED by ns1 high vfib")
    assert feed(state, confirmed) == []  # duplicate update
    assert state.find_alarm(a.alarm_id).ack_text == "yes (ns1)"
    # a later update without the flag keeps it
    again = a.model_copy(update={"lifecycle": AlarmLifecycle.UPDATED, "message": "still"})
    feed(state, again)
    assert state.find_alarm(a.alarm_id).acknowledged
    assert state.find_alarm(b.alarm_id).ack_text == ""


def test_ack_by_row_number_only() -> None:
    state = WardState()
    nine = alarm(AlarmCode.VFIB, AlarmPriority.HIGH, 1.0, alarm_id="9736b759" + "0" * 24)
    other = alarm(AlarmCode.AFIB, AlarmPriority.MEDIUM, 2.0)
    feed(state, nine)
    feed(state, other)
    assert state.alarm_at_row("1").event.alarm_id == nine.alarm_id
    assert state.alarm_at_row("2").event.alarm_id == other.alarm_id
    with pytest.raises(LookupError, match="no row 9: 2 active alarm"):
        state.alarm_at_row("9")  # was: alarm 9736b759 by id prefix
    with pytest.raises(LookupError, match="not a row number"):
        state.alarm_at_row("9736b759")


def test_retained_active_list_shows_a_late_station_the_truth() -> None:
    state = WardState()
    a = alarm(AlarmCode.ASYSTOLE, AlarmPriority.HIGH, 5.0)
    b = alarm(AlarmCode.LEADS_OFF, AlarmPriority.MEDIUM, 6.0, kind=AlarmCondition.TECHNICAL)
    msg = ActiveAlarmsMessage(device_id="agent", ts_utc=T0, alarms=[a, b])
    lines = [
        e.text
        for e in state.apply(
            topic("ward1", "bed1", "alarms/active"), msg.model_dump_json().encode()
        )
    ]
    assert [ln.split(" onset")[0] for ln in lines] == [
        "ward1/bed1 ACTIVE high asystole",
        "ward1/bed1 ACTIVE medium leads_off [technical]",
    ]
    assert [x.event.alarm_id for x in state.active_alarms()] == [a.alarm_id, b.alarm_id]
    # the next list (b cleared) is adopted as the truth
    msg2 = ActiveAlarmsMessage(device_id="agent", ts_utc=T0, alarms=[a])
    state.apply(topic("ward1", "bed1", "alarms/active"), msg2.model_dump_json().encode())
    assert [x.event.alarm_id for x in state.active_alarms()] == [a.alarm_id]


def test_status_offline_from_last_will_and_invalid_payloads() -> None:
    state = WardState()
    status = topic("ward1", "bed1", "status")
    online = StatusMessage(device_id="agent", ts_utc=T0, state="online")
    offline = StatusMessage(device_id="agent", ts_utc=T0, state="offline")
    assert [e.text for e in state.apply(status, online.model_dump_json().encode())] == [
        "ward1/bed1 status online"
    ]
    assert state.apply(status, online.model_dump_json().encode()) == []
    assert [e.text for e in state.apply(status, offline.model_dump_json().encode())] == [
        "ward1/bed1 status offline"
    ]
    assert state.beds[("ward1", "bed1")].status == "offline"
    events = state.apply(status, b"{garbage")
    assert [e.kind for e in events] == ["invalid"]
    assert state.invalid_payloads == 1
    assert state.apply("other/topic", b"x") == []
    assert state.apply(topic("ward1", "bed1", "ecg"), b"x") == []


def test_hr_lines_at_most_every_10_s() -> None:
    now = [100.0]
    state = WardState(clock=lambda: now[0])
    vt = topic("ward1", "bed1", "vitals")

    def vitals(hr: float) -> bytes:
        return (
            VitalsMessage(device_id="a", ts_utc=T0, t_s=now[0], hr_bpm=hr)
            .model_dump_json()
            .encode()
        )

    assert [e.text for e in state.apply(vt, vitals(72))] == ["ward1/bed1 HR 72 bpm"]
    for _ in range(9):
        now[0] += 1.0
        assert state.apply(vt, vitals(80)) == []
    assert state.beds[("ward1", "bed1")].hr_bpm == 80
    now[0] += 1.0
    assert [e.text for e in state.apply(vt, vitals(81))] == ["ward1/bed1 HR 81 bpm"]


def test_table_rows_colours_and_quiet_beds() -> None:
    state = WardState()
    high = alarm(AlarmCode.ASYSTOLE, AlarmPriority.HIGH, 5.0)
    med = alarm(AlarmCode.SIGNAL_POOR, AlarmPriority.MEDIUM, 1.0, kind=AlarmCondition.TECHNICAL)
    feed(state, med)
    feed(state, high)
    state.apply(
        topic("ward2", "bed9", "status"),
        StatusMessage(device_id="x", ts_utc=T0, state="online").model_dump_json().encode(),
    )
    table = render_table(state)
    assert [r.style for r in table.rows] == ["bold red", "yellow", None]
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(table)
    text = out.getvalue()
    assert text.index("asystole") < text.index("signal_poor [T]")
    assert "ward2/bed9" in text


def test_parse_ack_item() -> None:
    assert parse_ack_item("ward1/bed1:abc") == ("ward1", "bed1", "abc")
    for bad in ("ward1/bed1", "ward1:abc", "ward1/be d:abc", "ward1/bed1:"):
        with pytest.raises(ValueError, match=r"UNIT/BED|bed|unit"):
            parse_ack_item(bad)


def test_run_nurse_station_through_the_broker(
    mqtt_broker: MosquittoBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bed = BedConfig(unit="ward1", bed="bed1", device_id="agent")
    cfg = MqttConfig(url=mqtt_broker.url, outbox_path=tmp_path / "o.sqlite3")
    pub = MqttPublisher(cfg, bed, source_desc="t", agent_version="0")
    pub.connect()
    result: list[int] = []
    stop = threading.Event()
    station = threading.Thread(
        target=lambda: result.append(run_nurse_station(mqtt_broker.url, plain=True, stop=stop))
    )
    raised = 'ward1/bed1 RAISED high asystole onset 61.2 s "Asystole: no QRS for 4.0 s"'

    def wait_for(line: str, out: str) -> str:
        # waits on the station's own output (the test's timeout is the only bound)
        while line not in out:
            assert station.is_alive(), out
            time.sleep(0.05)
            out += capsys.readouterr().out
        return out

    try:
        station.start()
        out = wait_for("ward1/bed1 status online", "")  # retained status: we are subscribed
        ev = alarm(
            AlarmCode.ASYSTOLE, AlarmPriority.HIGH, 61.2, message="Asystole: no QRS for 4.0 s"
        )
        pub.publish_alarm(ev)
        out = wait_for(raised, out)
    finally:
        stop.set()
        pub.close()
        station.join(timeout=10)
    assert result == [0]
    assert raised in out


class EngineAgent:
    """A bed agent reduced to its alarm engine and publisher: confirms acks like the runtime."""

    def __init__(self, url: str, outbox: Path) -> None:
        self.engine = AlarmEngine(
            [ConditionSpec(AlarmCode.ASYSTOLE, AlarmPriority.HIGH, AlarmCondition.PHYSIOLOGICAL)],
            device_id="agent",
            stream_start_utc=T0,
        )
        self.acks: list[AlarmAck] = []
        self.got_ack = threading.Event()
        cfg = MqttConfig(url=url, outbox_path=outbox)
        bed = BedConfig(unit="ward1", bed="bed1", device_id="agent")
        self.pub = MqttPublisher(cfg, bed, source_desc="t", agent_version="0", on_ack=self.on_ack)

    def on_ack(self, ack: AlarmAck) -> None:
        self.acks.append(ack)
        for event in self.engine.acknowledge(ack.alarm_id, 70.0, by=ack.station_id):
            self.pub.publish_alarm(event)
        self.got_ack.set()

    def raise_asystole(self, t_s: float) -> AlarmEvent:
        finding = Finding(AlarmCode.ASYSTOLE, active=False)
        self.engine.update(t_s - 1, [finding])
        [raised] = self.engine.update(
            t_s, [Finding(AlarmCode.ASYSTOLE, active=True, message="Asystole")]
        )
        self.pub.publish_alarm(raised)
        return raised


def test_ack_end_to_end(
    mqtt_broker_persistent: MosquittoBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = mqtt_broker_persistent.url
    agent = EngineAgent(url, tmp_path / "o.sqlite3")
    agent.pub.connect()
    try:
        raised = agent.raise_asystole(65.0)
        # an id the bed does not list as active: exit 2, nothing sent
        assert run_nurse_station(url, ack=["ward1/bed1:0123456789abcdef"]) == 2
        assert "has no active alarm 0123456789abcdef" in capsys.readouterr().err
        # the agent confirms with acknowledged_by: exit 0
        code = run_nurse_station(url, station_id="ns-7", ack=[f"ward1/bed1:{raised.alarm_id}"])
        out = capsys.readouterr().out
        assert code == 0
        assert f"alarm {raised.alarm_id} acknowledged by ns-7" in out
        assert "confirmed by the agent" in out
        # the same id again: no longer unacknowledged, no new confirmation: exit 1
        assert [a.acknowledged_by for a in agent.pub.active_alarms()] == ["ns-7"]
    finally:
        agent.pub.close()


def test_ack_while_the_agent_is_offline_waits_at_the_broker(
    mqtt_broker_persistent: MosquittoBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = mqtt_broker_persistent.url
    first = EngineAgent(url, tmp_path / "o.sqlite3")
    first.pub.connect()
    raised = first.raise_asystole(65.0)
    assert first.pub.flush()
    with mqtt_collector(url, topic("ward1", "bed1", "alarms/active")) as col:
        col.wait_for(lambda ms: any(raised.alarm_id.encode() in m.payload for m in ms))
    first.pub.close()  # the agent is gone (its persistent session stays at the broker)
    code = run_nurse_station(
        url, station_id="ns-1", ack=[f"ward1/bed1:{raised.alarm_id}"], ack_timeout_s=1.0
    )
    assert code == 1
    assert "ack pending, no confirmation" in capsys.readouterr().err
    # the agent comes back with the same identity: the queued ack arrives
    second = EngineAgent(url, tmp_path / "o.sqlite3")
    second.engine = first.engine  # same alarm state (a network outage, not a restart)
    with mqtt_collector(url, ALARMS) as alarms:
        second.pub.connect()
        try:
            assert second.got_ack.wait(10)
            assert [a.station_id for a in second.acks] == ["ns-1"]
            alarms.wait_for(
                lambda ms: any(
                    AlarmEvent.model_validate_json(m.payload).acknowledged_by == "ns-1" for m in ms
                )
            )
        finally:
            second.pub.close()


def test_run_nurse_station_bad_ack_item_and_unreachable_broker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_nurse_station("mqtt://127.0.0.1:1", ack=["nonsense"]) == 2
    assert "UNIT/BED:ALARM_ID" in capsys.readouterr().err
    with pytest.raises(BrokerUnreachableError, match="connection refused"):
        run_nurse_station("mqtt://127.0.0.1:1", duration_s=1, plain=True)
