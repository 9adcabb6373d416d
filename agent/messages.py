"""Wire contracts: every MQTT payload the agent publishes or consumes (DESIGN.md, "Contracts").

Every model is frozen, forbids unknown fields and carries ``schema_version``, ``device_id``
and ``ts_utc``. Topics are built by :func:`topic` only. A change to any model changes its JSON
Schema, which ``tests/agent/test_messages.py`` compares with the committed snapshot in
``tests/agent/schemas/``: a published payload never changes by accident.

Times: ``*_s`` fields are *stream time*, seconds from the first sample of the stream (for a
replayed record, seconds from the start of the record), so offline analysis and the live agent
agree; ``*_utc`` fields are timezone-aware UTC wall-clock times for humans.

Every payload on the wire is here, including the one the agent receives rather than publishes
(:class:`ManualObservations`, from the nurse station, which has no ``device_id``) and the enums
it carries (:class:`Consciousness`, :class:`SpO2Scale`, which :mod:`agent.vitals.news2`
scores). The module is over 400 lines for that reason: one file is the whole wire contract.
Its numeric bounds come from :mod:`firmware_bridge.limits`; nothing here imports ``agent.vitals``.
"""

from __future__ import annotations

import enum
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Final, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from firmware_bridge.limits import (
    RESPIRATION_RATE_MAX_PLAUSIBLE_PER_MIN,
    RESPIRATION_RATE_MIN_PLAUSIBLE_PER_MIN,
    SYSTOLIC_BP_MAX_PLAUSIBLE_MMHG,
    SYSTOLIC_BP_MIN_PLAUSIBLE_MMHG,
    TEMPERATURE_MAX_PLAUSIBLE_C,
    TEMPERATURE_MIN_PLAUSIBLE_C,
)

SCHEMA_VERSION: Final = 1
"""Version of every payload below; bump it when a published field changes meaning."""

TOPIC_ROOT: Final = "bedside/v1"

_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class AamiClass(enum.StrEnum):
    """AAMI EC57 heartbeat classes (ANSI/AAMI EC57:2012, Table 1)."""

    N = "N"  # normal and bundle-branch-block beats
    S = "S"  # supraventricular ectopic
    V = "V"  # ventricular ectopic
    F = "F"  # fusion of ventricular and normal
    Q = "Q"  # paced, unclassifiable


class AlarmPriority(enum.StrEnum):
    """Alarm priority as defined by IEC 60601-1-8:2006+A1:2012, 6.1.2 (Table 1)."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


PRIORITY_RANK: Final[dict[AlarmPriority, int]] = {
    AlarmPriority.HIGH: 0,
    AlarmPriority.MEDIUM: 1,
    AlarmPriority.LOW: 2,
}
"""Sort key: lower is more urgent."""


class AlarmCondition(enum.StrEnum):
    """Kind of alarm condition, IEC 60601-1-8:2006, 3.36 (physiological) and 3.49 (technical)."""

    PHYSIOLOGICAL = "physiological"
    TECHNICAL = "technical"


class AlarmCode(enum.StrEnum):
    """Every alarm the agent can raise (DESIGN.md, "Alarm")."""

    ASYSTOLE = "asystole"
    VFIB = "vfib"
    VTACH = "vtach"
    EXTREME_BRADY = "extreme_brady"
    EXTREME_TACHY = "extreme_tachy"
    HR_HIGH = "hr_high"
    HR_LOW = "hr_low"
    PAUSE = "pause"
    AFIB = "afib"
    RUN_PVCS = "run_pvcs"
    PAIR_PVCS = "pair_pvcs"
    BIGEMINY = "bigeminy"
    TRIGEMINY = "trigeminy"
    FREQUENT_PVCS = "frequent_pvcs"
    NEWS2_URGENT = "news2_urgent"
    NEWS2_EMERGENCY = "news2_emergency"
    LEADS_OFF = "leads_off"
    SENSOR_DISCONNECTED = "sensor_disconnected"
    SIGNAL_POOR = "signal_poor"
    BATTERY_LOW = "battery_low"
    PIPELINE_STALLED = "pipeline_stalled"
    OUTBOX_FAILED = "outbox_failed"
    DELIVERY_REFUSED = "delivery_refused"


TECHNICAL_CODES: Final = frozenset(
    {
        AlarmCode.LEADS_OFF,
        AlarmCode.SENSOR_DISCONNECTED,
        AlarmCode.SIGNAL_POOR,
        AlarmCode.BATTERY_LOW,
        AlarmCode.PIPELINE_STALLED,
        AlarmCode.OUTBOX_FAILED,
        AlarmCode.DELIVERY_REFUSED,
    }
)


class AlarmLifecycle(enum.StrEnum):
    """Lifecycle of one alarm id: ``raised`` once, ``updated`` any number of times, ``cleared``."""

    RAISED = "raised"
    UPDATED = "updated"
    CLEARED = "cleared"


class AlarmPhase(enum.StrEnum):
    """Phase of one alarm event, as IHE PCD Alarm Communication Management (PCD-04) names them.

    ``start`` (raised), ``update`` (changed, e.g. acknowledged), ``escalate`` (re-announced
    unacknowledged at a higher escalation level), ``end`` (cleared).
    """

    START = "start"
    UPDATE = "update"
    ESCALATE = "escalate"
    END = "end"


class AlarmState(enum.StrEnum):
    """Alarm state (IEC 60601-1-8:2006+A1:2012, 6.11.2: latching and non-latching signals).

    ``active``: the condition is (or is held) active; ``latched``: the condition has ended but
    the latched alarm waits for an acknowledgement; ``inactive``: ended.
    """

    ACTIVE = "active"
    LATCHED = "latched"
    INACTIVE = "inactive"


_LIFECYCLE_PHASE: Final = {
    "raised": AlarmPhase.START,
    "updated": AlarmPhase.UPDATE,
    "cleared": AlarmPhase.END,
}


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = Field(
        default=SCHEMA_VERSION, description="Payload schema version."
    )
    device_id: str = Field(description="Agent identity (no patient identifiers).")
    ts_utc: datetime = Field(description="UTC time the message was created.")


def utc_now() -> datetime:
    """Return the current timezone-aware UTC time."""
    return datetime.now(UTC)


class BeatEvidence(BaseModel):
    """One labelled beat shown as alarm evidence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    t_s: float = Field(description="Stream time of the R-peak, s.")
    rr_ms: float | None = Field(description="RR interval ending at this beat, ms.")
    aami_class: AamiClass | None = Field(
        default=None, description="AAMI EC57 class, when a beat classifier ran."
    )
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)


class EcgStrip(BaseModel):
    """A short single-lead ECG strip around an alarm's onset."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fs_hz: float = Field(gt=0, description="Sampling rate of samples_uv, Hz.")
    t0_s: float = Field(description="Stream time of samples_uv[0], s.")
    samples_uv: list[int] = Field(description="ECG, µV, rounded to integers.")


class AlarmEvidence(BaseModel):
    """What the agent saw when it decided: recent RR intervals, labelled beats, an ECG strip."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rr_ms: list[float] = Field(default_factory=list, description="Recent RR intervals, ms.")
    beats: list[BeatEvidence] = Field(default_factory=list)
    strip: EcgStrip | None = Field(default=None, description="Up to 6 s of ECG, or None.")
    hr_bpm: float | None = Field(default=None, description="Averaged HR at the decision, bpm.")


class AlarmEvent(_Message):
    """An alarm lifecycle event, published with QoS 1 on ``.../alarms``."""

    alarm_id: str = Field(description="Unique id of this alarm occurrence (UUID4 hex).")
    condition: AlarmCode
    priority: AlarmPriority
    kind: AlarmCondition
    lifecycle: AlarmLifecycle
    onset_s: float = Field(description="Stream time at which the condition became true, s.")
    onset_utc: datetime = Field(description="Wall-clock time of onset_s.")
    raised_s: float = Field(description="Stream time at which the agent raised the alarm, s.")
    cleared_s: float | None = Field(default=None, description="Stream time of the clear, s.")
    latched: bool = Field(default=False, description="Stays active until acknowledged.")
    acknowledged: bool = Field(default=False)
    message: str = Field(description="Human-readable alarm text for the nurse station.")
    evidence: AlarmEvidence = Field(default_factory=AlarmEvidence)
    model_versions: dict[str, str] = Field(
        default_factory=dict, description="Model name → version (sha256 prefix) that decided."
    )
    phase: AlarmPhase = Field(
        default=AlarmPhase.START,
        description="IHE PCD-04 phase: start, update, escalate, end (from lifecycle if absent).",
    )
    state: AlarmState = Field(
        default=AlarmState.ACTIVE,
        description="active, latched (condition gone, waits for an ack) or inactive (ended).",
    )
    acknowledged_by: str | None = Field(
        default=None, description="Identity of the station whose acknowledgement the agent took."
    )
    acknowledged_utc: datetime | None = Field(
        default=None, description="When the agent took the acknowledgement, UTC."
    )
    escalation_level: int = Field(
        default=0, ge=0, description="0 when raised; +1 at each unacknowledged re-announcement."
    )
    ended_unacknowledged: bool = Field(
        default=False, description="Cleared (phase end) without anyone acknowledging it."
    )

    @model_validator(mode="before")
    @classmethod
    def _phase_from_lifecycle(cls, data: object) -> object:
        """Older payloads (no phase / state) get them from ``lifecycle``."""
        if isinstance(data, dict) and "phase" not in data and "lifecycle" in data:
            lifecycle = str(data["lifecycle"])
            data = {**data, "phase": _LIFECYCLE_PHASE.get(lifecycle, AlarmPhase.UPDATE)}
            if "state" not in data and lifecycle == "cleared":
                data["state"] = AlarmState.INACTIVE
        return data


class News2Parameter(BaseModel):
    """One NEWS2 parameter as scored: its value, where it came from and how old it is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    param: str = Field(description="respiration_rate, spo2, air_or_oxygen, systolic_bp, ...")
    value: float | bool | str = Field(description="The observed value (not rounded).")
    score: int | None = Field(description="Chart 1 score 0-3; None when not scored.")
    source: str = Field(description="ecg, edr, ble:<device>, manual[:<station>].")
    age_s: float = Field(ge=0.0, description="Age of the value, s.")
    stale: bool = Field(description="Older than its maximum age: shown, not scored.")


class News2Summary(BaseModel):
    """The bed's NEWS2 (Royal College of Physicians 2017) from what is available."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    total: int | None = Field(description="Sum over fresh parameters (a lower bound if partial).")
    complete: bool = Field(description="All seven parameters present and fresh.")
    risk: str | None = Field(description="low, low-medium, medium or high (RCP triggers).")
    urgent: bool = Field(description="Total >= 5 or any single parameter scoring 3.")
    emergency: bool = Field(description="Total >= 7.")
    spo2_scale: int = Field(description="SpO2 scale in use (1, or 2 for hypercapnic failure).")
    missing: list[str] = Field(default_factory=list)
    stale: list[str] = Field(default_factory=list)
    parameters: list[News2Parameter] = Field(default_factory=list)


class VitalsMessage(_Message):
    """Current vitals, published at 1 Hz with QoS 0 on ``.../vitals``."""

    t_s: float = Field(description="Stream time these vitals refer to, s.")
    hr_bpm: float | None = Field(default=None, description="IEC 60601-2-27 averaged HR, bpm.")
    rr_ms: float | None = Field(default=None, description="Last RR interval, ms.")
    beats_total: int = Field(default=0, ge=0, description="R-peaks detected since start.")
    signal_quality: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Signal-quality index of the last window."
    )
    leads_off: bool = Field(default=False)
    active_alarms: list[AlarmCode] = Field(default_factory=list)
    spo2_pct: float | None = Field(default=None, description="Latest SpO2, %.")
    respiration_rate_per_min: float | None = Field(
        default=None, description="Latest respiration rate, breaths/min."
    )
    respiration_source: str | None = Field(default=None, description="edr or manual.")
    temperature_c: float | None = Field(default=None, description="Latest temperature, °C.")
    rhythm: str | None = Field(
        default=None, description="Current rhythm label (PhysioNet code, e.g. AFIB), if known."
    )
    news2: News2Summary | None = Field(default=None, description="NEWS2, when any vital is known.")


class StatusMessage(_Message):
    """Agent status, retained, on ``.../status``; the last will publishes ``state='offline'``."""

    state: Literal["online", "offline"]
    agent_version: str = Field(default="")
    source: str = Field(default="", description="Source description, e.g. replay:232.")
    counters: dict[str, int] = Field(
        default_factory=dict, description="Drop and error counters (frames dropped, ...)."
    )
    last_will: bool | None = Field(
        default=None,
        description=(
            "true only on the last will the broker publishes when the agent vanished: its"
            " ts_utc is when the will was registered (the connection), not when the agent went"
            " offline, which no one can know in advance; a receiver takes the time it got the"
            " will. Absent on every status the agent publishes itself."
        ),
    )


class ActiveAlarmsMessage(_Message):
    """The bed's currently active alarms, retained on ``.../alarms/active``.

    Republished (retained, QoS 1) after every change and every (re)connection, so a station
    that starts late shows the truth; an empty list means no alarm is active.
    """

    alarms: list[AlarmEvent] = Field(
        default_factory=list, description="Latest event of every active alarm, oldest first."
    )


ECG_LEASE_S: Final = 30.0
"""A live ECG stream stops this long after the last lease renewal (a station that died), s.
Three renewals per lease (:data:`ECG_LEASE_RENEW_S`): two lost QoS 1 renewals do not stop it."""

ECG_LEASE_RENEW_S: Final = 10.0
"""A watching station renews its lease this often, s."""


class EcgChunkMessage(_Message):
    """Consecutive live ECG samples of one bed, QoS 0 on ``.../ecg`` (off by default).

    Published only while at least one station holds a lease (:class:`EcgControl`); chunks
    are dropped, never queued, when the link is slow (the live view shows the present).
    """

    fs_hz: float = Field(gt=0, description="Sampling rate of samples_uv, Hz.")
    t0_s: float = Field(description="Stream time of samples_uv[0], s.")
    samples_uv: list[int | None] = Field(
        description="ECG, µV, rounded to integers; null where the sensor flagged a sample invalid."
    )
    beats_t_s: list[float] = Field(
        default_factory=list, description="Stream times of R-peaks in the chunk, s (if known)."
    )


class EcgControl(_Message):
    """A station turning a bed's live ECG on (for ``lease_s``) or off, on ``.../ecg/control``.

    ``device_id`` is the sender's identity (as in :class:`AlarmAck`). A watching station renews
    its lease every :data:`ECG_LEASE_RENEW_S` and sends ``on=false`` when its last viewer
    leaves; a bed keeps one lease per ``station_id`` and streams while any is unexpired, so a
    station that dies stops its stream after ``lease_s`` at most.
    """

    station_id: str = Field(
        pattern=r"^[A-Za-z0-9_.:@-]{1,64}$", description="Identity of the requesting station."
    )
    on: bool = Field(description="True: stream for lease_s from now; false: drop this lease.")
    lease_s: float = Field(
        default=ECG_LEASE_S, gt=0, le=600, description="Lease length from reception, s."
    )


class AlarmAck(_Message):
    """Acknowledgement of one alarm by a nurse station, on ``.../alarms/ack``."""

    alarm_id: str
    station_id: str = Field(description="Identity of the acknowledging nurse station.")


class SpO2Scale(enum.IntEnum):
    """Which SpO2 row of chart 1 applies (RCP 2017, section "SpO2 scale 2").

    Scale 2 is only for patients with hypercapnic respiratory failure whose target range is
    88-92 %, prescribed by a clinician; every other patient is scored on scale 1.
    """

    SCALE_1 = 1
    SCALE_2 = 2


class Consciousness(enum.StrEnum):
    """ACVPU level (RCP 2017, chart 1 "Consciousness"; C = new confusion)."""

    ALERT = "A"
    CONFUSION = "C"
    VOICE = "V"
    PAIN = "P"
    UNRESPONSIVE = "U"


# The docstring below is the schema's "description" (tests/agent/schemas): edit it only with a
# snapshot update. PLAUSIBLE_RANGE is built from firmware_bridge.limits, as the bounds here are.
class ManualObservations(BaseModel):
    """Observations entered at the nurse station for one bed (MQTT ``.../observations``).

    Every field but ``ts_utc`` is optional: a nurse enters what was measured; at least one
    observation (or ``spo2_scale``) must be present. Ranges are the NEWS2 plausibility gates
    (:data:`agent.vitals.news2.PLAUSIBLE_RANGE`). No patient identifiers: the bed is in the
    topic, and ``entered_by`` is a role or station id (letters, digits, ``._:@-``; no spaces,
    so a person's full name does not fit).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = Field(default=1, description="Payload schema version.")
    ts_utc: AwareDatetime = Field(description="When the observations were made, UTC.")
    systolic_bp_mmhg: float | None = Field(
        default=None,
        ge=SYSTOLIC_BP_MIN_PLAUSIBLE_MMHG,
        le=SYSTOLIC_BP_MAX_PLAUSIBLE_MMHG,
        description="Systolic blood pressure, mmHg.",
    )
    consciousness: Consciousness | None = Field(
        default=None, description="ACVPU: A, C (new confusion), V, P or U."
    )
    supplemental_o2: bool | None = Field(
        default=None, description="True when the patient is on supplemental oxygen."
    )
    spo2_scale: SpO2Scale | None = Field(
        default=None,
        description="NEWS2 SpO2 scale (2 only for hypercapnic respiratory failure, prescribed).",
    )
    respiration_rate_per_min: float | None = Field(
        default=None,
        ge=RESPIRATION_RATE_MIN_PLAUSIBLE_PER_MIN,
        le=RESPIRATION_RATE_MAX_PLAUSIBLE_PER_MIN,
        description="Counted respiration rate, breaths/min.",
    )
    temperature_c: float | None = Field(
        default=None,
        ge=TEMPERATURE_MIN_PLAUSIBLE_C,
        le=TEMPERATURE_MAX_PLAUSIBLE_C,
        description="Body temperature, °C.",
    )
    entered_by: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.:@-]{1,64}$",
        description="Role or station id of who entered it (never patient data).",
    )

    @model_validator(mode="after")
    def _something_observed(self) -> Self:
        fields = (
            self.systolic_bp_mmhg,
            self.consciousness,
            self.supplemental_o2,
            self.spo2_scale,
            self.respiration_rate_per_min,
            self.temperature_c,
        )
        if all(v is None for v in fields):
            msg = "no observation: give at least one of the observation fields"
            raise ValueError(msg)
        return self


TopicKind = Literal[
    "status",
    "vitals",
    "alarms",
    "alarms/ack",
    "alarms/active",
    "ecg",
    "ecg/control",
    "observations",
]

OBSERVATIONS_TOPIC_KIND: Final = "observations"
"""Topic suffix of :class:`ManualObservations`: ``bedside/v1/{unit}/{bed}/observations``."""

PAYLOAD_MODELS: Final[dict[str, type[_Message]]] = {
    "status": StatusMessage,
    "vitals": VitalsMessage,
    "alarms": AlarmEvent,
    "alarms/ack": AlarmAck,
    "alarms/active": ActiveAlarmsMessage,
    "ecg": EcgChunkMessage,
    "ecg/control": EcgControl,
}
"""Topic suffix → payload model; the registry exported by ``bedside schema``."""


def validate_bed_segment(value: str, name: str) -> str:
    """Check one topic segment (unit or bed name).

    Raises
    ------
    ValueError
        If it is empty, longer than 32 characters, or has characters other than letters,
        digits, ``_`` and ``-`` (MQTT wildcards and separators are refused).
    """
    if not _SEGMENT.match(value):
        msg = f"{name} must be 1-32 letters, digits, '_' or '-', got {value!r}"
        raise ValueError(msg)
    return value


_BED_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_DEVICE_ID = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")


def validate_bed_identity(unit: str, bed: str, device_id: str | None = None) -> None:
    """Check the names an agent is *given* (config, ``--bed``, provisioning): no person fits.

    Stricter than :func:`validate_bed_segment` (which every receiver applies to topics): a unit
    and a bed are 1-32 **lowercase** letters, digits, ``-`` or ``_``, starting with a letter or
    digit (``icu``, ``bed12``, ``sr-3``); a device id is 1-64 lowercase letters, digits or
    ``-_.:``. Names as people write them (``John Smith``, ``JohnSmith``, ``Smith``) are refused;
    no pattern can refuse every name (``smith`` fits), so the rule is a guard against the usual
    mistake, stated in every error, not a proof. No standard fixes these names; the rule follows
    the MQTT contract's "no patient identifiers" (``docs/security.md``). Errors do not repeat
    the refused value, which may be a name.

    Raises
    ------
    ValueError
        Naming the field (``unit``, ``bed``, ``device_id``) and the rule it breaks.
    """
    rule = "lowercase letters, digits, '-' or '_' (1-32, starting with a letter or digit)"
    if not _BED_NAME.match(unit):
        msg = f"unit must be {rule}, e.g. icu (a place, never a patient's name)"
        raise ValueError(msg)
    if not _BED_NAME.match(bed):
        msg = f"bed must be {rule}, e.g. bed12 (a place, never a patient's name)"
        raise ValueError(msg)
    if device_id is not None and not _DEVICE_ID.match(device_id):
        msg = (
            "device_id must be 1-64 lowercase letters, digits, '-', '_', '.' or ':',"
            " e.g. pi-icu-bed12 (never a patient's name)"
        )
        raise ValueError(msg)


def topic(unit: str, bed: str, kind: TopicKind) -> str:
    """Build a topic ``bedside/v1/{unit}/{bed}/{kind}``.

    Raises
    ------
    ValueError
        If ``unit`` or ``bed`` is not a valid segment (see :func:`validate_bed_segment`).
    """
    validate_bed_segment(unit, "unit")
    validate_bed_segment(bed, "bed")
    return f"{TOPIC_ROOT}/{unit}/{bed}/{kind}"


def parse_topic(name: str) -> tuple[str, str, str] | None:
    """Split ``bedside/v1/{unit}/{bed}/{kind}`` into ``(unit, bed, kind)``, or None."""
    prefix = TOPIC_ROOT + "/"
    if not name.startswith(prefix):
        return None
    parts = name[len(prefix) :].split("/", 2)
    if len(parts) != 3:
        return None
    return parts[0], parts[1], parts[2]


def json_schemas() -> dict[str, dict[str, object]]:
    """Return the JSON Schema of every payload, keyed by topic suffix.

    Includes the nurse station's manual observations (``observations``), which the agent
    receives rather than publishes.
    """
    out: dict[str, dict[str, object]] = {
        name: model.model_json_schema() for name, model in PAYLOAD_MODELS.items()
    }
    out[OBSERVATIONS_TOPIC_KIND] = ManualObservations.model_json_schema()
    return out


def schemas_json() -> str:
    """Return :func:`json_schemas` as indented, key-sorted JSON text."""
    return json.dumps(json_schemas(), indent=2, sort_keys=True)


def decode_payload(kind: str, payload: bytes) -> _Message | None:
    """Decode a payload received on a topic of the given kind; None if unknown or invalid."""
    model = PAYLOAD_MODELS.get(kind)
    if model is None:
        return None
    try:
        return model.model_validate_json(payload)
    except ValidationError:
        return None


BedId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}/[A-Za-z0-9_-]{1,32}$")]
