"""The broker fixture itself: restart on the same port, collector reconnects."""

from __future__ import annotations

import socket

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures_mqtt import MosquittoBroker, mqtt_collector


def _publish_once(broker: MosquittoBroker, topic: str, payload: bytes) -> None:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(timeout=5)
    finally:
        client.disconnect()
        client.loop_stop()


def test_broker_stop_start_same_port(mqtt_broker: MosquittoBroker) -> None:
    port = mqtt_broker.port
    assert mqtt_broker.url == f"mqtt://127.0.0.1:{port}"
    with mqtt_collector(mqtt_broker.url, "t/#") as col:
        _publish_once(mqtt_broker, "t/1", b"a")
        col.wait_for(lambda ms: len(ms) == 1)
        mqtt_broker.stop()
        assert not mqtt_broker.running
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0
        mqtt_broker.start()
        assert mqtt_broker.port == port
        col.wait_subscribed(timeout_s=10, at_least=2)
        _publish_once(mqtt_broker, "t/2", b"b")
        assert col.wait_for(lambda: len(col.messages) == 2)
        msgs = col.snapshot()
    assert [(m.topic, m.payload, m.retain) for m in msgs] == [
        ("t/1", b"a", False),
        ("t/2", b"b", False),
    ]
