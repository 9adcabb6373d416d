"""A small MQTT subscriber for consumers of the bed topics (the nurse station).

It hides paho behind three calls: :meth:`MqttSubscriber.connect`,
:meth:`MqttSubscriber.publish` (QoS 1, waits for the PUBACK) and
:meth:`MqttSubscriber.close`. Messages are handed to a callback in paho's network thread;
subscriptions are renewed after every reconnection.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import parse_mqtt_url
from agent.errors import BrokerUnreachableError
from agent.publish.mqtt import (
    RECONNECT_MAX_DELAY_S,
    RECONNECT_MIN_DELAY_S,
    ConnackWaiter,
    connect_client,
)

__all__ = ["MessageHandler", "MqttSubscriber"]

logger = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes, bool], None]
"""Called with ``(topic, payload, retained)`` in paho's network thread."""

SUBSCRIBER_KEEPALIVE_S: Final = 15
"""Same keepalive as the agent's default (MqttConfig.keepalive_s)."""


class MqttSubscriber:
    """Subscribes to topic filters and publishes the occasional QoS 1 message.

    Parameters
    ----------
    url
        Broker URL, ``mqtt://HOST[:PORT]``.
    topic_filters
        Filters to subscribe to (QoS 1) after each connection; may be empty.
    on_message
        Receives ``(topic, payload, retained)`` in paho's thread; exceptions are logged.
    client_id
        MQTT client id; a random one derived from ``station`` when None.
    connect_timeout_s
        How long :meth:`connect` waits for the CONNACK and for the first SUBACKs.

    Raises
    ------
    ValueError
        If ``url`` is not ``mqtt://HOST[:PORT]``.
    """

    def __init__(
        self,
        url: str,
        topic_filters: Sequence[str] = (),
        *,
        on_message: MessageHandler | None = None,
        client_id: str | None = None,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.host, self.port = parse_mqtt_url(url)
        self.topic_filters = tuple(topic_filters)
        self.on_message = on_message
        self.connect_timeout_s = connect_timeout_s
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self._connected = False
        self._started = False
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"bedside-sub-{uuid.uuid4().hex[:12]}",
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        self._client.reconnect_delay_set(RECONNECT_MIN_DELAY_S, RECONNECT_MAX_DELAY_S)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    @property
    def connected(self) -> bool:
        """Whether the broker has accepted the connection and it has not dropped since."""
        with self._lock:
            return self._connected

    def connect(self) -> None:
        """Connect, start the network thread, subscribe, and wait for the SUBACK.

        Raises
        ------
        BrokerUnreachableError
            If the connection is refused, the host does not resolve, or the CONNACK or the
            SUBACK does not arrive within ``connect_timeout_s``.
        """
        connect_client(
            self._client,
            self.url,
            self.host,
            self.port,
            SUBSCRIBER_KEEPALIVE_S,
            self.connect_timeout_s,
        )
        self._started = True
        if self.topic_filters and not self._subscribed.wait(self.connect_timeout_s):
            self.close()
            raise BrokerUnreachableError(self.url, f"no SUBACK within {self.connect_timeout_s:g} s")

    def publish(self, topic_name: str, payload: bytes, *, timeout_s: float = 5.0) -> bool:
        """Publish with QoS 1 (not retained) and wait for the broker's PUBACK.

        Returns
        -------
        bool
            True when the PUBACK arrived within ``timeout_s``; False otherwise (not
            connected, or the broker did not answer in time).
        """
        info = self._client.publish(topic_name, payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        try:
            info.wait_for_publish(timeout=timeout_s)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def close(self) -> None:
        """Disconnect and stop the network thread (idempotent)."""
        if self._started:
            self._started = False
            self._client.disconnect()
            self._client.loop_stop()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not reason_code.is_failure:
            with self._lock:
                self._connected = True
            if self.topic_filters:
                client.subscribe([(f, 1) for f in self.topic_filters])
        if isinstance(userdata, ConnackWaiter):  # stored by connect_client()
            userdata.set(reason_code)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            was = self._connected
            self._connected = False
        if was and self._started:
            logger.warning("lost MQTT broker %s (%s); reconnecting", self.url, reason_code)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [rc for rc in reason_codes if rc.is_failure]
        if refused:
            logger.error("broker refused subscription to %s: %s", self.topic_filters, refused)
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self.on_message is None:
            return
        try:
            self.on_message(msg.topic, bytes(msg.payload), bool(msg.retain))
        except Exception:
            logger.exception("message handler failed for topic %s", msg.topic)
