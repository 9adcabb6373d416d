"""The agent's MQTT publisher: retained status with last will, QoS 1 alarms through an outbox.

paho-mqtt 2.x runs its own network thread (``loop_start``) and reconnects by itself with an
exponential backoff. Alarms go through :class:`~agent.publish.outbox.Outbox` first and leave it
only when the broker's PUBACK arrives; on every (re)connection whatever is still in the outbox
is re-sent in order. Consumers dedupe by ``(alarm_id, lifecycle)``, so a duplicate after a
reconnect is harmless; a lost alarm is not.

Threading: the public methods are called from the asyncio thread, the ``_on_*`` callbacks run
in paho's thread. paho calls ``on_publish`` while holding its own outgoing-message lock, so our
locks are ordered: ``_send_lock`` (held around ``client.publish``, never taken in
``on_publish``) before ``_lock`` (a leaf lock: paho is never called while it is held).

The module is over 400 lines because that lock order and the outbox hand-off span every paho
callback and every public method; split across files, the invariant could not be read at once.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from agent.config import BedConfig, MqttConfig
from agent.errors import BrokerUnreachableError
from agent.messages import (
    AlarmAck,
    AlarmEvent,
    ManualObservations,
    StatusMessage,
    VitalsMessage,
    topic,
    utc_now,
)
from agent.publish.outbox import Outbox

__all__ = ["ConnackWaiter", "MqttPublisher", "connect_client", "mqtt_client_id"]

logger = logging.getLogger(__name__)

QOS_ALARM: Final = 1  # DESIGN.md: alarms QoS 1
QOS_STATUS: Final = 1  # retained status and last will must not be lost
QOS_VITALS: Final = 0  # DESIGN.md: vitals QoS 0, 1 Hz; a stale value is worthless

RECONNECT_MIN_DELAY_S: Final = 1
"""First reconnect attempt after an outage; paho doubles it on each failure."""

RECONNECT_MAX_DELAY_S: Final = 16
"""Cap of the reconnect backoff: an alarm waits at most this long after the broker is back."""

CLOSE_DRAIN_TIMEOUT_S: Final = 2.0
"""On close, how long to wait for unacknowledged alarms (they stay in the outbox otherwise)."""

EARLY_ACK_TTL_S: Final = 30.0
"""A PUBACK can arrive before ``publish()`` has returned its mid to us; we remember such
acks this long. Stale ones (from status messages) are pruned so a reused mid is never matched."""

EARLY_ACK_PRUNE_SIZE: Final = 64
"""Prune stale early acks once this many are remembered (vitals at 1 Hz add one each)."""

MAX_INFLIGHT_MESSAGES: Final = 100
"""QoS 1 messages on the wire at once; the rest wait in paho's queue, in order."""


def mqtt_client_id(bed: BedConfig, role: str = "agent") -> str:
    """Return the MQTT client id of a bed's agent: ``{device_id}-{unit}-{bed}[-role]``.

    Two agents configured for the same bed get the same id, so the broker disconnects the
    older one instead of letting two agents publish for one bed.
    """
    base = f"{bed.device_id}-{bed.unit}-{bed.bed}"
    return base if role == "agent" else f"{base}-{role}"


class ConnackWaiter:
    """The first CONNACK's outcome, handed from paho's thread to :func:`connect_client`."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: ReasonCode | None = None

    def set(self, reason: ReasonCode) -> None:
        """Record the first CONNACK reason and wake the waiter."""
        if not self.event.is_set():
            self.reason = reason
            self.event.set()


def _tcp_failure_reason(err: OSError, timeout_s: float) -> str:
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, socket.gaierror):
        return f"host name not resolved ({err.strerror or err})"
    if isinstance(err, TimeoutError):
        return f"no TCP connection within {timeout_s:g} s"
    return err.strerror or str(err) or type(err).__name__


def connect_client(
    client: mqtt.Client, url: str, host: str, port: int, keepalive_s: int, timeout_s: float
) -> ConnackWaiter:
    """Connect ``client``, start its network thread and wait for a successful CONNACK.

    The client's ``on_connect`` must call ``connack.set(reason_code)`` on the returned
    object; it is created and stored as ``client.user_data`` before connecting.

    Raises
    ------
    BrokerUnreachableError
        If the TCP connection is refused, the host does not resolve, nothing answers within
        ``timeout_s``, or the broker refuses the CONNECT (the reason says which).
    """
    connack = ConnackWaiter()
    client.user_data_set(connack)
    client.connect_timeout = timeout_s
    deadline = time.monotonic() + timeout_s
    try:
        client.connect(host, port, keepalive=keepalive_s)
    except OSError as err:
        raise BrokerUnreachableError(url, _tcp_failure_reason(err, timeout_s)) from err
    client.loop_start()
    ok = connack.event.wait(timeout=max(0.0, deadline - time.monotonic()))
    if ok and connack.reason is not None and not connack.reason.is_failure:
        return connack
    client.disconnect()
    client.loop_stop()
    if not ok:
        reason = f"no CONNACK within {timeout_s:g} s"
    else:
        reason = f"broker refused the connection ({connack.reason})"
    raise BrokerUnreachableError(url, reason)


class MqttPublisher:
    """Publishes one bed's alarms, vitals and status to the broker.

    Parameters
    ----------
    cfg
        Broker URL, credentials, keepalive, connect timeout and outbox path.
    bed
        Unit, bed and device id: topics and client id.
    source_desc
        Source description carried in the status message (``replay:232``).
    agent_version
        Agent version carried in the status message.
    on_ack
        Called with each valid :class:`~agent.messages.AlarmAck` received on this bed's
        ``alarms/ack`` topic. It runs in paho's network thread: hand work to asyncio with
        ``loop.call_soon_threadsafe``. Exceptions it raises are logged and swallowed.
    on_observations
        Called with each valid :class:`~agent.messages.ManualObservations`
        received on this bed's ``observations`` topic (nurse-entered BP, consciousness,
        oxygen...), in paho's thread like ``on_ack``.

    Raises
    ------
    sqlite3.Error
        If the outbox file cannot be opened.
    """

    def __init__(
        self,
        cfg: MqttConfig,
        bed: BedConfig,
        *,
        source_desc: str,
        agent_version: str,
        on_ack: Callable[[AlarmAck], None] | None = None,
        on_observations: Callable[[ManualObservations], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.bed = bed
        self.source_desc = source_desc
        self.agent_version = agent_version
        self.on_ack = on_ack
        self.on_observations = on_observations
        self._obs_topic = topic(bed.unit, bed.bed, "observations")
        self._status_topic = topic(bed.unit, bed.bed, "status")
        self._alarm_topic = topic(bed.unit, bed.bed, "alarms")
        self._vitals_topic = topic(bed.unit, bed.bed, "vitals")
        self._ack_topic = topic(bed.unit, bed.bed, "alarms/ack")
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._connected = False
        self._mid_to_row: dict[int, int] = {}
        self._early_acks: dict[int, float] = {}
        self._status_counters: dict[str, int] = {}
        self.counters: dict[str, int] = {
            "mqtt_connects": 0,
            "mqtt_disconnects": 0,
            "mqtt_vitals_dropped": 0,
            "mqtt_alarms_resent": 0,
            "mqtt_acks_received": 0,
            "mqtt_observations_received": 0,
            "mqtt_observations_invalid": 0,
            "mqtt_acks_invalid": 0,
        }
        self._outbox = Outbox(cfg.outbox_path)
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=mqtt_client_id(bed),
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        if cfg.username is not None:
            password = cfg.password.get_secret_value() if cfg.password is not None else None
            self._client.username_pw_set(cfg.username, password)
        self._client.reconnect_delay_set(RECONNECT_MIN_DELAY_S, RECONNECT_MAX_DELAY_S)
        self._client.max_inflight_messages_set(MAX_INFLIGHT_MESSAGES)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._subscribed = threading.Event()
        self._started = False
        self._closed = False

    # ------------------------------------------------------------------ public API

    @property
    def connected(self) -> bool:
        """Whether the broker has accepted our connection and it has not dropped since."""
        with self._lock:
            return self._connected

    def connect(self) -> None:
        """Connect, set the last will, publish ``online``, subscribe to acks, drain the outbox.

        Blocks up to ``cfg.connect_timeout_s`` for the first CONNACK. Afterwards paho
        reconnects by itself, with a backoff from ``RECONNECT_MIN_DELAY_S`` to
        ``RECONNECT_MAX_DELAY_S``, and each reconnection repeats the steps above.

        Raises
        ------
        BrokerUnreachableError
            If the broker refuses the connection, the host does not resolve, or no CONNACK
            arrives within ``cfg.connect_timeout_s``.
        """
        will = self._status_payload("offline")
        self._client.will_set(self._status_topic, will, qos=QOS_STATUS, retain=True)
        connect_client(
            self._client,
            self.cfg.url,
            self.cfg.host,
            self.cfg.port,
            self.cfg.keepalive_s,
            self.cfg.connect_timeout_s,
        )
        self._started = True
        # the ack and observation subscriptions are part of being ready: a nurse's ack sent
        # right after start-up must not fall between CONNACK and SUBACK
        if not self._subscribed.wait(timeout=self.cfg.connect_timeout_s):
            logger.warning("MQTT broker %s did not confirm our subscriptions yet", self.cfg.url)
        logger.info("connected to MQTT broker %s", self.cfg.url)

    def publish_alarm(self, event: AlarmEvent) -> None:
        """Store the alarm in the outbox, then publish it with QoS 1.

        The outbox row is deleted when the broker's PUBACK arrives. While disconnected the
        alarm only waits in the outbox; it is re-sent in order after the next connection.
        Never raises on a broker outage and never waits for the network.

        Raises
        ------
        sqlite3.Error
            If the outbox cannot be written (disk full, file removed): the alarm is not safe.
        """
        payload = event.model_dump_json().encode()
        with self._send_lock:
            row_id = self._outbox.add(self._alarm_topic, payload)
            if self.connected:
                self._send_row(row_id, self._alarm_topic, payload)
            else:
                logger.warning(
                    "broker unreachable: alarm %s (%s %s) waits in the outbox",
                    event.alarm_id,
                    event.condition,
                    event.lifecycle,
                )

    def publish_vitals(self, msg: VitalsMessage) -> None:
        """Publish vitals with QoS 0; dropped and counted (``mqtt_vitals_dropped``) offline."""
        if not self.connected:
            self._count("mqtt_vitals_dropped")
            return
        info = self._client.publish(
            self._vitals_topic, msg.model_dump_json().encode(), qos=QOS_VITALS
        )
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._count("mqtt_vitals_dropped")

    def publish_status(self, counters: dict[str, int]) -> None:
        """Publish the retained ``online`` status with the pipeline's counters and ours.

        The counters are remembered and sent again with the ``online`` status after each
        reconnection; while disconnected nothing is sent.
        """
        with self._lock:
            self._status_counters = dict(counters)
        if self.connected:
            self._publish_online()

    def pending_alarms(self) -> int:
        """Return the number of alarms not yet acknowledged by the broker (outbox rows)."""
        return len(self._outbox)

    def close(self) -> None:
        """Wait briefly for the outbox to drain, publish ``offline`` (retained), disconnect.

        Alarms still unacknowledged after ``CLOSE_DRAIN_TIMEOUT_S`` stay in the outbox for the
        next process. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        if self._started:
            deadline = time.monotonic() + CLOSE_DRAIN_TIMEOUT_S
            while self.connected and len(self._outbox) and time.monotonic() < deadline:
                time.sleep(0.02)
            if self.connected:
                info = self._client.publish(
                    self._status_topic,
                    self._status_payload("offline"),
                    qos=QOS_STATUS,
                    retain=True,
                )
                try:
                    info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
                except (RuntimeError, ValueError):
                    logger.warning("could not publish the offline status before closing")
            self._client.disconnect()
            self._client.loop_stop()
        left = len(self._outbox)
        if left:
            logger.warning("%d alarm(s) left in the outbox %s", left, self.cfg.outbox_path)
        self._outbox.close()
        logger.info("MQTT publisher closed")

    # ------------------------------------------------------------------ internals

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + n

    def _status_payload(self, state: str) -> bytes:
        with self._lock:
            counters = {**self._status_counters, **self.counters}
        msg = StatusMessage(
            device_id=self.bed.device_id,
            ts_utc=utc_now(),
            state="online" if state == "online" else "offline",
            agent_version=self.agent_version,
            source=self.source_desc,
            counters=counters,
        )
        return msg.model_dump_json().encode()

    def _publish_online(self) -> None:
        self._client.publish(
            self._status_topic, self._status_payload("online"), qos=QOS_STATUS, retain=True
        )

    def _send_row(self, row_id: int, row_topic: str, payload: bytes) -> None:
        """Publish one outbox row; the caller holds ``_send_lock``."""
        info = self._client.publish(row_topic, payload, qos=QOS_ALARM)
        with self._lock:
            acked = self._early_acks.pop(info.mid, None) is not None
            if not acked:
                self._mid_to_row[info.mid] = row_id
        if acked:
            self._outbox.remove(row_id)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: ConnackWaiter,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            logger.error("MQTT broker %s refused the connection: %s", self.cfg.url, reason_code)
            userdata.set(reason_code)
            return
        with self._send_lock:
            # Our outbox, not paho's memory, decides what is re-sent: drop paho's copies.
            client.drop_out_messages()
            with self._lock:
                self._connected = True
                self._mid_to_row.clear()
                self.counters["mqtt_connects"] += 1
                reconnect = self.counters["mqtt_connects"] > 1
            self._publish_online()
            client.subscribe([(self._ack_topic, 1), (self._obs_topic, 1)])
            rows = self._outbox.pending()
            for row_id, row_topic, payload in rows:
                self._send_row(row_id, row_topic, payload)
        if rows:
            self._count("mqtt_alarms_resent", len(rows))
            logger.info("re-sent %d alarm(s) from the outbox", len(rows))
        if reconnect:
            logger.info("reconnected to MQTT broker %s", self.cfg.url)
        userdata.set(reason_code)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: ConnackWaiter,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        failed = [rc for rc in reason_codes if rc.is_failure]
        if failed:
            logger.error("MQTT broker refused a subscription: %s", failed)
        self._subscribed.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: ConnackWaiter,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            was_connected = self._connected
            self._connected = False
            if was_connected:
                self.counters["mqtt_disconnects"] += 1
        if was_connected and not self._closed:
            logger.warning(
                "lost MQTT broker %s (%s); reconnecting, alarms wait in the outbox",
                self.cfg.url,
                reason_code,
            )

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: ConnackWaiter,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            row_id = self._mid_to_row.pop(mid, None)
            if row_id is None:
                # A status or vitals message, or an alarm whose mid we do not know yet.
                now = time.monotonic()
                self._early_acks[mid] = now
                if len(self._early_acks) > EARLY_ACK_PRUNE_SIZE:
                    for old_mid, seen in list(self._early_acks.items()):
                        if now - seen > EARLY_ACK_TTL_S:
                            del self._early_acks[old_mid]
        if row_id is not None:
            self._outbox.remove(row_id)

    def _on_message(
        self, client: mqtt.Client, userdata: ConnackWaiter, msg: mqtt.MQTTMessage
    ) -> None:
        if msg.topic == self._obs_topic:
            self._on_observations(msg)
            return
        if msg.topic != self._ack_topic:
            return
        try:
            ack = AlarmAck.model_validate_json(msg.payload)
        except ValidationError as err:
            self._count("mqtt_acks_invalid")
            logger.warning(
                "ignored an invalid alarm ack on %s: %d error(s), first: %s",
                msg.topic,
                err.error_count(),
                err.errors()[0]["msg"],
            )
            return
        self._count("mqtt_acks_received")
        logger.info("alarm %s acknowledged by %s", ack.alarm_id, ack.station_id)
        if self.on_ack is not None:
            try:
                self.on_ack(ack)
            except Exception:
                logger.exception("on_ack callback failed for alarm %s", ack.alarm_id)

    def _on_observations(self, msg: mqtt.MQTTMessage) -> None:
        try:
            obs = ManualObservations.model_validate_json(msg.payload)
        except ValidationError as err:
            self._count("mqtt_observations_invalid")
            first = err.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            logger.warning(
                "ignored invalid observations on %s: %s: %s", msg.topic, field, first["msg"]
            )
            return
        self._count("mqtt_observations_received")
        if self.on_observations is not None:
            try:
                self.on_observations(obs)
            except Exception:
                logger.exception("on_observations callback failed")
