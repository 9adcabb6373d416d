"""A real mosquitto run with the site files of ``bedside provision``: TLS, client certificates,
no anonymous clients, per-bed ACLs (issue 14, "Must show").

The agent of ward1/bed1 and the station nurse1 work with their certificates. An anonymous
client cannot connect at all; a client holding bed2's certificate, and the station itself for
the bed's own topics, can publish neither an alarm, nor an ack, nor observations for bed1: the
broker answers PUBACK "Not authorized" (MQTT v5 reason 0x87) and nothing reaches the agent or
the station. The terminal station's ``--ack`` closes the loop over TLS: confirmed by the agent
with its certificate, refused by the broker with another bed's.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.alarms.engine import AlarmEngine, ConditionSpec, Finding
from agent.config import BedConfig, MqttConfig
from agent.errors import BrokerUnreachableError
from agent.messages import (
    AlarmAck,
    AlarmCode,
    AlarmCondition,
    AlarmEvent,
    AlarmPriority,
    EcgControl,
    ManualObservations,
    topic,
)
from agent.provision import SiteFiles, StationSpec, provision_site
from agent.publish.broker import MosquittoBroker, free_port, mosquitto_path
from agent.publish.mqtt import DeliveryError, MqttPublisher
from agent.publish.subscriber import MqttSubscriber
from tests.agent.publish.test_mqtt import make_alarm, wait_until

SAFETY_TIMEOUT_S = 20.0
BED1 = BedConfig(unit="ward1", bed="bed1", device_id="agent-bed1")
NOT_AUTHORIZED = 0x87  # MQTT v5, 2.4 "Reason Code": Not authorized


@dataclass
class Site:
    files: SiteFiles
    broker: MosquittoBroker

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.broker.port}"

    def security(self, cert: str | None = None) -> MqttConfig:
        if cert is None:
            return MqttConfig(url=self.url, tls_ca_file=self.files.ca_cert)
        if "/" in cert:
            crt, key = self.files.beds[cert]
        else:
            crt, key = self.files.stations[cert]
        return MqttConfig(
            url=self.url, tls_ca_file=self.files.ca_cert, tls_cert_file=crt, tls_key_file=key
        )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    binary = mosquitto_path()
    if binary is None:
        pytest.skip("mosquitto not installed (apt-get install mosquitto)")
    port = free_port()
    files = provision_site(
        tmp_path / "site",
        [("ward1", "bed1"), ("ward1", "bed2")],
        [StationSpec("nurse1", ("ward1",))],
        port=port,
        bind="127.0.0.1",
    )
    conf = files.mosquitto_conf.read_text(encoding="utf-8")  # as root, + "user root"
    workdir = tmp_path / "broker"
    workdir.mkdir()
    with MosquittoBroker(workdir, binary=binary, conf_text=conf, port=port) as broker:
        yield Site(files, broker)


class Inbox:
    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []
        self.cond = threading.Condition()

    def __call__(self, topic_name: str, payload: bytes, retained: bool) -> None:
        with self.cond:
            self.items.append((topic_name, payload))
            self.cond.notify_all()

    def wait_for(self, topic_name: str, n: int = 1) -> list[bytes]:
        with self.cond:
            ok = self.cond.wait_for(
                lambda: len([1 for t, _ in self.items if t == topic_name]) >= n,
                timeout=SAFETY_TIMEOUT_S,
            )
            assert ok, f"{topic_name}: {self.items}"
            return [p for t, p in self.items if t == topic_name]


def _ack(alarm_id: str, station: str) -> bytes:
    now = datetime.now(UTC)
    return (
        AlarmAck(device_id=station, ts_utc=now, alarm_id=alarm_id, station_id=station)
        .model_dump_json()
        .encode()
    )


def _obs() -> bytes:
    return (
        ManualObservations(ts_utc=datetime.now(UTC), systolic_bp_mmhg=85.0)
        .model_dump_json()
        .encode()
    )


def _ecg_on(station: str) -> bytes:
    ctl = EcgControl(
        device_id=station, ts_utc=datetime.now(UTC), station_id=station, on=True, lease_s=30.0
    )
    return ctl.model_dump_json().encode()


def test_agent_and_station_work_and_others_are_refused(site: Site, tmp_path: Path) -> None:
    acks: list[AlarmAck] = []
    observations: list[ManualObservations] = []
    got_ack = threading.Event()
    agent_cfg = site.security("ward1/bed1").model_copy(
        update={"outbox_path": tmp_path / "bed1.sqlite3"}
    )

    def on_ack(ack: AlarmAck) -> None:
        acks.append(ack)
        got_ack.set()

    agent = MqttPublisher(
        agent_cfg,
        BED1,
        source_desc="t",
        agent_version="0",
        on_ack=on_ack,
        on_observations=observations.append,
    )
    inbox = Inbox()
    station = MqttSubscriber(
        site.url,
        ["bedside/v1/ward1/#"],
        on_message=inbox,
        client_id=f"nurse1-{uuid.uuid4().hex[:6]}",
        security=site.security("nurse1"),
    )
    intruder = MqttSubscriber(
        site.url, client_id="intruder-bed2", security=site.security("ward1/bed2")
    )
    alarms, ack_topic = topic("ward1", "bed1", "alarms"), topic("ward1", "bed1", "alarms/ack")
    obs_topic = topic("ward1", "bed1", "observations")
    ecg_control = topic("ward1", "bed1", "ecg/control")
    try:
        agent.connect()
        station.connect()
        intruder.connect()
        # the bed's own agent: an alarm reaches the station through TLS and the ACL
        real = make_alarm(1)
        agent.publish_alarm(real)
        got = [AlarmEvent.model_validate_json(p) for p in inbox.wait_for(alarms)]
        assert [e.alarm_id for e in got] == [real.alarm_id]
        assert agent.counters["mqtt_alarms_refused"] == 0

        # another bed's certificate: a forged alarm, ack and observations for bed1 are refused
        forged = make_alarm(2).model_dump_json().encode()
        for name, payload in (
            (alarms, forged),
            (ack_topic, _ack(real.alarm_id, "intruder")),
            (obs_topic, _obs()),
            (ecg_control, _ecg_on("intruder")),  # only stations turn a bed's live ECG on
        ):
            assert not intruder.publish(name, payload), name
            assert intruder.last_refusal is not None
            assert intruder.last_refusal.value == NOT_AUTHORIZED, name
        # a station may not publish alarms either
        assert not station.publish(alarms, forged)
        assert station.last_refusal is not None
        assert station.last_refusal.value == NOT_AUTHORIZED

        # the station's ack and observations are accepted and reach the agent
        assert station.publish(ack_topic, _ack(real.alarm_id, "nurse1"))
        assert got_ack.wait(SAFETY_TIMEOUT_S)
        assert station.publish(obs_topic, _obs())
        inbox.wait_for(obs_topic)
        assert station.publish(ecg_control, _ecg_on("nurse1"))
        inbox.wait_for(ecg_control)
        wait_until(lambda: agent.counters["ecg_controls_received"] == 1, SAFETY_TIMEOUT_S)
        # nothing forged arrived anywhere (the refusals were answered before these succeeded)
        assert [a.station_id for a in acks] == ["nurse1"]
        assert len(inbox.wait_for(alarms)) == 1
        assert len(inbox.wait_for(ack_topic)) == 1
        assert len(inbox.wait_for(ecg_control)) == 1
    finally:
        intruder.close()
        station.close()
        agent.close()


def test_anonymous_and_plain_clients_cannot_connect(site: Site) -> None:
    # TLS with the site CA but no client certificate: the handshake is refused
    anonymous = MqttSubscriber(site.url, client_id="anon", security=site.security(None))
    with pytest.raises(BrokerUnreachableError, match="closed the connection before CONNACK"):
        anonymous.connect()
    anonymous.close()
    # no TLS at all
    plain = MqttSubscriber(f"mqtt://127.0.0.1:{site.broker.port}", client_id="plain")
    with pytest.raises(BrokerUnreachableError):
        plain.connect()
    plain.close()


def test_alarm_refused_by_the_acl_stays_in_the_outbox(site: Site, tmp_path: Path) -> None:
    """An agent whose certificate does not match its bed: PUBACK 0x87, the alarm is kept."""
    problems: list[DeliveryError] = []
    refused = threading.Event()

    def on_problem(problem: DeliveryError) -> None:
        problems.append(problem)
        refused.set()

    cfg = site.security("ward1/bed2").model_copy(update={"outbox_path": tmp_path / "o.sqlite3"})
    agent = MqttPublisher(cfg, BED1, source_desc="t", agent_version="0", on_problem=on_problem)
    try:
        agent.connect()
        alarm = make_alarm(3)
        agent.publish_alarm(alarm)
        assert refused.wait(SAFETY_TIMEOUT_S)
        assert problems[0].kind == "delivery_refused"
        assert "Not authorized" in str(problems[0])
        assert agent.counters["mqtt_alarms_refused"] == 1
        assert agent.pending_alarms() == 1
        assert [a.alarm_id for a in agent.active_alarms()] == [alarm.alarm_id]
    finally:
        agent.close()


def _station_ack(
    site: Site, cert: str, station_id: str, alarm_id: str
) -> subprocess.CompletedProcess[str]:
    """``bedside nurse-station --ack`` over mqtts with ``cert``'s certificate (the real CLI)."""
    crt, key = site.files.beds[cert] if "/" in cert else site.files.stations[cert]
    args = [
        "nurse-station",
        "--broker",
        site.url,
        "--ca",
        str(site.files.ca_cert),
        "--cert",
        str(crt),
        "--key",
        str(key),
        "--station-id",
        station_id,
        "--ack",
        f"ward1/bed1:{alarm_id}",
        "--ack-timeout",
        str(SAFETY_TIMEOUT_S),
    ]
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_station_ack_over_tls_is_confirmed_by_the_agent(site: Site, tmp_path: Path) -> None:
    """The closed loop over TLS: the station's --ack with its certificate, the agent's
    confirmation (``updated`` with ``acknowledged_by``), exit 0; another bed's certificate
    cannot ack (exit 1, the broker's refusal), an unknown id exits 2."""
    engine = AlarmEngine(
        [ConditionSpec(AlarmCode.ASYSTOLE, AlarmPriority.HIGH, AlarmCondition.PHYSIOLOGICAL)],
        device_id=BED1.device_id,
        stream_start_utc=datetime.now(UTC),
    )
    acks: list[AlarmAck] = []
    cfg = site.security("ward1/bed1").model_copy(update={"outbox_path": tmp_path / "o.sqlite3"})

    def on_ack(ack: AlarmAck) -> None:  # what the runtime does with an ack
        acks.append(ack)
        for event in engine.acknowledge(ack.alarm_id, 70.0, by=ack.station_id):
            agent.publish_alarm(event)

    agent = MqttPublisher(cfg, BED1, source_desc="t", agent_version="0", on_ack=on_ack)
    inbox = Inbox()
    watcher = MqttSubscriber(
        site.url,
        [topic("ward1", "bed1", "alarms/active")],
        on_message=inbox,
        client_id=f"nurse1-watch-{uuid.uuid4().hex[:6]}",
        security=site.security("nurse1"),
    )
    try:
        agent.connect()
        watcher.connect()
        engine.update(64.0, [Finding(AlarmCode.ASYSTOLE, active=False)])
        [raised] = engine.update(65.0, [Finding(AlarmCode.ASYSTOLE, active=True, message="A")])
        agent.publish_alarm(raised)
        # the bed's retained active list names the alarm before any station acks it
        active_topic = topic("ward1", "bed1", "alarms/active")
        while not any(raised.alarm_id.encode() in p for p in inbox.wait_for(active_topic)):
            inbox.wait_for(active_topic, len(inbox.wait_for(active_topic)) + 1)

        # another bed's certificate: the broker refuses the ack, the agent never sees it
        intruder = _station_ack(site, "ward1/bed2", "nurse1", raised.alarm_id)
        assert intruder.returncode == 1, intruder.stderr
        assert "did not accept the ack" in intruder.stderr
        assert "Not authorized" in intruder.stderr
        assert "Traceback" not in intruder.stderr

        # an id the bed does not list: exit 2, nothing sent
        unknown = _station_ack(site, "nurse1", "nurse1", "0123456789abcdef")
        assert unknown.returncode == 2, unknown.stderr
        assert "has no active alarm 0123456789abcdef" in unknown.stderr

        # the station's own certificate: confirmed by the agent
        ok = _station_ack(site, "nurse1", "nurse1", raised.alarm_id)
        assert ok.returncode == 0, ok.stderr
        assert f"alarm {raised.alarm_id} acknowledged by nurse1" in ok.stdout
        assert "(confirmed by the agent)" in ok.stdout
        assert [a.station_id for a in acks] == ["nurse1"]
        assert [a.acknowledged_by for a in agent.active_alarms()] == ["nurse1"]
    finally:
        watcher.close()
        agent.close()
