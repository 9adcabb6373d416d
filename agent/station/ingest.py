"""MQTT v5 ingest and the database writer of the web station.

:class:`StationMqtt` holds one paho-mqtt v5 client with two subscriptions, told apart by their
MQTT v5 subscription identifiers (MQTT 5.0, 3.8.2.1.2):

- ``live`` (:data:`LIVE_SUB_ID`): every bed's status, vitals, alarms, retained active alarms,
  acks and live ECG, so this station's browsers see everything;
- ``persist`` (:data:`PERSIST_SUB_ID`): ``$share/GROUP/...`` alarms, vitals and status (MQTT
  5.0, 4.8.2 shared subscriptions), so with several stations in one group each event reaches one
  station's :class:`DbWriter` (and the unique ``event_key`` stores it once even when it does not).

Two things reach the database by the live subscription instead, since a shared subscription
never receives retained messages (MQTT 5.0, 3.8.4): the events inside a bed's retained
``alarms/active`` (a station that starts late stores the alarms raised before it; the same
payload has the same ``event_key``, so nothing is stored twice). A bed's ``status`` turning
``offline`` (its last will, or a clean stop) is stored as a station-raised ``bed_offline``
alarm (raised, then cleared when the bed is back ``online``), with ids derived from the status
message so that several stations store it once.

:class:`DbWriter` is a thread that batches inserts off the event loop; it counts what it was
given and what it stored, so the benchmark can show that nothing was lost between the broker
and the database.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from agent.errors import BrokerUnreachableError
from agent.messages import (
    TOPIC_ROOT,
    ActiveAlarmsMessage,
    AlarmEvent,
    StatusMessage,
    VitalsMessage,
    parse_topic,
)
from agent.station.config import MqttSettings, RetentionSettings
from agent.station.db import Database
from agent.station.ward import OFFLINE_CONDITION, OFFLINE_PRIORITY, offline_alarm_id

__all__ = ["LIVE_SUB_ID", "PERSIST_SUB_ID", "DbWriter", "StationMqtt", "WriterStats"]

logger = logging.getLogger(__name__)

LIVE_SUB_ID: Final = 1
PERSIST_SUB_ID: Final = 2

LIVE_FILTERS: Final = tuple(
    f"{TOPIC_ROOT}/+/+/{k}"
    for k in ("status", "vitals", "alarms", "alarms/active", "alarms/ack", "ecg")
)
PERSIST_KINDS: Final = ("alarms", "vitals", "status")

CONNECT_TIMEOUT_S: Final = 10.0
"""The station waits this long for the CONNACK and SUBACKs at start (a loaded 2-core box)."""

WRITER_BATCH_S: Final = 0.2
"""The writer gathers rows for this long after the first one, then writes them in one
transaction (5 transactions/s at most; a row waits at most this long plus the write)."""
WRITER_BATCH_MAX: Final = 500
"""Rows in one transaction at most."""

RECONNECT_MIN_S: Final = 1
RECONNECT_MAX_S: Final = 30

MessageCallback = Callable[[str, bytes, bool], None]
"""``(topic, payload, live)``; called in paho's network thread."""


@dataclass
class WriterStats:
    """Counters of the database writer."""

    alarm_events_received: int = 0
    alarm_events_stored: int = 0
    alarm_events_duplicate: int = 0
    active_alarm_events_received: int = 0
    offline_events_stored: int = 0
    trend_rows_stored: int = 0
    write_errors: int = 0


class DbWriter:
    """Batches alarm events and trend rows into the database in its own thread.

    Parameters
    ----------
    db
        The database.
    retention
        ``trend_period_s``: one trend row per bed at most this often.
    """

    def __init__(self, db: Database, retention: RetentionSettings) -> None:
        self.db = db
        self.trend_period_s = retention.trend_period_s
        self.stats = WriterStats()
        self._q: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._last_trend: dict[tuple[str, str], datetime] = {}
        self._open_offline: dict[tuple[str, str], str] = {}  # bed → its open bed_offline id
        self._offline_checked: set[tuple[str, str]] = set()  # beds looked up in the database
        self._thread = threading.Thread(target=self._run, name="station-db-writer", daemon=True)
        self._idle = threading.Condition()
        self._pending = 0

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then stop the thread."""
        self._q.put(None)
        self._thread.join(timeout=30)

    def put_message(self, topic_name: str, payload: bytes) -> None:
        """Queue one persisted message (alarm event or vitals) for writing."""
        with self._idle:
            self._pending += 1
        self._q.put(("msg", (topic_name, payload, datetime.now(UTC))))

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until everything queued so far is written; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout_s)

    def _run(self) -> None:
        done = False
        while not done:
            item = self._q.get()
            batch = [item]
            # gather for WRITER_BATCH_S from the first row, not until a quiet gap: under steady
            # traffic (every bed's vitals at 1 Hz) a gap may never come, and an alarm would
            # wait for WRITER_BATCH_MAX rows before it reached the history
            deadline = time.monotonic() + WRITER_BATCH_S
            try:
                while item is not None and len(batch) < WRITER_BATCH_MAX:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    item = self._q.get(timeout=left)
                    batch.append(item)
            except queue.Empty:
                pass
            if None in batch:
                done = True
            self._write([b for b in batch if b is not None])

    def _write(self, batch: list[tuple[str, Any]]) -> None:
        events: list[tuple[str, str, AlarmEvent, bytes, datetime]] = []
        trends: list[dict[str, Any]] = []
        station_rows: list[dict[str, Any]] = []
        for _, (topic_name, payload, rx) in batch:
            parsed = parse_topic(topic_name)
            if parsed is None:
                continue
            unit, bed, kind = parsed
            if kind == "alarms":
                try:
                    ev = AlarmEvent.model_validate_json(payload)
                except ValueError:
                    continue
                self.stats.alarm_events_received += 1
                events.append((unit, bed, ev, payload, rx))
            elif kind == "alarms/active":
                try:
                    active = ActiveAlarmsMessage.model_validate_json(payload)
                except ValueError:
                    continue
                for ev in active.alarms:
                    self.stats.active_alarm_events_received += 1
                    events.append((unit, bed, ev, ev.model_dump_json().encode(), rx))
            elif kind == "status":
                try:
                    status = StatusMessage.model_validate_json(payload)
                except ValueError:
                    continue
                station_rows.extend(self._offline_rows(unit, bed, status, payload, rx))
            elif kind == "vitals":
                last = self._last_trend.get((unit, bed))
                if last is not None and (rx - last).total_seconds() < self.trend_period_s:
                    continue
                try:
                    v = VitalsMessage.model_validate_json(payload)
                except ValueError:
                    continue
                self._last_trend[(unit, bed)] = rx
                trends.append(
                    {
                        "unit": unit,
                        "bed": bed,
                        "ts_utc": rx,
                        "hr_bpm": v.hr_bpm,
                        "spo2_pct": v.spo2_pct,
                        "respiration_rate_per_min": v.respiration_rate_per_min,
                        "temperature_c": v.temperature_c,
                        "news2_total": None if v.news2 is None else v.news2.total,
                    }
                )
        try:
            stored = self.db.store_alarm_events(events)
            self.db.store_trends(trends)
            offline = self.db.store_station_events(station_rows)
        except Exception:
            logger.exception("database write failed (%d events, %d trends)", len(events), 0)
            self.stats.write_errors += 1
        else:
            self.stats.alarm_events_stored += stored
            self.stats.alarm_events_duplicate += len(events) - stored
            self.stats.trend_rows_stored += len(trends)
            self.stats.offline_events_stored += offline
        with self._idle:
            self._pending -= len(batch)
            self._idle.notify_all()

    def _offline_rows(
        self, unit: str, bed: str, status: StatusMessage, payload: bytes, rx: datetime
    ) -> list[dict[str, Any]]:
        """Return history rows for a status: offline raises bed_offline, online clears it."""
        key = (unit, bed)
        if status.state == "offline":
            alarm_id = offline_alarm_id(unit, bed, status)
            self._open_offline[key] = alarm_id
            self._offline_checked.add(key)
            return [_offline_row(unit, bed, alarm_id, status, payload, rx, raised=True)]
        open_id = self._open_offline.pop(key, None)
        if open_id is None and key not in self._offline_checked:
            # after a station restart: another process may have stored the raise
            open_id = self.db.open_station_alarm(unit, bed, OFFLINE_CONDITION)
        self._offline_checked.add(key)
        if open_id is None:
            return []
        return [_offline_row(unit, bed, open_id, status, payload, rx, raised=False)]


def _offline_row(
    unit: str,
    bed: str,
    alarm_id: str,
    status: StatusMessage,
    payload: bytes,
    rx: datetime,
    *,
    raised: bool,
) -> dict[str, Any]:
    """One ``bed_offline`` history row; its ``event_key`` is the alarm id and lifecycle only."""
    lifecycle = "raised" if raised else "cleared"
    if not raised:
        message = "bed back online"
    elif status.last_will:
        message = "bed offline: the monitor's connection was lost (MQTT last will)"
    else:
        message = "bed offline: the monitor stopped"
    # a last will's ts_utc is when it was registered, not when the bed vanished: take reception
    onset = rx if (status.last_will or not raised) else status.ts_utc.astimezone(UTC)
    return {
        "event_key": hashlib.sha256(f"station:{alarm_id}:{lifecycle}".encode()).hexdigest(),
        "alarm_id": alarm_id,
        "unit": unit,
        "bed": bed,
        "lifecycle": lifecycle,
        "condition": OFFLINE_CONDITION,
        "priority": str(OFFLINE_PRIORITY),
        "kind": "technical",
        "ts_utc": rx,
        "received_utc": rx,
        "onset_utc": onset,
        "onset_s": 0.0,  # no stream time: the station raised it
        "raised_s": 0.0,
        "cleared_s": None,
        "hr_bpm": None,
        "acknowledged": False,
        "acknowledged_by": None,
        "message": message,
        "payload": {"status": json.loads(payload), "station_raised": True},
        "strip": None,
    }


class StationMqtt:
    """The station's MQTT v5 client (live view, persistence, publishing acks).

    Parameters
    ----------
    settings
        Broker address, TLS files, credentials, shared-subscription group.
    station_id
        Client id prefix.
    on_message
        Receives ``(topic, payload, live)`` for live messages, in paho's thread.
    writer
        Receives the shared-subscription (persist) messages; None for a station that
        only views (no database writes).

    Raises
    ------
    ConfigError
        If the password file cannot be read.
    """

    def __init__(
        self,
        settings: MqttSettings,
        station_id: str,
        on_message: MessageCallback,
        writer: DbWriter | None,
    ) -> None:
        self.settings = settings
        self.on_message = on_message
        self.writer = writer
        self.received = 0
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"{station_id}-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if settings.username:
            self._client.username_pw_set(settings.username, settings.resolved_password())
        if settings.ca_file is not None:
            ctx = ssl.create_default_context(cafile=str(settings.ca_file))
            if settings.cert_file is not None:
                ctx.load_cert_chain(
                    str(settings.cert_file),
                    None if settings.key_file is None else str(settings.key_file),
                )
            self._client.tls_set_context(ctx)
        self._client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._acks_needed = 0

    @property
    def url(self) -> str:
        """``mqtt(s)://HOST:PORT`` of the broker (no credentials)."""
        scheme = "mqtts" if self.settings.ca_file is not None else "mqtt"
        return f"{scheme}://{self.settings.host}:{self.settings.port}"

    def connect(self) -> None:
        """Connect, subscribe, wait for the SUBACKs.

        Raises
        ------
        BrokerUnreachableError
            If the broker refuses or does not answer within :data:`CONNECT_TIMEOUT_S`.
        """
        try:
            self._client.connect(
                self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s
            )
        except (OSError, ssl.SSLError) as err:
            raise BrokerUnreachableError(self.url, str(err)) from err
        self._client.loop_start()
        if not self._subscribed.wait(CONNECT_TIMEOUT_S):
            self.close()
            raise BrokerUnreachableError(self.url, f"no SUBACK within {CONNECT_TIMEOUT_S:g} s")

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()

    def publish(
        self, topic_name: str, payload: bytes, *, qos: int = 1, timeout_s: float = 5.0
    ) -> bool:
        """Publish and wait for the PUBACK (QoS 1); True when the broker confirmed."""
        info = self._client.publish(topic_name, payload, qos=qos)
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            logger.error("broker %s refused the station: %s", self.url, reason_code)
            return
        live = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
        live.SubscriptionIdentifier = LIVE_SUB_ID
        opts = SubscribeOptions(qos=1)
        client.subscribe([(f, opts) for f in LIVE_FILTERS], properties=live)
        self._acks_needed = 1
        if self.writer is not None:
            persist = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
            persist.SubscriptionIdentifier = PERSIST_SUB_ID
            group = self.settings.share_group
            client.subscribe(
                [(f"$share/{group}/{TOPIC_ROOT}/+/+/{k}", opts) for k in PERSIST_KINDS],
                properties=persist,
            )
            self._acks_needed = 2

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if any(rc.is_failure for rc in reason_codes):
            logger.error("broker refused a subscription: %s", reason_codes)
        self._acks_needed -= 1
        if self._acks_needed <= 0:
            self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.received += 1
        ids = getattr(msg.properties, "SubscriptionIdentifier", None) or [LIVE_SUB_ID]
        payload = bytes(msg.payload)
        try:
            if PERSIST_SUB_ID in ids and self.writer is not None:
                self.writer.put_message(msg.topic, payload)
            elif self.writer is not None and msg.topic.endswith("/alarms/active"):
                self.writer.put_message(msg.topic, payload)  # retained: live subscription only
            if LIVE_SUB_ID in ids:
                self.on_message(msg.topic, payload, bool(msg.retain))
        except Exception:
            logger.exception("station could not handle a message on %s", msg.topic)
