"""The nurse station: watches every bed on the broker, shows active alarms, acknowledges them.

:class:`WardState` is pure: it is fed ``(topic, payload)`` pairs and returns what changed, so it
is tested without a broker. :func:`run_nurse_station` does the I/O: an MQTT subscription on
``bedside/v1/+/+/#``, a live rich table (or one plain log line per event when stdout is not a
terminal), and ``ack`` commands typed on stdin.

Alarms are ordered as IEC 60601-1-8:2006+A1:2012, 6.1.2 ranks them (high, medium, low), then by
onset, oldest first. Agents re-send alarms after a reconnection, so events are deduplicated by
``(alarm_id, lifecycle)``.

Acknowledgement is end to end (issue 14): an ``ack`` typed here (by *row number* only, never an
id prefix) marks the alarm ``pending``; it shows ``acknowledged`` only when the agent confirms
with an ``updated`` event carrying ``acknowledged_by``. An ack seen on the ack topic is only
``pending`` too. ``--ack UNIT/BED:ALARM_ID`` exits non-zero when the bed's retained active-alarm
list does not hold that id, or no confirmation arrives within ``ACK_CONFIRM_TIMEOUT_S``. The
retained ``alarms/active`` message gives a station that starts late every active alarm.

Length: the engineers' terminal station in one module (state, rendering, typed commands).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from agent.config import MqttConfig
from agent.messages import (
    PRIORITY_RANK,
    TOPIC_ROOT,
    ActiveAlarmsMessage,
    AlarmAck,
    AlarmCondition,
    AlarmEvent,
    AlarmLifecycle,
    AlarmPriority,
    StatusMessage,
    VitalsMessage,
    decode_payload,
    parse_topic,
    topic,
    utc_now,
    validate_bed_segment,
)
from agent.publish.subscriber import MqttSubscriber

__all__ = [
    "ActiveAlarm",
    "BedState",
    "WardEvent",
    "WardState",
    "parse_ack_item",
    "render_table",
    "run_nurse_station",
]

logger = logging.getLogger(__name__)

SUBSCRIPTION: Final = f"{TOPIC_ROOT}/+/+/#"
"""Every bed's status, vitals, alarms, retained active alarms and acks."""

HR_LOG_PERIOD_S: Final = 10.0
"""Plain mode prints a bed's HR at most this often (vitals arrive at 1 Hz)."""

REFRESH_PERIOD_S: Final = 0.5
"""Live view refresh and stdin polling period."""

ACK_PUBLISH_TIMEOUT_S: Final = 5.0
"""How long an acknowledgement waits for the broker's PUBACK."""

ACK_CONFIRM_TIMEOUT_S: Final = 10.0
"""``--ack`` waits this long for the agent's confirmation (an ``updated`` event with
``acknowledged_by``); a live agent answers within one core step (well under 1 s)."""

ACTIVE_LIST_WAIT_S: Final = 3.0
"""``--ack`` waits this long for the bed's retained active-alarm list (sent at SUBACK)."""

VITALS_STALE_S: Final = 5.0
"""Vitals older than this (5 missed 1 Hz messages) show their age next to the HR."""

CONNECT_TIMEOUT_S: Final = 5.0
"""How long the nurse station waits for the broker when it starts."""

SEEN_EVENTS_MAX: Final = 10_000
"""Remembered ``(alarm_id, lifecycle)`` pairs for deduplication (days of alarms on a ward)."""

PRIORITY_STYLE: Final[dict[AlarmPriority, str]] = {
    AlarmPriority.HIGH: "bold red",
    AlarmPriority.MEDIUM: "yellow",
    AlarmPriority.LOW: "cyan",
}
"""IEC 60601-1-8 colours: high red, medium yellow, low cyan (or yellow)."""

EventKind = Literal["raised", "updated", "cleared", "status", "hr", "ack", "invalid", "active"]
BedKey = tuple[str, str]


@dataclass
class ActiveAlarm:
    """An alarm raised (or updated) and not yet cleared."""

    unit: str
    bed: str
    event: AlarmEvent
    acknowledged: bool = False
    """Confirmed by the agent (an event with ``acknowledged=True``)."""
    pending_by: str | None = None
    """A station sent an ack the agent has not confirmed yet."""

    @property
    def ack_text(self) -> str:
        """What the Ack column shows: ``yes (by)``, ``pending`` or nothing."""
        if self.acknowledged:
            by = self.event.acknowledged_by
            return f"yes ({by})" if by else "yes"
        return "pending" if self.pending_by else ""

    @property
    def sort_key(self) -> tuple[int, datetime, str]:
        """IEC priority rank (high first), then onset (oldest first), then id."""
        return (PRIORITY_RANK[self.event.priority], self.event.onset_utc, self.event.alarm_id)


@dataclass
class BedState:
    """What the station knows about one bed."""

    unit: str
    bed: str
    status: Literal["online", "offline", "unknown"] = "unknown"
    hr_bpm: float | None = None
    vitals_at_s: float | None = None  # station clock (monotonic), s
    hr_logged_at_s: float | None = None  # station clock of the last plain HR line, s
    alarms: dict[str, ActiveAlarm] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``unit/bed``."""
        return f"{self.unit}/{self.bed}"


@dataclass(frozen=True)
class WardEvent:
    """Something worth a line in the plain log."""

    kind: EventKind
    bed: str  # "unit/bed"
    text: str  # the line without the time stamp

    def line(self, when: datetime) -> str:
        """Return the log line, prefixed with the local time ``HH:MM:SS``."""
        return f"{when.strftime('%H:%M:%S')} {self.text}"


def _alarm_text(verb: str, bed: str, event: AlarmEvent) -> str:
    marker = " [technical]" if event.kind == AlarmCondition.TECHNICAL else ""
    cleared = f" cleared {event.cleared_s:.1f} s" if event.cleared_s is not None else ""
    return (
        f"{bed} {verb} {event.priority} {event.condition}{marker} onset {event.onset_s:.1f} s"
        f'{cleared} "{event.message}"'
    )


class WardState:
    """Per-bed state of a ward, built from MQTT messages; no I/O.

    Parameters
    ----------
    clock
        Monotonic clock, s (injected by tests).
    hr_log_period_s
        Minimum interval between two ``hr`` events of one bed, s.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        hr_log_period_s: float = HR_LOG_PERIOD_S,
    ) -> None:
        self.clock = clock
        self.hr_log_period_s = hr_log_period_s
        self.beds: dict[BedKey, BedState] = {}
        self.invalid_payloads = 0
        self._seen: set[tuple[str, str]] = set()
        self._seen_order: deque[tuple[str, str]] = deque()

    def bed_state(self, unit: str, bed: str) -> BedState:
        """Return (creating it if new) the state of ``unit/bed``."""
        key = (unit, bed)
        if key not in self.beds:
            self.beds[key] = BedState(unit, bed)
        return self.beds[key]

    def active_alarms(self) -> list[ActiveAlarm]:
        """Every active alarm of every bed: high before medium before low, then by onset."""
        alarms = [a for b in self.beds.values() for a in b.alarms.values()]
        return sorted(alarms, key=lambda a: a.sort_key)

    def find_alarm(self, ref: str) -> ActiveAlarm:
        """Find an active alarm by its full id.

        Raises
        ------
        LookupError
            If no active alarm has this id.
        """
        for alarm in self.active_alarms():
            if alarm.event.alarm_id == ref:
                return alarm
        msg = f"no active alarm has id {ref!r}"
        raise LookupError(msg)

    def alarm_at_row(self, ref: str) -> ActiveAlarm:
        """Return the alarm shown in row ``ref`` (1-based, the ``#`` column).

        Row numbers only: an id prefix such as ``9`` must never pick alarm ``9736b759``.

        Raises
        ------
        LookupError
            If ``ref`` is not a row number shown now.
        """
        alarms = self.active_alarms()
        if not ref.isdigit():
            msg = f"{ref!r} is not a row number: use the number in the # column"
            raise LookupError(msg)
        row = int(ref)
        if not 1 <= row <= len(alarms):
            msg = f"no row {row}: {len(alarms)} active alarm(s) shown"
            raise LookupError(msg)
        return alarms[row - 1]

    def _first_time(self, alarm_id: str, lifecycle: str) -> bool:
        key = (alarm_id, lifecycle)
        if key in self._seen:
            return False
        self._seen.add(key)
        self._seen_order.append(key)
        if len(self._seen_order) > SEEN_EVENTS_MAX:
            self._seen.discard(self._seen_order.popleft())
        return True

    def apply(self, topic_name: str, payload: bytes) -> list[WardEvent]:
        """Update the state with one received message; return the events worth logging.

        Messages on unknown topics or kinds (``ecg``) are ignored; invalid payloads are
        counted in :attr:`invalid_payloads` and reported as an ``invalid`` event.
        """
        parsed = parse_topic(topic_name)
        if parsed is None:
            return []
        unit, bed_name, kind = parsed
        if kind not in ("status", "vitals", "alarms", "alarms/ack", "alarms/active"):
            return []
        try:
            validate_bed_segment(unit, "unit")
            validate_bed_segment(bed_name, "bed")
        except ValueError:
            return []
        msg = decode_payload(kind, payload)
        bed = self.bed_state(unit, bed_name)
        if msg is None:
            self.invalid_payloads += 1
            return [WardEvent("invalid", bed.name, f"{bed.name} invalid {kind} payload ignored")]
        if isinstance(msg, StatusMessage):
            return self._apply_status(bed, msg)
        if isinstance(msg, VitalsMessage):
            return self._apply_vitals(bed, msg)
        if isinstance(msg, AlarmEvent):
            return self._apply_alarm(bed, msg)
        if isinstance(msg, AlarmAck):
            return self._apply_ack(bed, msg)
        if isinstance(msg, ActiveAlarmsMessage):
            return self._apply_active(bed, msg)
        return []  # pragma: no cover - decode_payload returns one of the five above

    def _apply_active(self, bed: BedState, msg: ActiveAlarmsMessage) -> list[WardEvent]:
        """Adopt the bed's retained active list: it is the truth (a late start shows it all)."""
        fresh: dict[str, ActiveAlarm] = {}
        for event in msg.alarms:
            if (event.alarm_id, AlarmLifecycle.CLEARED) in self._seen:
                continue
            current = bed.alarms.get(event.alarm_id)
            pending = current.pending_by if current is not None else None
            fresh[event.alarm_id] = ActiveAlarm(
                bed.unit,
                bed.bed,
                event,
                event.acknowledged,
                None if event.acknowledged else pending,
            )
            self._first_time(event.alarm_id, AlarmLifecycle.RAISED)
        added = [a for a in fresh if a not in bed.alarms]
        bed.alarms = fresh
        if not added:
            return []
        return [
            WardEvent("active", bed.name, _alarm_text("ACTIVE", bed.name, fresh[a].event))
            for a in added
        ]

    def _apply_status(self, bed: BedState, msg: StatusMessage) -> list[WardEvent]:
        if bed.status == msg.state:
            return []
        bed.status = msg.state
        return [WardEvent("status", bed.name, f"{bed.name} status {msg.state}")]

    def _apply_vitals(self, bed: BedState, msg: VitalsMessage) -> list[WardEvent]:
        now = self.clock()
        bed.hr_bpm = msg.hr_bpm
        bed.vitals_at_s = now
        if bed.hr_logged_at_s is not None and now - bed.hr_logged_at_s < self.hr_log_period_s:
            return []
        bed.hr_logged_at_s = now
        hr = f"{msg.hr_bpm:.0f} bpm" if msg.hr_bpm is not None else "-- bpm"
        return [WardEvent("hr", bed.name, f"{bed.name} HR {hr}")]

    def _apply_alarm(self, bed: BedState, event: AlarmEvent) -> list[WardEvent]:
        alarm_id = event.alarm_id
        if event.lifecycle == AlarmLifecycle.CLEARED:
            bed.alarms.pop(alarm_id, None)
            if not self._first_time(alarm_id, AlarmLifecycle.CLEARED):
                return []
            return [WardEvent("cleared", bed.name, _alarm_text("CLEARED", bed.name, event))]
        if (alarm_id, AlarmLifecycle.CLEARED) in self._seen:
            return []  # a late re-send of an alarm already cleared
        current = bed.alarms.get(alarm_id)
        acknowledged = event.acknowledged or (current is not None and current.acknowledged)
        pending = None if acknowledged or current is None else current.pending_by
        if event.lifecycle == AlarmLifecycle.RAISED:
            if not self._first_time(alarm_id, AlarmLifecycle.RAISED):
                return []
            if current is not None:
                return []  # an update overtook the raise: keep the newer content
            bed.alarms[alarm_id] = ActiveAlarm(bed.unit, bed.bed, event, acknowledged)
            return [WardEvent("raised", bed.name, _alarm_text("RAISED", bed.name, event))]
        if current is not None and current.event == event:
            return []  # duplicate update
        if current is not None and current.event.acknowledged and not event.acknowledged:
            # keep who acknowledged when a later update (escalation race) lacks it
            event = event.model_copy(
                update={
                    "acknowledged": True,
                    "acknowledged_by": current.event.acknowledged_by,
                    "acknowledged_utc": current.event.acknowledged_utc,
                }
            )
        bed.alarms[alarm_id] = ActiveAlarm(bed.unit, bed.bed, event, acknowledged, pending)
        verb = "ESCALATED" if event.phase == "escalate" else "UPDATED"
        if (
            event.acknowledged
            and event.acknowledged_by
            and not (current is not None and current.event.acknowledged)
        ):
            verb = f"ACKNOWLEDGED by {event.acknowledged_by}"
        return [WardEvent("updated", bed.name, _alarm_text(verb, bed.name, event))]

    def _apply_ack(self, bed: BedState, ack: AlarmAck) -> list[WardEvent]:
        """Mark an ack seen on the wire ``pending``: it is a request until the agent confirms."""
        alarm = bed.alarms.get(ack.alarm_id)
        if alarm is None or alarm.acknowledged or alarm.pending_by is not None:
            return []
        alarm.pending_by = ack.station_id
        text = (
            f"{bed.name} ACK pending {alarm.event.priority} {alarm.event.condition}"
            f" {ack.alarm_id[:8]} by {ack.station_id}"
        )
        return [WardEvent("ack", bed.name, text)]


def render_table(state: WardState, *, now_s: float | None = None) -> Table:
    """Build the live view: one row per active alarm (numbered), then one per quiet bed.

    Parameters
    ----------
    state
        The ward.
    now_s
        Station clock, s, to show the age of the last vitals; ``state.clock()`` when None.
    """
    now = state.clock() if now_s is None else now_s
    table = Table(title="bedside - nurse station", expand=True)
    for column in ("#", "Bed", "Status", "HR", "Priority", "Alarm", "Onset", "Ack"):
        if column == "Alarm":
            table.add_column(column, ratio=1, overflow="fold")
        else:
            table.add_column(column, no_wrap=True)

    def bed_cells(bed: BedState) -> tuple[Text, Text, str]:
        status_style = {"online": "green", "offline": "bold red"}.get(bed.status, "dim")
        if bed.hr_bpm is None or bed.vitals_at_s is None:
            hr = "--"
        else:
            age_s = now - bed.vitals_at_s
            hr = f"{bed.hr_bpm:.0f}" + (f" ({age_s:.0f} s ago)" if age_s > VITALS_STALE_S else "")
        return Text(bed.name), Text(bed.status, style=status_style), hr

    for row, alarm in enumerate(state.active_alarms(), start=1):
        event = alarm.event
        bed = state.bed_state(alarm.unit, alarm.bed)
        name, status, hr = bed_cells(bed)
        what = f"{event.condition}" + (" [T]" if event.kind == AlarmCondition.TECHNICAL else "")
        table.add_row(
            str(row),
            name,
            status,
            hr,
            str(event.priority),
            f"{what}: {event.message}",
            event.onset_utc.astimezone().strftime("%H:%M:%S"),
            alarm.ack_text,
            style=PRIORITY_STYLE[event.priority],
        )
    for key in sorted(state.beds):
        bed = state.beds[key]
        if bed.alarms:
            continue
        name, status, hr = bed_cells(bed)
        table.add_row("", name, status, hr, "", "", "", "")
    table.caption = "type 'ack N' (N = row number), 'q' to quit; [T] = technical alarm"
    return table


def parse_ack_item(item: str) -> tuple[str, str, str]:
    """Split ``UNIT/BED:ALARM_ID`` into ``(unit, bed, alarm_id)``.

    Raises
    ------
    ValueError
        If the item does not have that shape or a segment is invalid.
    """
    bed_part, sep, alarm_id = item.partition(":")
    unit, slash, bed = bed_part.partition("/")
    if not sep or not slash or not alarm_id:
        msg = f"acknowledgement must look like UNIT/BED:ALARM_ID, got {item!r}"
        raise ValueError(msg)
    validate_bed_segment(unit, "unit")
    validate_bed_segment(bed, "bed")
    return unit, bed, alarm_id


def _local_now() -> datetime:
    return datetime.now(UTC).astimezone()


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (OSError, ValueError, AttributeError):
        return False


def _send_ack(sub: MqttSubscriber, station_id: str, unit: str, bed: str, alarm_id: str) -> bool:
    ack = AlarmAck(device_id=station_id, ts_utc=utc_now(), alarm_id=alarm_id, station_id=station_id)
    return sub.publish(
        topic(unit, bed, "alarms/ack"),
        ack.model_dump_json().encode(),
        timeout_s=ACK_PUBLISH_TIMEOUT_S,
    )


class _AckWatch:
    """Collects the beds' retained active lists and the agents' ack confirmations."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.active: dict[BedKey, set[str]] = {}
        self.confirmed: dict[str, AlarmEvent] = {}

    def __call__(self, topic_name: str, payload: bytes, retained: bool) -> None:
        parsed = parse_topic(topic_name)
        if parsed is None:
            return
        unit, bed, kind = parsed
        msg = decode_payload(kind, payload)
        with self.cond:
            if isinstance(msg, ActiveAlarmsMessage):
                self.active[(unit, bed)] = {a.alarm_id for a in msg.alarms}
            elif isinstance(msg, AlarmEvent) and msg.acknowledged and msg.acknowledged_by:
                self.confirmed[msg.alarm_id] = msg
            self.cond.notify_all()


def _ack_once(
    broker_url: str,
    station_id: str,
    items: Sequence[str],
    console: Console,
    security: MqttConfig | None,
    confirm_timeout_s: float,
) -> int:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        targets = [parse_ack_item(item) for item in items]
    except ValueError as exc:
        err.print(f"error: {exc}", markup=False)
        return 2
    watch = _AckWatch()
    filters = sorted(
        {topic(u, b, "alarms") for u, b, _ in targets}
        | {topic(u, b, "alarms/active") for u, b, _ in targets}
    )
    sub = MqttSubscriber(
        broker_url,
        filters,
        on_message=watch,
        client_id=f"{station_id}-ack-{uuid.uuid4().hex[:6]}",
        connect_timeout_s=CONNECT_TIMEOUT_S,
        security=security,
    )
    sub.connect()
    code = 0
    try:
        for unit, bed, alarm_id in targets:
            with watch.cond:
                key = (unit, bed)
                watch.cond.wait_for(lambda k=key: k in watch.active, ACTIVE_LIST_WAIT_S)  # type: ignore[misc]
                known = watch.active.get((unit, bed))
            if known is not None and alarm_id not in known:
                err.print(f"error: {unit}/{bed} has no active alarm {alarm_id}", markup=False)
                code = 2
                continue
            if not _send_ack(sub, station_id, unit, bed, alarm_id):
                refusal = f" ({sub.last_refusal})" if sub.last_refusal else ""
                err.print(
                    f"error: the broker did not accept the ack of {alarm_id}{refusal}", markup=False
                )
                code = 1
                continue
            with watch.cond:
                wanted = alarm_id
                watch.cond.wait_for(lambda w=wanted: w in watch.confirmed, confirm_timeout_s)  # type: ignore[misc]
                confirmed = watch.confirmed.get(alarm_id)
            if confirmed is None:
                err.print(
                    f"error: {unit}/{bed} alarm {alarm_id}: ack pending, no confirmation from the"
                    f" agent within {confirm_timeout_s:g} s (it waits at the broker if the agent"
                    " is offline)",
                    markup=False,
                )
                code = 1
                continue
            when = confirmed.acknowledged_utc or confirmed.ts_utc
            console.print(
                f"{unit}/{bed} alarm {alarm_id} acknowledged by {confirmed.acknowledged_by}"
                f" at {when.astimezone().strftime('%H:%M:%S')} (confirmed by the agent)",
                markup=False,
            )
    finally:
        sub.close()
    return code


Item = tuple[Literal["msg", "cmd"], str, bytes]


def _read_commands(inbox: queue.Queue[Item]) -> None:
    for line in sys.stdin:
        inbox.put(("cmd", line.strip(), b""))
    inbox.put(("cmd", "q", b""))  # end of input


def run_nurse_station(
    broker_url: str,
    *,
    station_id: str = "nurse-station",
    duration_s: float | None = None,
    plain: bool = False,
    ack: Sequence[str] = (),
    security: MqttConfig | None = None,
    ack_timeout_s: float = ACK_CONFIRM_TIMEOUT_S,
    stop: threading.Event | None = None,
) -> int:
    """Run the nurse station until ``q``, Ctrl-C, ``duration_s`` or ``stop`` is set.

    Parameters
    ----------
    broker_url
        ``mqtt://HOST[:PORT]`` or ``mqtts://HOST[:PORT]``.
    station_id
        Identity carried in acknowledgements (and the MQTT client id prefix).
    duration_s
        Stop after this many seconds; None runs until ``q`` or Ctrl-C.
    plain
        One log line per event instead of the live table; also used when stdout is not a
        terminal.
    ack
        ``UNIT/BED:ALARM_ID`` items: publish one :class:`~agent.messages.AlarmAck` each, wait
        for the agent's confirmation, and return, without the live view.
    security
        TLS files (site CA, this station's certificate and key) and credentials.
    ack_timeout_s
        How long ``ack`` waits for each confirmation, s.
    stop
        Set from another thread to end the live view (checked every refresh period).

    Returns
    -------
    int
        Exit code: 0 when every ack was confirmed by its agent; 1 if the broker refused an
        ack or no confirmation came within ``ack_timeout_s`` (the ack is pending); 2 for a
        malformed item or an alarm id the bed does not list as active.

    Raises
    ------
    BrokerUnreachableError
        If the broker cannot be reached at start.
    ValueError
        If ``broker_url`` is not ``mqtt[s]://HOST[:PORT]``.
    ConfigError
        If a TLS file or the password file cannot be read.
    """
    console = Console(highlight=False)
    if ack:
        return _ack_once(broker_url, station_id, ack, console, security, ack_timeout_s)
    plain = plain or not console.is_terminal
    state = WardState()
    inbox: queue.Queue[Item] = queue.Queue()

    def on_message(topic_name: str, payload: bytes, retained: bool) -> None:
        inbox.put(("msg", topic_name, payload))

    sub = MqttSubscriber(
        broker_url,
        [SUBSCRIPTION],
        on_message=on_message,
        client_id=f"{station_id}-{uuid.uuid4().hex[:6]}",
        connect_timeout_s=CONNECT_TIMEOUT_S,
        security=security,
    )
    sub.connect()
    logger.info("nurse station %s subscribed to %s on %s", station_id, SUBSCRIPTION, broker_url)
    if _stdin_is_tty():
        threading.Thread(target=_read_commands, args=(inbox,), daemon=True).start()
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        if plain:
            _loop(state, sub, inbox, deadline, station_id, console, None, stop)
        else:
            with Live(render_table(state), console=console, auto_refresh=False) as live:
                _loop(state, sub, inbox, deadline, station_id, live.console, live, stop)
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
    return 0


def _loop(
    state: WardState,
    sub: MqttSubscriber,
    inbox: queue.Queue[Item],
    deadline: float | None,
    station_id: str,
    console: Console,
    live: Live | None,
    stop: threading.Event | None,
) -> None:
    while stop is None or not stop.is_set():
        wait_s = REFRESH_PERIOD_S
        if deadline is not None:
            wait_s = min(wait_s, deadline - time.monotonic())
            if wait_s <= 0:
                return
        try:
            kind, text, payload = inbox.get(timeout=wait_s)
        except queue.Empty:
            kind, text, payload = "cmd", "", b""
        if kind == "msg":
            for event in state.apply(text, payload):
                if event.kind == "invalid":
                    logger.warning("%s", event.text)
                elif live is None or event.kind != "hr":
                    console.print(event.line(_local_now()), markup=False, soft_wrap=True)
        elif text and _command(state, sub, station_id, text, console):
            return
        if live is not None:
            live.update(render_table(state), refresh=True)


def _command(
    state: WardState, sub: MqttSubscriber, station_id: str, line: str, console: Console
) -> bool:
    """Run one typed command; return True to quit."""
    words = line.split()
    if words in (["q"], ["quit"]):
        return True
    if len(words) == 2 and words[0] == "ack":
        try:
            alarm = state.alarm_at_row(words[1])
        except LookupError as exc:
            console.print(f"ack: {exc}", markup=False)
            return False
        if alarm.acknowledged:
            console.print(f"ack: row {words[1]} is already acknowledged", markup=False)
            return False
        if _send_ack(sub, station_id, alarm.unit, alarm.bed, alarm.event.alarm_id):
            alarm.pending_by = station_id
            console.print(
                f"{alarm.unit}/{alarm.bed} ACK pending for {alarm.event.condition}"
                f" {alarm.event.alarm_id[:8]} (until the agent confirms)",
                markup=False,
            )
        else:
            console.print("ack: the broker did not accept the acknowledgement", markup=False)
        return False
    console.print(f"unknown command {line!r}: use 'ack N' (row number) or 'q'", markup=False)
    return False
