"""The agent's MQTT publisher: MQTT v5 over TLS, QoS 1 alarms through an outbox, and more.

Retained status with last will, the retained list of active alarms, acks on a persistent
session.

paho-mqtt 2.x runs its own network thread (``loop_start``) and reconnects by itself with an
exponential backoff, from the first attempt on: :meth:`MqttPublisher.start` never waits for the
broker, so a bed is monitored and its alarms are kept on disk from the first second, broker or
not. Alarms go through :class:`~agent.publish.outbox.Outbox` first, written by one writer
thread (never on the event loop), and leave it only when the broker's PUBACK arrives *with a
success reason code* (MQTT v5, 3.4.2.1): a refused alarm (ACL, quota) stays in the outbox, is
counted, and is reported through ``on_problem``. On every (re)connection whatever is still in
the outbox is re-sent in order, and the retained ``alarms/active`` message is republished from
the outbox's active table. Consumers dedupe by ``(alarm_id, lifecycle, ts_utc)``.

The session is persistent (``clean_start=False`` and a session expiry, MQTT v5 3.1.2.11.2):
acknowledgements a station sends while the agent is offline wait at the broker and arrive
after the reconnection.

Threading: the public methods are called from the asyncio thread, the ``_on_*`` callbacks run
in paho's thread, outbox writes in the writer thread. paho calls ``on_publish`` while holding
its own outgoing-message lock, so our locks are ordered: ``_send_lock`` (held around
``client.publish``, never taken in ``on_publish``) before ``_lock`` (a leaf lock: paho is never
called while it is held).

Length: that lock order and the outbox hand-off span every paho callback and every public
method; split across files, the invariant could not be read at once.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from agent.config import BedConfig, MqttConfig
from agent.errors import BedsideError, BrokerUnreachableError, ConfigError
from agent.messages import (
    ActiveAlarmsMessage,
    AlarmAck,
    AlarmCode,
    AlarmEvent,
    AlarmLifecycle,
    AlarmPhase,
    AlarmState,
    EcgChunkMessage,
    EcgControl,
    ManualObservations,
    StatusMessage,
    VitalsMessage,
    topic,
    utc_now,
)
from agent.publish.outbox import Outbox, OutboxBusyError, OutboxError
from firmware_bridge.frames import EcgChunk

__all__ = [
    "DELIVERY_PROBLEM_CODES",
    "ConnackWaiter",
    "DeliveryError",
    "MqttPublisher",
    "connect_client",
    "make_client",
    "mqtt_client_id",
]

logger = logging.getLogger(__name__)

QOS_ALARM: Final = 1  # DESIGN.md: alarms QoS 1
QOS_STATUS: Final = 1  # retained status and last will must not be lost
QOS_VITALS: Final = 0  # DESIGN.md: vitals QoS 0, 1 Hz; a stale value is worthless
QOS_ECG: Final = 0  # DESIGN.md: live ECG QoS 0; a late chunk is worthless, never queued

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

OUTBOX_RETRY_MIN_S: Final = 0.05
OUTBOX_RETRY_MAX_S: Final = 2.0
"""Backoff of a busy outbox write (another connection holds the SQLite lock): doubles from
50 ms to 2 s, retried until it succeeds, each retry counted in ``outbox_retries``."""

OUTBOX_BUSY_ALARM_S: Final = 5.0
"""A write still busy after this long is reported (``on_problem("outbox_busy")``)."""

RESTART_END_MESSAGE: Final = "ended: the agent restarted and no longer knows this condition"

ProblemKind = Literal["outbox_failed", "outbox_busy", "delivery_refused", "connect_refused"]

DELIVERY_PROBLEM_CODES: Final[dict[ProblemKind, AlarmCode]] = {
    "outbox_failed": AlarmCode.OUTBOX_FAILED,
    "outbox_busy": AlarmCode.OUTBOX_FAILED,
    "delivery_refused": AlarmCode.DELIVERY_REFUSED,
    "connect_refused": AlarmCode.DELIVERY_REFUSED,
}
"""The technical alarm each publisher problem raises (:mod:`agent.runtime`)."""


class DeliveryError(BedsideError):
    """Something the publisher cannot fix by itself (kind and detail for a technical alarm).

    Attributes
    ----------
    kind : str
        ``outbox_failed`` (unrecoverable), ``outbox_busy``, ``delivery_refused`` (PUBACK
        with a failure reason code) or ``connect_refused`` (CONNACK refused: credentials).
    """

    def __init__(self, kind: ProblemKind, detail: str) -> None:
        super().__init__(detail)
        self.kind: ProblemKind = kind


def mqtt_client_id(bed: BedConfig, role: str = "agent") -> str:
    """Return the MQTT client id of a bed's agent: ``{device_id}-{unit}-{bed}[-role]``.

    Two agents configured for the same bed get the same id, so the broker disconnects the
    older one instead of letting two agents publish for one bed; the id also names the
    persistent session that holds the bed's queued acknowledgements.
    """
    base = f"{bed.device_id}-{bed.unit}-{bed.bed}"
    return base if role == "agent" else f"{base}-{role}"


def read_password(cfg: MqttConfig) -> str | None:
    """Return the broker password from ``cfg.password`` or ``cfg.password_file`` (first line).

    Raises
    ------
    ConfigError
        If the password file cannot be read (the message never shows its content).
    """
    if cfg.password is not None:
        return cfg.password.get_secret_value()
    if cfg.password_file is None:
        return None
    try:
        text = cfg.password_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        msg = f"cannot read mqtt.password_file {cfg.password_file}: {type(err).__name__}"
        raise ConfigError(msg, field="mqtt.password_file") from err
    return text.splitlines()[0] if text else ""


def make_client(cfg: MqttConfig, client_id: str) -> mqtt.Client:
    """Return a paho MQTT v5 client with ``cfg``'s TLS identity and credentials applied.

    Raises
    ------
    ConfigError
        If a TLS file is missing or invalid, or the password file cannot be read.
    """
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
    )
    if cfg.tls:
        for name in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
            path: Path | None = getattr(cfg, name)
            if path is not None and not path.is_file():
                msg = f"mqtt.{name}: {path} is not a file"
                raise ConfigError(msg, field=f"mqtt.{name}")
        try:
            client.tls_set(
                ca_certs=str(cfg.tls_ca_file) if cfg.tls_ca_file else None,
                certfile=str(cfg.tls_cert_file) if cfg.tls_cert_file else None,
                keyfile=str(cfg.tls_key_file) if cfg.tls_key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        except (ssl.SSLError, OSError, ValueError) as err:
            msg = f"cannot load the MQTT TLS files: {err}"
            raise ConfigError(msg, field="mqtt.tls_ca_file") from err
    if cfg.username is not None:
        client.username_pw_set(cfg.username, read_password(cfg))
    client.reconnect_delay_set(RECONNECT_MIN_DELAY_S, RECONNECT_MAX_DELAY_S)
    return client


class ConnackWaiter:
    """The first CONNACK's outcome, handed from paho's thread to :func:`connect_client`."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: ReasonCode | None = None
        self.closed: str | None = None

    def set(self, reason: ReasonCode) -> None:
        """Record the first CONNACK reason and wake the waiter."""
        if not self.event.is_set():
            self.reason = reason
            self.event.set()

    def close(self, reason: ReasonCode) -> None:
        """Record that the connection closed before any CONNACK (TLS refused, wrong port)."""
        if not self.event.is_set():
            self.closed = (
                "the broker closed the connection before CONNACK"
                f" ({reason}; a TLS listener that wants a client certificate does this)"
            )
            self.event.set()


def _tcp_failure_reason(err: OSError, timeout_s: float) -> str:
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, socket.gaierror):
        return f"host name not resolved ({err.strerror or err})"
    if isinstance(err, ssl.SSLError):
        return f"TLS handshake failed ({err.reason or err})"
    if isinstance(err, TimeoutError):
        return f"no TCP connection within {timeout_s:g} s"
    return err.strerror or str(err) or type(err).__name__


def session_properties(expiry_s: int) -> Properties:
    """Return CONNECT properties with a session expiry interval (MQTT v5, 3.1.2.11.2), s."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = expiry_s
    return props


def connect_client(
    client: mqtt.Client,
    url: str,
    host: str,
    port: int,
    keepalive_s: int,
    timeout_s: float,
    *,
    session_expiry_s: int = 0,
) -> ConnackWaiter:
    """Connect ``client``, start its network thread and wait for a successful CONNACK.

    The client's ``on_connect`` must call ``connack.set(reason_code)`` on the returned
    object; it is created and stored as ``client.user_data`` before connecting.

    Raises
    ------
    BrokerUnreachableError
        If the TCP connection is refused, the host does not resolve, the TLS handshake fails,
        nothing answers within ``timeout_s``, or the broker refuses the CONNECT (the reason
        says which).
    """
    connack = ConnackWaiter()
    client.user_data_set(connack)
    client.connect_timeout = timeout_s
    deadline = time.monotonic() + timeout_s
    try:
        client.connect(
            host,
            port,
            keepalive=keepalive_s,
            clean_start=session_expiry_s == 0,
            properties=session_properties(session_expiry_s),
        )
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
    elif connack.closed is not None:
        reason = connack.closed
    else:
        reason = f"broker refused the connection ({connack.reason})"
    raise BrokerUnreachableError(url, reason)


_Job = tuple[Literal["alarm"], AlarmEvent] | tuple[Literal["stop"], None]


class MqttPublisher:
    """Publishes one bed's alarms, active alarms, vitals and status to the broker.

    Parameters
    ----------
    cfg
        Broker URL, TLS files, credentials, keepalive, session expiry, outbox.
    bed
        Unit, bed and device id: topics, client id, outbox path.
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
        received on this bed's ``observations`` topic, in paho's thread like ``on_ack``.
    on_problem
        Called (from the writer or paho thread) with a :class:`DeliveryError` when an
        alarm cannot be stored or the broker refuses one; the runtime turns it into a
        technical alarm (and exits on ``outbox_failed``).

    Raises
    ------
    OutboxError
        If the outbox cannot be opened, or another process holds it.
    ConfigError
        If a TLS file or the password file cannot be read.
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
        on_problem: Callable[[DeliveryError], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.bed = bed
        self.source_desc = source_desc
        self.agent_version = agent_version
        self.on_ack = on_ack
        self.on_observations = on_observations
        self.on_problem = on_problem
        self._obs_topic = topic(bed.unit, bed.bed, "observations")
        self._ecg_topic = topic(bed.unit, bed.bed, "ecg")
        self._ecg_control_topic = topic(bed.unit, bed.bed, "ecg/control")
        self._ecg_leases: dict[str, float] = {}  # station_id → lease end, time.monotonic() s
        self._ecg_info: mqtt.MQTTMessageInfo | None = None  # the ECG chunk paho still holds
        self._ecg_streaming = False
        self._status_topic = topic(bed.unit, bed.bed, "status")
        self._alarm_topic = topic(bed.unit, bed.bed, "alarms")
        self._active_topic = topic(bed.unit, bed.bed, "alarms/active")
        self._vitals_topic = topic(bed.unit, bed.bed, "vitals")
        self._ack_topic = topic(bed.unit, bed.bed, "alarms/ack")
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._store_lock = threading.Lock()  # a stored row and the count below change together
        self._unstored = 0  # alarms queued for the writer and not yet in the outbox
        self._connected = False
        self._mid_to_row: dict[int, int] = {}
        self._early_acks: dict[int, tuple[float, ReasonCode | None]] = {}
        self._refused_rows: set[int] = set()
        self._status_counters: dict[str, int] = {}
        self.fatal_error: OutboxError | None = None
        """Set by the writer thread when the outbox cannot be written (unrecoverable)."""
        self.counters: dict[str, int] = {
            "mqtt_connects": 0,
            "mqtt_disconnects": 0,
            "mqtt_connect_refused": 0,
            "mqtt_vitals_dropped": 0,
            "mqtt_alarms_resent": 0,
            "mqtt_alarms_refused": 0,
            "mqtt_acks_received": 0,
            "mqtt_observations_received": 0,
            "mqtt_observations_invalid": 0,
            "mqtt_acks_invalid": 0,
            "ecg_controls_received": 0,
            "ecg_controls_invalid": 0,
            "ecg_chunks_published": 0,
            "ecg_chunks_dropped": 0,
            "ecg_chunks_unleased": 0,
            "ecg_stream_starts": 0,
            "ecg_stream_stops": 0,
            "outbox_retries": 0,
            "outbox_failures": 0,
            "alarms_ended_after_restart": 0,
        }
        path = cfg.resolved_outbox_path(bed.unit, bed.bed)
        self.outbox_path: Path | str = ":memory:" if str(path) == ":memory:" else path
        self._outbox = Outbox(self.outbox_path)
        try:
            self._client = make_client(cfg, mqtt_client_id(bed))
        except ConfigError:
            self._outbox.close()
            raise
        self._client.max_inflight_messages_set(MAX_INFLIGHT_MESSAGES)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._subscribed = threading.Event()
        self._jobs: queue.Queue[_Job] = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop, name="outbox-writer", daemon=True)
        self._started = False
        self._closed = False
        self._end_orphans()

    # ------------------------------------------------------------------ public API

    @property
    def connected(self) -> bool:
        """Whether the broker has accepted our connection and it has not dropped since."""
        with self._lock:
            return self._connected

    def start(self) -> None:
        """Start publishing without waiting for the broker (never raises on a network error).

        Sets the last will, starts the writer thread and paho's network thread, which
        connects (and reconnects) in the background with a backoff from
        ``RECONNECT_MIN_DELAY_S`` to ``RECONNECT_MAX_DELAY_S``. Each connection publishes
        ``online``, the active alarms, subscribes to acks and observations and drains the
        outbox.
        """
        self._prepare()
        self._client.connect_async(
            self.cfg.host,
            self.cfg.port,
            keepalive=self.cfg.keepalive_s,
            clean_start=self.cfg.session_expiry_s == 0,
            properties=session_properties(self.cfg.session_expiry_s),
        )
        self._client.loop_start()
        self._started = True
        logger.info("publishing to MQTT broker %s (connecting in the background)", self.cfg.url)

    def connect(self) -> None:
        """Like :meth:`start`, but wait up to ``cfg.connect_timeout_s`` for the first CONNACK.

        Raises
        ------
        BrokerUnreachableError
            If the broker refuses the connection, the host does not resolve, the TLS handshake
            fails, or no CONNACK arrives within ``cfg.connect_timeout_s``.
        """
        self._prepare()
        connect_client(
            self._client,
            self.cfg.url,
            self.cfg.host,
            self.cfg.port,
            self.cfg.keepalive_s,
            self.cfg.connect_timeout_s,
            session_expiry_s=self.cfg.session_expiry_s,
        )
        self._started = True
        # the ack and observation subscriptions are part of being ready: a nurse's ack sent
        # right after start-up must not fall between CONNACK and SUBACK
        if not self._subscribed.wait(timeout=self.cfg.connect_timeout_s):
            logger.warning("MQTT broker %s did not confirm our subscriptions yet", self.cfg.url)
        logger.info("connected to MQTT broker %s", self.cfg.url)

    def _prepare(self) -> None:
        will = self._will_payload()
        self._client.will_set(self._status_topic, will, qos=QOS_STATUS, retain=True)
        if not self._writer.is_alive():
            self._writer.start()

    def publish_alarm(self, event: AlarmEvent) -> None:
        """Queue the alarm for the writer thread: outbox first, then QoS 1 publish.

        Returns at once (never touches the disk or the network on the caller's thread); the
        order of alarms is kept. The outbox row is deleted when the broker's PUBACK arrives
        with a success reason code. While disconnected the alarm waits in the outbox.
        """
        with self._store_lock:
            self._unstored += 1
        self._jobs.put(("alarm", event))

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queued alarm is in the outbox; return whether it happened in time."""
        deadline = time.monotonic() + timeout_s
        while self._jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._jobs.unfinished_tasks == 0

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

    def offer_ecg(self, chunk: EcgChunk) -> None:
        """Publish a live ECG chunk on ``.../ecg`` (QoS 0) if a station holds a lease; never waits.

        Called on the event loop for every chunk the source delivers. Without an unexpired
        lease (:class:`~agent.messages.EcgControl`, one per station, ``lease_s`` from its
        reception) the chunk is ignored (``ecg_chunks_unleased``). While leased, at most one
        chunk is in paho's hands: if the previous one has not been written to the socket yet
        (a slow link, the broker gone), this one is dropped (``ecg_chunks_dropped``), so the
        live view never queues and never delays alarms. ``ecg_stream_starts`` /
        ``ecg_stream_stops`` count the transitions (the last lease expired or was released).
        """
        now = time.monotonic()
        with self._lock:
            leased = any(end > now for end in self._ecg_leases.values())
            if not leased:
                self._ecg_leases.clear()
            was = self._ecg_streaming
            self._ecg_streaming = leased
            if leased != was:
                self.counters["ecg_stream_starts" if leased else "ecg_stream_stops"] += 1
            if not leased:
                self.counters["ecg_chunks_unleased"] += 1
                return
            busy = self._ecg_info is not None and not self._ecg_info.is_published()
            if busy or not self._connected:
                self.counters["ecg_chunks_dropped"] += 1
                return
        samples = chunk.samples_uv
        msg = EcgChunkMessage(
            device_id=self.bed.device_id,
            ts_utc=chunk.t0_utc,
            fs_hz=chunk.fs_hz,
            t0_s=round(chunk.first_sample_idx / chunk.fs_hz, 4),
            samples_uv=[None if v != v else round(float(v)) for v in samples.tolist()],
        )
        info = self._client.publish(self._ecg_topic, msg.model_dump_json().encode(), qos=QOS_ECG)
        with self._lock:
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._ecg_info = info
                self.counters["ecg_chunks_published"] += 1
            else:
                self.counters["ecg_chunks_dropped"] += 1

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
        """Return the number of alarms not yet acknowledged by the broker.

        The outbox rows plus the alarms queued for the writer thread that are not stored yet.
        (Counting the writer's unfinished jobs instead counted an alarm twice while the writer
        was still publishing the row it had just stored.)
        """
        with self._store_lock:
            return len(self._outbox) + self._unstored

    def active_alarms(self) -> list[AlarmEvent]:
        """Return the bed's active alarms as recorded in the outbox, oldest first."""
        return [AlarmEvent.model_validate_json(p) for _, p in self._outbox.active()]

    def close(self) -> None:
        """Store queued alarms, wait briefly for the outbox to drain, publish ``offline``.

        Alarms still unacknowledged after ``CLOSE_DRAIN_TIMEOUT_S`` stay in the outbox for the
        next process. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        if self._writer.is_alive():
            self._jobs.put(("stop", None))
            self._writer.join()
        if self._started:
            deadline = time.monotonic() + CLOSE_DRAIN_TIMEOUT_S
            while self.connected and self._unrefused_pending() and time.monotonic() < deadline:
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
            logger.warning("%d alarm(s) left in the outbox %s", left, self.outbox_path)
        self._outbox.close()
        logger.info("MQTT publisher closed")

    # ------------------------------------------------------------------ internals

    def _unrefused_pending(self) -> int:
        with self._lock:
            refused = len(self._refused_rows)
        return max(0, len(self._outbox) - refused)

    def _end_orphans(self) -> None:
        """End the alarms a previous process left active (it died before clearing them)."""
        for _, payload in self._outbox.active():
            try:
                old = AlarmEvent.model_validate_json(payload)
            except ValidationError:
                logger.warning("dropped an unreadable active-alarm row from the outbox")
                old = None
            if old is None:
                continue
            ended = old.model_copy(
                update={
                    "lifecycle": AlarmLifecycle.CLEARED,
                    "phase": AlarmPhase.END,
                    "state": AlarmState.INACTIVE,
                    "ended_unacknowledged": not old.acknowledged,
                    "message": f"{old.message} ({RESTART_END_MESSAGE})",
                    "ts_utc": utc_now(),
                    "evidence": old.evidence.model_copy(update={"strip": None}),
                }
            )
            self._store(ended)
            self._count("alarms_ended_after_restart")
            logger.warning(
                "alarm %s (%s) was active when the agent stopped: ended",
                old.alarm_id,
                old.condition,
            )

    def _write_loop(self) -> None:
        while True:
            kind, event = self._jobs.get()
            try:
                if kind == "stop" or event is None:
                    return
                self._write_one(event)
            finally:
                self._jobs.task_done()

    def _write_one(self, event: AlarmEvent) -> None:
        """Store one alarm (retrying a busy outbox), then publish it; runs in the writer."""
        delay_s = OUTBOX_RETRY_MIN_S
        first_try = time.monotonic()
        reported = False
        while True:
            try:
                with self._store_lock:
                    row_id = self._store(event)
                    self._unstored -= 1
                break
            except OutboxBusyError as err:
                self._count("outbox_retries")
                if not reported and time.monotonic() - first_try >= OUTBOX_BUSY_ALARM_S:
                    reported = True
                    self._problem(DeliveryError("outbox_busy", str(err)))
                time.sleep(delay_s)
                delay_s = min(delay_s * 2, OUTBOX_RETRY_MAX_S)
            except OutboxError as err:
                self._count("outbox_failures")
                self.fatal_error = err
                logger.error("%s; alarm %s sent without the outbox", err, event.alarm_id)  # noqa: TRY400
                with self._store_lock:
                    self._unstored -= 1
                self._send_direct(event)
                self._problem(DeliveryError("outbox_failed", str(err)))
                return
        with self._send_lock:
            if self.connected:
                self._send_row(row_id, self._alarm_topic, event.model_dump_json().encode())
                self._publish_active()
            else:
                logger.warning(
                    "broker unreachable: alarm %s (%s %s) waits in the outbox",
                    event.alarm_id,
                    event.condition,
                    event.lifecycle,
                )

    def _store(self, event: AlarmEvent) -> int:
        payload = event.model_dump_json().encode()
        return self._outbox.add(
            self._alarm_topic,
            payload,
            alarm_id=event.alarm_id,
            active=event.lifecycle != AlarmLifecycle.CLEARED,
        )

    def _send_direct(self, event: AlarmEvent) -> None:
        if self.connected:
            self._client.publish(self._alarm_topic, event.model_dump_json().encode(), qos=QOS_ALARM)

    def _problem(self, problem: DeliveryError) -> None:
        if self.on_problem is None:
            return
        try:
            self.on_problem(problem)
        except Exception:
            logger.exception("on_problem callback failed")

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + n

    def _status_payload(self, state: str) -> bytes:
        with self._lock:
            counters = {**self._status_counters, **self.counters}
        counters["outbox_pending"] = len(self._outbox) if not self._closed else 0
        msg = StatusMessage(
            device_id=self.bed.device_id,
            ts_utc=utc_now(),
            state="online" if state == "online" else "offline",
            agent_version=self.agent_version,
            source=self.source_desc,
            counters=counters,
        )
        # exclude_none: last_will stays absent, so the status reads as it always did
        return msg.model_dump_json(exclude_none=True).encode()

    def _will_payload(self) -> bytes:
        """Return the last will: ``offline`` with ``last_will: true`` and no counters.

        The broker publishes it long after it was registered (at the first connection; paho
        registers it again unchanged on every reconnection), so its ``ts_utc`` can only be
        the registration time and any counters would be stale: ``last_will`` tells receivers
        to take the time they got it instead, and no counters are claimed.
        """
        msg = StatusMessage(
            device_id=self.bed.device_id,
            ts_utc=utc_now(),
            state="offline",
            agent_version=self.agent_version,
            source=self.source_desc,
            last_will=True,
        )
        return msg.model_dump_json(exclude_none=True).encode()

    def _publish_online(self) -> None:
        self._client.publish(
            self._status_topic, self._status_payload("online"), qos=QOS_STATUS, retain=True
        )

    def _publish_active(self) -> None:
        """Publish the retained list of active alarms (caller holds ``_send_lock``)."""
        msg = ActiveAlarmsMessage(
            device_id=self.bed.device_id, ts_utc=utc_now(), alarms=self.active_alarms()
        )
        self._client.publish(
            self._active_topic, msg.model_dump_json().encode(), qos=QOS_ALARM, retain=True
        )

    def _send_row(self, row_id: int, row_topic: str, payload: bytes) -> None:
        """Publish one outbox row; the caller holds ``_send_lock``."""
        info = self._client.publish(row_topic, payload, qos=QOS_ALARM)
        with self._lock:
            early = self._early_acks.pop(info.mid, None)
            if early is None:
                self._mid_to_row[info.mid] = row_id
        if early is not None:
            self._settle(row_id, early[1])

    def _settle(self, row_id: int, reason: ReasonCode | None) -> None:
        """Settle an outbox row's PUBACK: delete the row, or keep it if the broker refused it."""
        if reason is not None and reason.is_failure:
            with self._lock:
                self._refused_rows.add(row_id)
                self.counters["mqtt_alarms_refused"] += 1
            detail = f"the broker refused an alarm on {self._alarm_topic} ({reason})"
            logger.error("%s; it stays in the outbox", detail)
            self._problem(DeliveryError("delivery_refused", detail))
            return
        self._outbox.remove(row_id)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: ConnackWaiter | None,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._count("mqtt_connect_refused")
            logger.error("MQTT broker %s refused the connection: %s", self.cfg.url, reason_code)
            self._problem(
                DeliveryError(
                    "connect_refused", f"MQTT broker refused the connection ({reason_code})"
                )
            )
            if userdata is not None:
                userdata.set(reason_code)
            return
        with self._send_lock:
            # Our outbox, not paho's memory, decides what is re-sent: drop paho's copies.
            client.drop_out_messages()
            with self._lock:
                self._connected = True
                self._mid_to_row.clear()
                self._refused_rows.clear()
                self.counters["mqtt_connects"] += 1
                reconnect = self.counters["mqtt_connects"] > 1
            self._publish_online()
            with self._lock:
                self._ecg_info = None  # paho dropped what it held for the old connection
            client.subscribe(
                [(self._ack_topic, 1), (self._obs_topic, 1), (self._ecg_control_topic, 1)]
            )
            rows = self._outbox.pending()
            for row_id, row_topic, payload in rows:
                self._send_row(row_id, row_topic, payload)
            self._publish_active()
        if rows:
            self._count("mqtt_alarms_resent", len(rows))
            logger.info("re-sent %d alarm(s) from the outbox", len(rows))
        if reconnect:
            logger.info("reconnected to MQTT broker %s", self.cfg.url)
        if userdata is not None:
            userdata.set(reason_code)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: ConnackWaiter | None,
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
        userdata: ConnackWaiter | None,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            was_connected = self._connected
            self._connected = False
            if was_connected:
                self.counters["mqtt_disconnects"] += 1
        if isinstance(userdata, ConnackWaiter):
            userdata.close(reason_code)
        if was_connected and not self._closed:
            logger.warning(
                "lost MQTT broker %s (%s); reconnecting, alarms wait in the outbox",
                self.cfg.url,
                reason_code,
            )

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: ConnackWaiter | None,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            row_id = self._mid_to_row.pop(mid, None)
            if row_id is None:
                # A status or vitals message, or an alarm whose mid we do not know yet.
                now = time.monotonic()
                self._early_acks[mid] = (now, reason_code)
                if len(self._early_acks) > EARLY_ACK_PRUNE_SIZE:
                    for old_mid, (seen, _) in list(self._early_acks.items()):
                        if now - seen > EARLY_ACK_TTL_S:
                            del self._early_acks[old_mid]
        if row_id is not None:
            self._settle(row_id, reason_code)

    def _on_message(
        self, client: mqtt.Client, userdata: ConnackWaiter | None, msg: mqtt.MQTTMessage
    ) -> None:
        if msg.topic == self._obs_topic:
            self._on_observations(msg)
            return
        if msg.topic == self._ecg_control_topic:
            self._on_ecg_control(msg)
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

    def _on_ecg_control(self, msg: mqtt.MQTTMessage) -> None:
        """Take or release one station's live ECG lease (paho's thread)."""
        try:
            ctl = EcgControl.model_validate_json(msg.payload)
        except ValidationError as err:
            self._count("ecg_controls_invalid")
            logger.warning(
                "ignored an invalid ecg control on %s: %s", msg.topic, err.errors()[0]["msg"]
            )
            return
        with self._lock:
            self.counters["ecg_controls_received"] += 1
            if ctl.on:
                self._ecg_leases[ctl.station_id] = time.monotonic() + ctl.lease_s
            else:
                self._ecg_leases.pop(ctl.station_id, None)
        logger.info(
            "live ECG %s by %s (%g s lease)", "on" if ctl.on else "off", ctl.station_id, ctl.lease_s
        )
