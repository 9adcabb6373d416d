"""The station with the real agent's retained messages, on SQLite and on PostgreSQL.

- A station that starts *after* a bed raised an alarm shows it, from the bed's retained
  ``alarms/active`` (published by the agent's own ``MqttPublisher``), stores it in the history,
  and drops it when the agent clears it.
- A bed that drops off the network (its MQTT last will, from ``ward-sim``'s abrupt socket
  close) is a ``bed_offline`` alarm in the history like any other alarm event: raised with the
  will, cleared when the bed is back online.

Every wait is on a state (a database row, the ward's view), with a safety-net timeout only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.messages import AlarmLifecycle, topic, utc_now
from agent.publish.broker import MosquittoBroker
from agent.publish.mqtt import MqttPublisher
from agent.station.cli import RunningStation, serve_in_thread
from agent.station.config import load_station_config
from agent.station.db import AlarmQuery
from agent.station.ward import OFFLINE_CONDITION
from agent.ward_sim import WardSim
from tests.agent.publish.test_mqtt import BED, make_alarm, mqtt_cfg
from tests.fixtures_mqtt import mqtt_collector

SAFETY_TIMEOUT_S = 30.0
"""Safety net only, for a loaded 2-core CI box."""


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SAFETY_TIMEOUT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def start_station(broker: MosquittoBroker, db_url: str) -> RunningStation:
    config = load_station_config(
        None,
        db_url=db_url,
        mqtt__host=broker.host,
        mqtt__port=broker.port,
        http__port=0,
        station_id="station-late",
    )
    return serve_in_thread(config)


@pytest.fixture
def agent(mqtt_broker: MosquittoBroker, tmp_path: Path) -> Iterator[MqttPublisher]:
    pub = MqttPublisher(
        mqtt_cfg(mqtt_broker.url, tmp_path), BED, source_desc="test", agent_version="0"
    )
    pub.connect()
    try:
        yield pub
    finally:
        pub.close()


def test_a_late_station_shows_and_stores_the_alarms_already_active(
    mqtt_broker: MosquittoBroker, agent: MqttPublisher, db_url: str
) -> None:
    raised = make_alarm(1)
    with mqtt_collector(mqtt_broker.url, topic(BED.unit, BED.bed, "alarms/active")) as col:
        agent.publish_alarm(raised)
        col.wait_for(
            lambda ms: any(raised.alarm_id.encode() in m.payload for m in ms), SAFETY_TIMEOUT_S
        )
    station = start_station(mqtt_broker, db_url)  # after the alarm: only the retained list
    try:
        ward = station.core.ward
        wait_until(lambda: ward.find_alarm(raised.alarm_id) is not None, "alarm on the ward")
        bed = ward.bed_json((BED.unit, BED.bed), utc_now())
        assert [a["alarm_id"] for a in bed["alarms"]] == [raised.alarm_id]
        assert bed["top_priority"] == "high"
        wait_until(lambda: len(station.db.alarm_events(raised.alarm_id)) == 1, "stored")
        (row,) = station.db.alarm_events(raised.alarm_id)
        assert (row.lifecycle, row.condition, row.onset_s) == ("raised", "asystole", 61.0)

        # the agent clears it: gone from the ward, both events in the history
        cleared = raised.model_copy(
            update={"lifecycle": AlarmLifecycle.CLEARED, "ts_utc": utc_now(), "cleared_s": 70.0}
        )
        agent.publish_alarm(cleared)
        wait_until(lambda: ward.find_alarm(raised.alarm_id) is None, "alarm cleared")
        wait_until(lambda: len(station.db.alarm_events(raised.alarm_id)) == 2, "clear stored")
        lifecycles = [r.lifecycle for r in station.db.alarm_events(raised.alarm_id)]
        assert lifecycles == ["raised", "cleared"]
        assert station.db.count_alarm_events() == 2
    finally:
        station.stop()


def test_a_bed_going_offline_is_an_alarm_in_the_history(
    mqtt_broker: MosquittoBroker, db_url: str
) -> None:
    station = start_station(mqtt_broker, db_url)
    sim = WardSim(mqtt_broker.url, beds=1, unit="ward1", random_events=False)
    sim.start()
    key = ("ward1", "bed01")
    ward = station.core.ward
    query = AlarmQuery(unit="ward1", bed="bed01", condition=OFFLINE_CONDITION)
    try:
        wait_until(lambda: key in ward.beds and ward.beds[key].status == "online", "online")
        sim.trigger("bed01", "offline", duration_s=600.0)
        wait_until(lambda: len(station.db.search(query)) == 1, "offline stored")
        (raised,) = station.db.search(query)
        assert (raised.lifecycle, raised.priority, raised.kind) == ("raised", "medium", "technical")
        assert "last will" in raised.message
        # the ward shows the same alarm (same id) as the history holds
        bed = ward.bed_json(key, utc_now())
        assert bed["alarms"][0]["alarm_id"] == raised.alarm_id
        assert bed["alarms"][0]["condition"] == OFFLINE_CONDITION

        sim.end("bed01")  # back online: the outage ends
        wait_until(lambda: len(station.db.search(query)) == 2, "offline cleared")
        rows = station.db.search(query)  # newest first
        assert [r.lifecycle for r in rows] == ["cleared", "raised"]
        assert {r.alarm_id for r in rows} == {raised.alarm_id}
        # the agents' event count (what the benchmark compares with the broker) leaves it out
        assert station.db.count_alarm_events() == 0
        assert station.db.count_alarm_events(agent_only=False) == 2
        csv_text = station.db.history_csv(query)
        assert csv_text.count(OFFLINE_CONDITION) == 2
    finally:
        sim.stop()
        station.stop()
