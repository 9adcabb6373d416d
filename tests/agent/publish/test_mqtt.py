"""MqttPublisher against a real mosquitto (tests/fixtures_mqtt.py); no paho mocks."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.config import BedConfig, MqttConfig
from agent.errors import BrokerUnreachableError
from agent.messages import (
    AlarmAck,
    AlarmCode,
    AlarmCondition,
    AlarmEvent,
    AlarmLifecycle,
    AlarmPriority,
    StatusMessage,
    VitalsMessage,
    topic,
    utc_now,
)
from agent.publish.mqtt import MqttPublisher
from agent.publish.subscriber import MqttSubscriber
from tests.fixtures_mqtt import MosquittoBroker, Received, mqtt_collector

REPO_ROOT = Path(__file__).resolve().parents[3]
BED = BedConfig(unit="ward1", bed="bed7", device_id="test-agent")
STATUS = topic("ward1", "bed7", "status")
ALARMS = topic("ward1", "bed7", "alarms")
ACK = topic("ward1", "bed7", "alarms/ack")


def make_alarm(n: int = 0, lifecycle: AlarmLifecycle = AlarmLifecycle.RAISED) -> AlarmEvent:
    return AlarmEvent(
        device_id=BED.device_id,
        ts_utc=utc_now(),
        alarm_id=uuid.uuid4().hex,
        condition=AlarmCode.ASYSTOLE,
        priority=AlarmPriority.HIGH,
        kind=AlarmCondition.PHYSIOLOGICAL,
        lifecycle=lifecycle,
        onset_s=60.0 + n,
        onset_utc=utc_now(),
        raised_s=64.0 + n,
        message=f"Asystole: no QRS for 4.0 s (#{n})",
    )


def wait_until(cond: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s} s")
        time.sleep(0.02)


def mqtt_cfg(url: str, tmp_path: Path, **kw: object) -> MqttConfig:
    return MqttConfig.model_validate(
        {"url": url, "outbox_path": tmp_path / "outbox.sqlite3", "connect_timeout_s": 3.0, **kw}
    )


def alarms_in(msgs: list[Received]) -> list[AlarmEvent]:
    return [AlarmEvent.model_validate_json(m.payload) for m in msgs if m.topic == ALARMS]


def statuses(msgs: list[Received]) -> list[tuple[str, bool]]:
    return [
        (StatusMessage.model_validate_json(m.payload).state, m.retain)
        for m in msgs
        if m.topic == STATUS
    ]


@pytest.fixture
def publisher(mqtt_broker: MosquittoBroker, tmp_path: Path) -> Iterator[MqttPublisher]:
    pub = MqttPublisher(
        mqtt_cfg(mqtt_broker.url, tmp_path), BED, source_desc="test", agent_version="0.0"
    )
    try:
        yield pub
    finally:
        pub.close()


def test_online_retained_after_connect_offline_after_close(
    mqtt_broker: MosquittoBroker, publisher: MqttPublisher
) -> None:
    publisher.connect()
    assert publisher.connected
    publisher.publish_status({"frames_dropped": 3})
    # A subscriber arriving later still gets the retained status.
    with mqtt_collector(mqtt_broker.url, STATUS) as col:
        col.wait_for(lambda ms: ("online", True) in statuses(ms))
        last = StatusMessage.model_validate_json(col.snapshot()[-1].payload)
        assert last.source == "test"
        assert last.agent_version == "0.0"
        wait_until(
            lambda: any(
                StatusMessage.model_validate_json(m.payload).counters.get("frames_dropped") == 3
                for m in col.snapshot()
            )
        )
        publisher.close()
        col.wait_for(lambda ms: statuses(ms)[-1:] == [("offline", False)])
        # a clean close is the agent's own word, with its real time: not a last will
        assert StatusMessage.model_validate_json(col.snapshot()[-1].payload).last_will is None
    with mqtt_collector(mqtt_broker.url, STATUS) as late:
        late.wait_for(lambda ms: statuses(ms) == [("offline", True)])


_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from agent.config import BedConfig, MqttConfig
    from agent.publish.mqtt import MqttPublisher
    cfg = MqttConfig(url=sys.argv[1], outbox_path=Path(sys.argv[2]))
    bed = BedConfig(unit="ward1", bed="bed7", device_id="test-agent")
    pub = MqttPublisher(cfg, bed, source_desc="child", agent_version="0.0")
    pub.connect()
    print("ready", flush=True)
    time.sleep(60)
    """
)


def test_last_will_offline_when_killed(mqtt_broker: MosquittoBroker, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, mqtt_broker.url, str(tmp_path / "child.sqlite3")],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == b"ready", proc.stderr.read() if proc.stderr else b""
        with mqtt_collector(mqtt_broker.url, STATUS) as col:
            col.wait_for(lambda ms: statuses(ms) == [("online", True)])
            proc.kill()  # SIGKILL: no DISCONNECT packet, the broker sends the will
            proc.wait(timeout=5)
            col.wait_for(lambda ms: statuses(ms)[-1:] == [("offline", False)])
            online_raw, will_raw = col.snapshot()[0].payload, col.snapshot()[-1].payload
        # the will says it is one, claims no time of going offline and no stale counters
        online = StatusMessage.model_validate_json(online_raw)
        will = StatusMessage.model_validate_json(will_raw)
        assert b'"last_will"' not in online_raw  # statuses read as they always did
        assert online.last_will is None
        assert will.last_will is True
        assert will.counters == {}
        assert will.source == "child"
        assert will.ts_utc <= online.ts_utc  # registered before the connection, not at the kill
        with mqtt_collector(mqtt_broker.url, STATUS) as late:
            late.wait_for(lambda ms: statuses(ms) == [("offline", True)])
            retained = StatusMessage.model_validate_json(late.snapshot()[-1].payload)
            assert retained.last_will is True
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_alarms_arrive_with_qos1_and_leave_the_outbox(
    mqtt_broker: MosquittoBroker, publisher: MqttPublisher
) -> None:
    publisher.connect()
    sent = [make_alarm(i) for i in range(5)]
    with mqtt_collector(mqtt_broker.url, ALARMS, qos=1) as col:
        for alarm in sent:
            publisher.publish_alarm(alarm)
        col.wait_for(lambda ms: len(alarms_in(ms)) == 5)
        assert alarms_in(col.snapshot()) == sent
    wait_until(lambda: publisher.pending_alarms() == 0)


def test_outage_alarms_wait_and_arrive_in_order(
    mqtt_broker_persistent: MosquittoBroker, tmp_path: Path
) -> None:
    broker = mqtt_broker_persistent
    pub = MqttPublisher(mqtt_cfg(broker.url, tmp_path), BED, source_desc="t", agent_version="0")
    try:
        with mqtt_collector(broker.url, ALARMS, qos=1, session_id="outage-collector") as col:
            pub.connect()
            broker.stop()
            wait_until(lambda: not pub.connected, timeout_s=5)
            sent = [make_alarm(i) for i in range(3)]
            for alarm in sent:
                pub.publish_alarm(alarm)  # never raises, never waits for the broker
            pub.publish_vitals(VitalsMessage(device_id="test-agent", ts_utc=utc_now(), t_s=1.0))
            assert pub.pending_alarms() == 3
            assert pub.counters["mqtt_vitals_dropped"] == 1
            broker.start()
            col.wait_for(lambda ms: len(alarms_in(ms)) >= 3, timeout_s=20)
            got = alarms_in(col.snapshot())
            # Duplicates are allowed (consumers dedupe); order and completeness are not.
            assert list(dict.fromkeys(a.alarm_id for a in got)) == [a.alarm_id for a in sent]
            wait_until(lambda: pub.pending_alarms() == 0)
            assert pub.connected
            assert pub.counters["mqtt_alarms_resent"] >= 3
    finally:
        pub.close()


def test_outbox_survives_a_crash_and_the_next_process_delivers(
    mqtt_broker: MosquittoBroker, tmp_path: Path
) -> None:
    cfg = mqtt_cfg(mqtt_broker.url, tmp_path)
    first = MqttPublisher(cfg, BED, source_desc="t", agent_version="0")
    first.connect()
    mqtt_broker.stop()
    wait_until(lambda: not first.connected, timeout_s=5)
    alarm = make_alarm(1)
    first.publish_alarm(alarm)
    first.close()  # the process ends before the broker came back
    mqtt_broker.start()
    with mqtt_collector(mqtt_broker.url, ALARMS) as col:
        second = MqttPublisher(cfg, BED, source_desc="t", agent_version="0")
        try:
            # the raise, and its end: the alarm was active when the first process died
            assert second.pending_alarms() == 2
            second.connect()
            col.wait_for(lambda ms: len(alarms_in(ms)) == 2)
            raised, ended = alarms_in(col.snapshot())
            assert raised == alarm
            assert ended.alarm_id == alarm.alarm_id
            assert (ended.lifecycle, ended.phase, ended.state) == ("cleared", "end", "inactive")
            assert ended.ended_unacknowledged
            assert "agent restarted" in ended.message
            wait_until(lambda: second.pending_alarms() == 0)
        finally:
            second.close()


def test_acks_reach_on_ack_and_bad_acks_are_counted(
    mqtt_broker: MosquittoBroker, tmp_path: Path
) -> None:
    received: list[AlarmAck] = []
    got = threading.Event()

    def on_ack(ack: AlarmAck) -> None:
        received.append(ack)
        got.set()

    pub = MqttPublisher(
        mqtt_cfg(mqtt_broker.url, tmp_path), BED, source_desc="t", agent_version="0", on_ack=on_ack
    )
    station = MqttSubscriber(mqtt_broker.url)
    try:
        pub.connect()
        station.connect()
        assert station.publish(ACK, b"not json at all")
        assert station.publish(ACK, b'{"alarm_id": "x"}')
        ack = AlarmAck(device_id="ns", ts_utc=utc_now(), alarm_id="abc123", station_id="ns1")
        assert station.publish(ACK, ack.model_dump_json().encode())
        assert got.wait(5)
        assert received == [ack]
        assert pub.counters["mqtt_acks_invalid"] == 2
        assert pub.counters["mqtt_acks_received"] == 1
        assert pub.connected
    finally:
        station.close()
        pub.close()


def test_on_ack_exception_does_not_kill_the_network_thread(
    mqtt_broker: MosquittoBroker, tmp_path: Path
) -> None:
    def on_ack(ack: AlarmAck) -> None:
        msg = "boom"
        raise RuntimeError(msg)

    pub = MqttPublisher(
        mqtt_cfg(mqtt_broker.url, tmp_path), BED, source_desc="t", agent_version="0", on_ack=on_ack
    )
    station = MqttSubscriber(mqtt_broker.url)
    try:
        pub.connect()
        station.connect()
        ack = AlarmAck(device_id="ns", ts_utc=utc_now(), alarm_id="a", station_id="ns1")
        assert station.publish(ACK, ack.model_dump_json().encode())
        wait_until(lambda: pub.counters["mqtt_acks_received"] == 1, timeout_s=5)
        with mqtt_collector(mqtt_broker.url, ALARMS) as col:
            alarm = make_alarm()
            pub.publish_alarm(alarm)
            col.wait_for(lambda ms: alarms_in(ms) == [alarm])
    finally:
        station.close()
        pub.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_broker_fails_fast(tmp_path: Path) -> None:
    url = f"mqtt://127.0.0.1:{_closed_port()}"
    pub = MqttPublisher(mqtt_cfg(url, tmp_path), BED, source_desc="t", agent_version="0")
    # refused at once (not a connect timeout): the message names the refusal
    with pytest.raises(BrokerUnreachableError, match="connection refused") as info:
        pub.connect()
    assert info.value.url == url
    assert str(info.value) == f"cannot reach MQTT broker {url}: connection refused"
    pub.close()


def test_silent_server_times_out_waiting_for_connack(tmp_path: Path) -> None:
    with socket.socket() as server:  # accepts TCP (backlog) but never answers MQTT
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        url = f"mqtt://127.0.0.1:{server.getsockname()[1]}"
        pub = MqttPublisher(
            mqtt_cfg(url, tmp_path, connect_timeout_s=0.5), BED, source_desc="t", agent_version="0"
        )
        # the configured 0.5 s CONNACK timeout is what ends the wait (named in the message)
        with pytest.raises(BrokerUnreachableError, match=r"no CONNACK within 0\.5 s"):
            pub.connect()
        pub.close()
