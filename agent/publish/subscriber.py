"""A small MQTT subscriber for consumers of the bed topics (the nurse station).

It hides paho behind three calls: :meth:`MqttSubscriber.connect`,
:meth:`MqttSubscriber.publish` (QoS 1, waits for the PUBACK and checks its MQTT v5 reason code)
and :meth:`MqttSubscriber.close`. Messages are handed to a callback in paho's network thread;
subscriptions are renewed after every reconnection. MQTT v5, with the same TLS identity and
credential settings as the agent (:class:`agent.config.MqttConfig`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import MqttConfig, parse_mqtt_url
from agent.errors import BrokerUnreachableError
from agent.publish.mqtt import ConnackWaiter, connect_client, make_client

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
    security
        TLS files and credentials (its ``url`` is ignored: ``url`` wins); none by default.
    session_expiry_s
        MQTT v5 session expiry, s: with a fixed ``client_id``, the broker keeps the
        subscriptions and queues QoS 1 messages this long while disconnected (0: clean).

    Raises
    ------
    ValueError
        If ``url`` is not ``mqtt[s]://HOST[:PORT]``.
    ConfigError
        If a TLS file or the password file cannot be read.
    """

    def __init__(
        self,
        url: str,
        topic_filters: Sequence[str] = (),
        *,
        on_message: MessageHandler | None = None,
        client_id: str | None = None,
        connect_timeout_s: float = 5.0,
        security: MqttConfig | None = None,
        session_expiry_s: int = 0,
    ) -> None:
        self.url = url
        self.host, self.port = parse_mqtt_url(url)
        self.topic_filters = tuple(topic_filters)
        self.on_message = on_message
        self.connect_timeout_s = connect_timeout_s
        self.session_expiry_s = session_expiry_s
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self._connected = False
        self._started = False
        cfg = MqttConfig(url=url)
        if security is not None:
            cfg = security.model_copy(update={"url": url})
        self._client = make_client(cfg, client_id or f"bedside-sub-{uuid.uuid4().hex[:12]}")
        self._pubacks: dict[int, ReasonCode] = {}
        self._puback_cond = threading.Condition()
        self._client.on_publish = self._on_publish
        self.last_refusal: ReasonCode | None = None
        """Reason code of the last PUBACK that refused a publish (MQTT v5), if any."""
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
            session_expiry_s=self.session_expiry_s,
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
            True when a PUBACK with a success reason code arrived within ``timeout_s``;
            False otherwise (not connected, no answer in time, or refused: then
            :attr:`last_refusal` holds the reason, e.g. "Not authorized").
        """
        with self._puback_cond:
            info = self._client.publish(topic_name, payload, qos=1)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return False
            mid = info.mid
            if not self._puback_cond.wait_for(lambda: mid in self._pubacks, timeout=timeout_s):
                return False
            reason = self._pubacks.pop(mid)
        if reason.is_failure:
            self.last_refusal = reason
            return False
        return True

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._puback_cond:
            self._pubacks[mid] = reason_code
            self._puback_cond.notify_all()

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
        if isinstance(userdata, ConnackWaiter):  # stored by connect_client()
            userdata.close(reason_code)
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
