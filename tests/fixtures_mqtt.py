"""MQTT test plugin: a real local mosquitto per test, and a message collector.

The broker is the agent's own launcher, :class:`agent.publish.broker.MosquittoBroker` (the one
``bedside demo`` and ``tools/bench.py`` use), so the tests exercise the code that ships.

Fixtures
--------
``mqtt_broker``
    A fresh ``mosquitto`` on a free loopback port (persistence off). ``.host``, ``.port``,
    ``.url`` (``mqtt://127.0.0.1:PORT``); ``.stop()`` / ``.start()`` simulate an outage (the
    restart reuses the same port). Skipped when the binary is not installed.
``mqtt_broker_persistent``
    The same, with persistence on: sessions, queued QoS 1 messages and retained messages
    survive ``stop()`` / ``start()``, so a collector with ``session_id`` misses nothing while
    the broker is down.

Helper
------
``mqtt_collector(url, "bedside/v1/#")`` is a context manager yielding a :class:`MqttCollector`
that is subscribed (SUBACK received) when the ``with`` body starts; ``.messages`` is a list of
:class:`Received` ``(topic, payload, retain)`` and ``.wait_for(predicate, timeout_s)`` blocks
until ``predicate(messages)`` (or ``predicate()``) is true, returns True, and raises
``TimeoutError`` listing what arrived otherwise.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple, cast

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import parse_mqtt_url
from agent.publish.broker import MosquittoBroker, mosquitto_path

__all__ = [
    "MosquittoBroker",
    "MqttBroker",
    "MqttCollector",
    "Received",
    "find_mosquitto",
    "mqtt_collector",
]

COLLECTOR_CONNECT_TIMEOUT_S = 5.0

find_mosquitto = mosquitto_path
"""Path of the ``mosquitto`` binary (PATH, then /usr/sbin), or None: the agent's own lookup."""

MqttBroker = MosquittoBroker
"""Alias used by tests written against the fixture's type name."""


def _make_broker(tmp_path: Path, *, persistence: bool) -> Iterator[MosquittoBroker]:
    binary = mosquitto_path()
    if binary is None:
        pytest.skip("mosquitto not found in PATH or /usr/sbin (apt-get install mosquitto)")
    workdir = tmp_path / f"mosquitto-{uuid.uuid4().hex[:8]}"
    workdir.mkdir()
    with MosquittoBroker(workdir, binary=binary, persistence=persistence) as broker:
        yield broker


@pytest.fixture
def mqtt_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A fresh mosquitto on a free loopback port, persistence off; stopped at teardown."""
    yield from _make_broker(tmp_path, persistence=False)


@pytest.fixture
def mqtt_broker_persistent(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """Like ``mqtt_broker`` but sessions and retained messages survive stop()/start()."""
    yield from _make_broker(tmp_path, persistence=True)


class Received(NamedTuple):
    """One message seen by a :class:`MqttCollector`."""

    topic: str
    payload: bytes
    retain: bool


class MqttCollector:
    """Collects every message on a topic filter (paho, its own network thread).

    Use :func:`mqtt_collector` rather than this class directly.
    """

    def __init__(
        self, url: str, topic_filter: str, *, qos: int = 1, session_id: str | None = None
    ) -> None:
        self.url = url
        self.topic_filter = topic_filter
        self.qos = qos
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._subscribed = False
        self.subscriptions = 0
        """Number of SUBACKs so far: 1 after start, +1 after each reconnection."""
        client_id = session_id or f"collector-{uuid.uuid4().hex[:12]}"
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=session_id is None,
            protocol=mqtt.MQTTv311,
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=1)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not reason_code.is_failure:
            client.subscribe(self.topic_filter, qos=self.qos)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._cond:
            self._subscribed = False
            self._cond.notify_all()

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        with self._cond:
            self._subscribed = True
            self.subscriptions += 1
            self._cond.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def start(self, timeout_s: float = COLLECTOR_CONNECT_TIMEOUT_S) -> None:
        """Connect, subscribe and wait for the SUBACK."""
        host, port = parse_mqtt_url(self.url)
        self._client.connect(host, port, keepalive=10)
        self._client.loop_start()
        self.wait_subscribed(timeout_s)

    def wait_subscribed(
        self, timeout_s: float = COLLECTOR_CONNECT_TIMEOUT_S, *, at_least: int = 1
    ) -> None:
        """Block until subscribed, with at least ``at_least`` SUBACKs so far.

        After a broker restart pass ``at_least=previous + 1`` (see :attr:`subscriptions`):
        the collector may not have noticed the outage yet.

        Raises
        ------
        TimeoutError
            If the SUBACK does not arrive in time.
        """
        with self._cond:
            if not self._cond.wait_for(
                lambda: self._subscribed and self.subscriptions >= at_least, timeout=timeout_s
            ):
                msg = f"collector not subscribed to {self.topic_filter!r} within {timeout_s} s"
                raise TimeoutError(msg)

    def stop(self) -> None:
        """Disconnect and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()

    def snapshot(self) -> list[Received]:
        """Return a copy of the messages received so far."""
        with self._cond:
            return list(self.messages)

    def on_topic(self, topic: str) -> list[Received]:
        """Return the messages received so far on exactly ``topic``."""
        return [m for m in self.snapshot() if m.topic == topic]

    def wait_for(
        self,
        predicate: Callable[[list[Received]], bool] | Callable[[], bool],
        timeout_s: float = 5.0,
    ) -> bool:
        """Block until the predicate holds; return True.

        ``predicate`` is called with the message list (``lambda ms: len(ms) == 3``) or with no
        argument (``lambda: len(col.messages) == 3``); it runs under the collector's lock.

        Raises
        ------
        TimeoutError
            If it does not hold within ``timeout_s``; the message lists what did arrive.
        """
        if inspect.signature(predicate).parameters:
            with_msgs = cast("Callable[[list[Received]], bool]", predicate)

            def check() -> bool:
                return bool(with_msgs(self.messages))

        else:
            check = cast("Callable[[], bool]", predicate)
        with self._cond:
            if self._cond.wait_for(check, timeout=timeout_s):
                return True
            seen = [(m.topic, m.payload[:80], m.retain) for m in self.messages]
        msg = f"condition not met within {timeout_s} s; received {len(seen)}: {seen}"
        raise TimeoutError(msg)


@contextlib.contextmanager
def mqtt_collector(
    url: str,
    topic_filter: str = "bedside/v1/#",
    *,
    qos: int = 1,
    session_id: str | None = None,
) -> Iterator[MqttCollector]:
    """Collect messages on ``topic_filter``; subscribed before the body runs.

    Parameters
    ----------
    url
        ``mqtt://HOST:PORT``.
    topic_filter
        MQTT filter, wildcards allowed.
    qos
        Subscription QoS.
    session_id
        A fixed client id with a persistent session (clean_session false): with
        ``mqtt_broker_persistent`` nothing published during a broker outage is missed.
    """
    collector = MqttCollector(url, topic_filter, qos=qos, session_id=session_id)
    try:
        collector.start()
        yield collector
    finally:
        collector.stop()
