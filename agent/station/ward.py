"""The live ward as the web station shows it: every bed's status, vitals, alarms; no I/O.

:class:`Ward` is fed ``(topic, payload)`` pairs and says which bed changed; :meth:`Ward.bed_json`
renders one bed for the browser. Acknowledgements go through three states, as the agent
confirms them end to end (DESIGN.md, "Contracts"): ``none`` → ``pending`` (the station
published an ``alarms/ack``) → ``confirmed`` (the agent's ``updated`` event with
``acknowledged`` true arrived).

A bed whose retained status says ``offline`` (the agent's last will) is itself an alarm
(:data:`OFFLINE_CONDITION`), since the ward has lost sight of that patient.

A bed's retained ``alarms/active`` (:class:`~agent.messages.ActiveAlarmsMessage`) is the truth
when it was published: its alarms are added (a station that starts late shows what is already
active), and alarms the bed no longer lists are dropped when their last event is older than it.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import ValidationError

from agent.messages import (
    PRIORITY_RANK,
    ActiveAlarmsMessage,
    AlarmAck,
    AlarmCode,
    AlarmEvent,
    AlarmLifecycle,
    AlarmPriority,
    EcgChunkMessage,
    StatusMessage,
    VitalsMessage,
    decode_payload,
    parse_topic,
    validate_bed_segment,
)

__all__ = [
    "OFFLINE_CONDITION",
    "OFFLINE_PRIORITY",
    "AlarmView",
    "BedView",
    "Change",
    "Ward",
    "offline_alarm_id",
]

BedKey = tuple[str, str]
AckState = Literal["none", "pending", "confirmed"]

OFFLINE_CONDITION: Final = "bed_offline"
"""Station-side technical alarm: the bed's agent went offline (its MQTT last will)."""

OFFLINE_PRIORITY: Final = AlarmPriority.MEDIUM
"""Loss of a bed's monitoring at the central station is a technical alarm condition
(IEC 60601-1-8:2006, 3.49); medium priority because the patient may be unattended
(IEC 60601-1-8, Table 1: prompt response required), as central stations rank "no telemetry"."""

RECENT_ECG_CHUNKS: Final = 8
"""Live ECG chunks kept per bed so a new viewer sees the last seconds at once."""


def offline_alarm_id(unit: str, bed: str, status: StatusMessage) -> str:
    """Return the id of the ``bed_offline`` alarm an ``offline`` status starts (UUID5 hex).

    Derived from the bed and the status's ``ts_utc`` (for a last will: when it was registered,
    the same for every station), so every station names the same outage the same way.
    """
    name = f"bedside/{unit}/{bed}/offline/{status.ts_utc.isoformat()}"
    return uuid.uuid5(uuid.NAMESPACE_URL, name).hex


@dataclass
class AlarmView:
    """An active alarm with its acknowledgement state as this station knows it."""

    event: AlarmEvent
    ack_state: AckState = "none"
    ack_by: str | None = None

    @property
    def rank(self) -> int:
        """IEC 60601-1-8 priority rank: 0 high, 1 medium, 2 low."""
        return PRIORITY_RANK[self.event.priority]


@dataclass
class BedView:
    """What the station knows about one bed."""

    unit: str
    bed: str
    status: Literal["online", "offline", "unknown"] = "unknown"
    status_since_utc: datetime | None = None
    offline_alarm_id: str | None = None
    vitals: VitalsMessage | None = None
    vitals_rx_utc: datetime | None = None
    alarms: dict[str, AlarmView] = field(default_factory=dict)
    ecg: deque[EcgChunkMessage] = field(default_factory=lambda: deque(maxlen=RECENT_ECG_CHUNKS))

    def top_rank(self) -> int:
        """Return the most urgent active alarm's rank (3 when none); offline counts as medium."""
        ranks = [a.rank for a in self.alarms.values()]
        if self.status == "offline":
            ranks.append(PRIORITY_RANK[OFFLINE_PRIORITY])
        return min(ranks, default=3)


@dataclass(frozen=True)
class Change:
    """What one message changed."""

    bed: BedKey | None = None
    alarm: AlarmEvent | None = None
    vitals: VitalsMessage | None = None
    ecg: EcgChunkMessage | None = None
    invalid: bool = False


class Ward:
    """Per-bed state from MQTT messages; pure (the clock is passed in)."""

    def __init__(self) -> None:
        self.beds: dict[BedKey, BedView] = {}
        self.invalid_payloads = 0
        self._cleared: deque[str] = deque(maxlen=10_000)
        self._cleared_set: set[str] = set()

    def bed(self, unit: str, bed: str) -> BedView:
        """Return (creating it) the view of ``unit/bed``."""
        key = (unit, bed)
        if key not in self.beds:
            self.beds[key] = BedView(unit, bed)
        return self.beds[key]

    def apply(self, topic_name: str, payload: bytes, now_utc: datetime) -> Change:
        """Update the ward with one received message; say what changed."""
        parsed = parse_topic(topic_name)
        if parsed is None:
            return Change()
        unit, bed_name, kind = parsed
        try:
            validate_bed_segment(unit, "unit")
            validate_bed_segment(bed_name, "bed")
        except ValueError:
            return Change()
        key = (unit, bed_name)
        if kind == "ecg":
            try:
                chunk = EcgChunkMessage.model_validate_json(payload)
            except ValidationError:
                self.invalid_payloads += 1
                return Change(invalid=True)
            self.bed(unit, bed_name).ecg.append(chunk)
            return Change(ecg=chunk)
        if kind not in ("status", "vitals", "alarms", "alarms/ack", "alarms/active"):
            return Change()
        msg = decode_payload(kind, payload)
        if msg is None:
            self.invalid_payloads += 1
            return Change(invalid=True)
        view = self.bed(unit, bed_name)
        if isinstance(msg, StatusMessage):
            if view.status != msg.state:
                view.status = msg.state
                view.status_since_utc = now_utc
                if msg.state == "offline":
                    view.offline_alarm_id = offline_alarm_id(unit, bed_name, msg)
            return Change(bed=key)
        if isinstance(msg, ActiveAlarmsMessage):
            return self._apply_active(view, key, msg)
        if isinstance(msg, VitalsMessage):
            view.vitals = msg
            view.vitals_rx_utc = now_utc
            if view.status != "online":
                view.status = "online"
                view.status_since_utc = now_utc
            return Change(bed=key, vitals=msg)
        if isinstance(msg, AlarmEvent):
            return self._apply_alarm(view, key, msg)
        if isinstance(msg, AlarmAck):
            alarm = view.alarms.get(msg.alarm_id)
            if alarm is not None and alarm.ack_state == "none":
                alarm.ack_state = "pending"
                alarm.ack_by = msg.station_id
                return Change(bed=key)
        return Change()

    def _apply_alarm(self, view: BedView, key: BedKey, ev: AlarmEvent) -> Change:
        if ev.lifecycle == AlarmLifecycle.CLEARED:
            view.alarms.pop(ev.alarm_id, None)
            if ev.alarm_id not in self._cleared_set:
                if len(self._cleared) == self._cleared.maxlen:
                    self._cleared_set.discard(self._cleared[0])
                self._cleared.append(ev.alarm_id)
                self._cleared_set.add(ev.alarm_id)
            return Change(bed=key, alarm=ev)
        if ev.alarm_id in self._cleared_set:
            return Change()  # a late re-send of an alarm already cleared
        current = view.alarms.get(ev.alarm_id)
        if current is None:
            current = AlarmView(ev)
            view.alarms[ev.alarm_id] = current
        elif ev.lifecycle == AlarmLifecycle.RAISED and current.event.ts_utc > ev.ts_utc:
            return Change()  # an update overtook the raise: keep the newer content
        else:
            if ev.evidence.strip is None and current.event.evidence.strip is not None:
                ev = ev.model_copy(update={"evidence": current.event.evidence})
            current.event = ev
        if ev.acknowledged:
            current.ack_state = "confirmed"
            by = getattr(ev, "acknowledged_by", None)
            if by:
                current.ack_by = str(by)
        return Change(bed=key, alarm=ev)

    def _apply_active(self, view: BedView, key: BedKey, msg: ActiveAlarmsMessage) -> Change:
        listed = {ev.alarm_id for ev in msg.alarms}
        for alarm_id, held in list(view.alarms.items()):
            if alarm_id not in listed and held.event.ts_utc <= msg.ts_utc:
                del view.alarms[alarm_id]  # ended while this station did not hear the clear
        for ev in msg.alarms:
            current = view.alarms.get(ev.alarm_id)
            if current is None or current.event.ts_utc <= ev.ts_utc:
                self._apply_alarm(view, key, ev)
        return Change(bed=key, alarm=msg.alarms[-1] if msg.alarms else None)

    def mark_pending(self, unit: str, bed: str, alarm_id: str, username: str) -> bool:
        """Record that this station sent an acknowledgement; False if no such active alarm."""
        view = self.beds.get((unit, bed))
        alarm = None if view is None else view.alarms.get(alarm_id)
        if alarm is None:
            return False
        if alarm.ack_state == "none":
            alarm.ack_state = "pending"
            alarm.ack_by = username
        return True

    def find_alarm(self, alarm_id: str) -> tuple[BedView, AlarmView] | None:
        """Return the bed and active alarm with this id, or None."""
        for view in self.beds.values():
            if alarm_id in view.alarms:
                return view, view.alarms[alarm_id]
        return None

    def sorted_keys(self) -> list[BedKey]:
        """Beds, most urgent first (IEC 60601-1-8 rank), then by unit/bed name."""
        return sorted(self.beds, key=lambda k: (self.beds[k].top_rank(), k))

    def bed_json(self, key: BedKey, now_utc: datetime) -> dict[str, Any]:
        """Render one bed for the browser (ages in seconds at ``now_utc``)."""
        view = self.beds[key]
        v = view.vitals
        alarms = sorted(
            view.alarms.values(), key=lambda a: (a.rank, a.event.onset_utc, a.event.alarm_id)
        )
        alarm_list = [_alarm_json(a) for a in alarms]
        if view.status == "offline":
            since = view.status_since_utc or now_utc
            alarm_list.insert(
                0 if all(a.rank >= PRIORITY_RANK[OFFLINE_PRIORITY] for a in alarms) else 1,
                {
                    "alarm_id": view.offline_alarm_id or f"offline-{view.unit}-{view.bed}",
                    "condition": OFFLINE_CONDITION,
                    "priority": str(OFFLINE_PRIORITY),
                    "kind": "technical",
                    "message": "bed offline: the monitor lost its connection to the station",
                    "onset_utc": since.isoformat(),
                    "ack_state": "none",
                    "ack_by": None,
                    "station": True,
                },
            )
        news2: dict[str, Any] | None = None
        if v is not None and v.news2 is not None:
            news2 = {
                "total": v.news2.total,
                "risk": v.news2.risk,
                "complete": v.news2.complete,
                "parameters": [
                    {"param": p.param, "value": p.value, "score": p.score, "stale": p.stale}
                    for p in v.news2.parameters
                ],
                "missing": v.news2.missing,
            }
        sensor_off = any(
            a.event.condition in (AlarmCode.SENSOR_DISCONNECTED, AlarmCode.LEADS_OFF)
            for a in view.alarms.values()
        ) or bool(v is not None and v.leads_off)
        rank = view.top_rank()
        return {
            "key": f"{view.unit}/{view.bed}",
            "unit": view.unit,
            "bed": view.bed,
            "status": view.status,
            "sensor_disconnected": sensor_off,
            "vitals_age_s": _age(view.vitals_rx_utc, now_utc),
            "hr_bpm": None if v is None else v.hr_bpm,
            "spo2_pct": None if v is None else v.spo2_pct,
            "respiration_rate_per_min": None if v is None else v.respiration_rate_per_min,
            "temperature_c": None if v is None else v.temperature_c,
            "rhythm": None if v is None else v.rhythm,
            "news2": news2,
            "alarms": alarm_list,
            "top_priority": [str(p) for p in AlarmPriority][rank] if rank < 3 else None,
            "rank": rank,
        }

    def ward_json(self, now_utc: datetime) -> list[dict[str, Any]]:
        """Every bed, most urgent first."""
        return [self.bed_json(k, now_utc) for k in self.sorted_keys()]


def _age(rx: datetime | None, now: datetime) -> float | None:
    return None if rx is None else round(max((now - rx).total_seconds(), 0.0), 1)


def _alarm_json(a: AlarmView) -> dict[str, Any]:
    ev = a.event
    return {
        "alarm_id": ev.alarm_id,
        "condition": str(ev.condition),
        "priority": str(ev.priority),
        "kind": str(ev.kind),
        "message": ev.message,
        "onset_utc": ev.onset_utc.astimezone(UTC).isoformat(),
        "ts_utc": ev.ts_utc.astimezone(UTC).isoformat(),
        "latched": ev.latched,
        "ack_state": a.ack_state,
        "ack_by": a.ack_by,
        "station": False,
    }


def evidence_json(ev: AlarmEvent) -> dict[str, Any]:
    """Return an alarm's evidence for the bed view: strip, labelled beats, RR intervals, ms."""
    data: dict[str, Any] = json.loads(ev.evidence.model_dump_json())
    return data
