"""The agent's configuration: one pydantic tree, loaded once by the CLI (no I/O here but TOML).

Precedence, highest first: CLI flags, environment variables (``BEDSIDE_`` prefix, ``__`` between
levels, e.g. ``BEDSIDE_MQTT__URL``), the TOML file given with ``--config``, then the defaults
below. Unknown keys are errors that name the field.

The module is over 400 lines because it is the whole tree in one place: one section class per
TOML table, each field with its description, unit and bounds. Device models embedded in it
come from :mod:`firmware_bridge.devices` (no bleak import), shared limits from
:mod:`firmware_bridge.limits`.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from agent.errors import ConfigError
from agent.messages import validate_bed_identity, validate_bed_segment
from firmware_bridge.devices import BleDeviceConfig
from firmware_bridge.limits import BATTERY_LOW_PCT


def _off_is_none(value: object) -> object:
    """Read ``"off"`` (any case, also ``"none"``, ``"null"``) as None for an optional limit.

    TOML and environment variables cannot write None, so a test that is off when its limit is
    None is switched off with ``"off"`` (``run_onset_premature = "off"`` in the TOML, or
    ``BEDSIDE_ALARMS__ECTOPY__RUN_ONSET_PREMATURE=off``).
    """
    if isinstance(value, str) and value.strip().lower() in {"off", "none", "null"}:
        return None
    return value


OffOrFloat = Annotated[float | None, BeforeValidator(_off_is_none)]
"""An optional limit: a number, or None (``"off"`` in TOML and environment variables)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BedConfig(_Section):
    """Where this agent sits; topics are ``bedside/v1/{unit}/{bed}/...`` (no patient ids).

    Names are checked by :func:`agent.messages.validate_bed_identity`: lowercase places
    (``icu/bed12``), so that a name as people write it does not fit.
    """

    unit: str = Field(default="ward1", description="Care unit name (topic segment, lowercase).")
    bed: str = Field(default="bed1", description="Bed name (topic segment, lowercase: bed12).")
    device_id: str = Field(
        default="bedside-agent", description="Agent identity carried in every message."
    )

    @model_validator(mode="after")
    def _segments(self) -> BedConfig:
        validate_bed_segment(self.unit, "unit")
        validate_bed_segment(self.bed, "bed")
        validate_bed_identity(self.unit, self.bed, self.device_id)
        return self


class SourceConfig(_Section):
    """What the agent reads from."""

    kind: Literal["simulate", "replay", "rr", "ble"] = Field(
        default="simulate",
        description=(
            "`simulate` (NeuroKit2, scripted events), `replay` (a WFDB record's ECG), `rr`"
            " (RR intervals only, as a Heart Rate Service strap sends them) or `ble` (the"
            " wearables listed in source.devices)."
        ),
    )
    devices: list[BleDeviceConfig] = Field(
        default_factory=list,
        description="ble: the bed's wearables ([[source.devices]] tables: kind, address or name).",
    )
    record: str | None = Field(
        default=None,
        description=(
            "WFDB record path without extension (replay; rr with rr_annotations), or a CSV"
            " file of RR intervals in ms (rr without rr_annotations)."
        ),
    )
    rr_annotations: str | None = Field(
        default=None,
        description="rr: read beats from this WFDB annotation file extension (e.g. `qrs`).",
    )
    channel: int = Field(default=0, ge=0, le=15, description="Signal channel to read.")
    speed: float = Field(
        default=1.0, gt=0.0, le=10_000.0, description="Replay speed, 1 = real time."
    )
    fs_hz: float | None = Field(
        default=None,
        ge=100.0,
        le=2000.0,
        description="Resample to this rate (130 behaves like a Polar H10), or keep the source's.",
    )
    chunk_s: float = Field(
        default=0.5,
        ge=0.01,
        le=5.0,
        description=(
            "Duration of each yielded chunk, s (replay, simulate). 0.5 s is about what a"
            " Polar H10 notification carries (73 samples at 130 Hz, 0.56 s), so a replay"
            " wakes the agent as often as the strap does; the alarms do not depend on the"
            " chunk size (tests/agent/core/test_chunk_invariance.py), and halving the steps"
            " from 0.25 s saves about a fifth of the live agent's CPU (docs/benchmarks.md,"
            " Session 7). A smaller chunk only publishes a decision up to that much sooner."
        ),
    )
    loop: bool = Field(default=False, description="Restart the record at its end (replay).")

    @model_validator(mode="after")
    def _record_for_replay(self) -> SourceConfig:
        if self.kind in {"replay", "rr"} and not self.record:
            msg = f"source.record is required when source.kind = '{self.kind}'"
            raise ValueError(msg)
        if self.kind == "ble" and not self.devices:
            msg = "source.devices must list at least one device when source.kind = 'ble'"
            raise ValueError(msg)
        if self.rr_annotations is not None and self.kind != "rr":
            msg = "source.rr_annotations applies only to source.kind = 'rr'"
            raise ValueError(msg)
        return self


class DspConfig(_Section):
    """Streaming ECG conditioning."""

    powerline_hz: Literal[50, 60] = Field(
        description="Mains frequency filtered out by ecg_clean: 50 (Europe, Asia) or 60 (Americas)."
    )
    window_s: float = Field(
        default=5.0,
        ge=4.0,
        le=60.0,
        description=(
            "Analysis window for cleaning and R-peaks, s (at least hop_s + 2 s; 5 s measured as"
            " good as 10 s at half the cost: agent.dsp.rpeaks.DEFAULT_WINDOW_S)."
        ),
    )
    hop_s: float = Field(
        default=2.0, ge=0.25, le=30.0, description="Step between analysis windows, s."
    )
    step_s: float = Field(
        default=0.0,
        ge=0.0,
        le=5.0,
        description=(
            "Live agent: step the core once this much contiguous ECG has arrived, s, joining"
            " the strap's notifications (about 0.56 s each for a Polar H10); what is held is"
            " stepped anyway after step_s of wall time without the next one. 0 (default) ="
            " step every notification. The outputs do not depend on it"
            " (tests/agent/core/test_chunk_invariance.py). Each step has a fixed cost: 1.0"
            " saves about 13 % of the live agent's CPU (docs/benchmarks.md, Session 29) but"
            " publishes a decision up to one notification later (0.5-0.56 s), above the 250 ms"
            " publish-latency target at real time. `bedside analyze` reads its own chunks and"
            " ignores it."
        ),
    )
    flatline_ptp_uv: float = Field(
        default=20.0,
        ge=0.0,
        le=1000.0,
        description="Peak-to-peak below this over flatline_s means a flat line (leads off), µV.",
    )
    flatline_s: float = Field(
        default=2.0, ge=0.5, le=30.0, description="Flat for this long raises leads_off, s."
    )
    invert_ecg: bool = Field(
        default=False,
        description=(
            "Turn the ECG over (multiply by -1) before any processing: a strap worn upside down"
            " or reversed electrodes. The beat model learned leads with an upright QRS (MLII)"
            " and misreads a reversed one (docs/beat_classifier.md, Limitations)."
        ),
    )

    @model_validator(mode="after")
    def _hop_fits(self) -> DspConfig:
        if self.hop_s >= self.window_s:
            msg = "dsp.hop_s must be shorter than dsp.window_s"
            raise ValueError(msg)
        return self


class EctopyConfig(_Section):
    """Ventricular ectopy alarm limits (sources: :mod:`agent.alarms.ectopy`).

    Defaults are the GE EK-Pro / Mindray V-tach definition (6 beats above 100 bpm), the Mindray
    V Series bigeminy and trigeminy definitions (3 cycles) and 10 PVCs/min.
    """

    vtach_min_beats: int = Field(
        default=6,
        ge=3,
        le=20,
        description="Consecutive V beats for V-tach (EK-Pro, Mindray default 6); shorter runs"
        " of 3 or more are run_pvcs.",
    )
    vtach_rate_bpm: float = Field(
        default=100.0,
        ge=80.0,
        le=250.0,
        description="V-tach needs the run's rate above this, bpm (EK-Pro adult 100).",
    )
    vtach_min_confidence: float = Field(
        default=0.9,
        ge=0.0,
        le=1.0,
        description="V-tach (high, latched) needs the V beats of its 6-beat window this"
        " confident on average (and each at least vtach_floor_confidence); a fast run of less"
        " certain V beats is run_pvcs (medium). Every beat >= 0.9 before: mitdb DS1 true /"
        " false V-tach 10/1 -> 8/0; nstdb 12-0 dB: 27 false (noise) -> 0.",
    )
    vtach_floor_confidence: float = Field(
        default=0.7,
        ge=0.0,
        le=1.0,
        description="No V beat of a V-tach window below this confidence (with the mean above"
        " vtach_min_confidence). A sustained VT whose labels wander between 0.8 and 1.0 (mitdb"
        " 223 at 1043 s, 39 s) was alarmed 28 s late when every beat had to reach 0.9.",
    )
    min_confidence: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Beats whose classifier confidence is below this count as unknown: they"
        " break runs and patterns and are not counted as PVCs.",
    )
    v_min_confidence: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="A beat called V counts as ventricular in the ectopy alarms only with at"
        " least this confidence; a less confident V is unknown: it cannot start or complete a"
        " run, pair, bigeminy or trigeminy. Out of fold on mitdb DS1 + svdb (beat CNN 2.0.0"
        " fold models), true / false ectopy alarms 576/201 at 0.5, 539/169 at 0.6, 508/126 at"
        " 0.7 (true runs 41 -> 19): to be chosen again with each retrained beat model"
        " (agent/alarms/ectopy.py).",
    )
    v_template_match: OffOrFloat = Field(
        default=0.95,
        ge=-1.0,
        le=1.0,
        description="A beat called V whose QRS matches the patient's dominant-beat template"
        " (inference.dominant_template) at least this well (shifted correlation,"
        " agent.inference.beat_features) and that is not premature is the patient's own beat"
        ' (e.g. bundle branch block), not a PVC: it counts as unknown. "off" (None): off.'
        " Chosen on DS1 + svdb out-of-fold (agent/alarms/ectopy.py).",
    )
    run_min_beat_corr: OffOrFloat = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description="Inside a run of V beats, a V beat that matches the V beat before it less"
        " than this (agent.inference.beat_features.beat_correlation) ends the run as an unknown"
        ' beat: a run or couplet needs consistent morphology. "off" (None): off.',
    )
    run_closer_to_dominant: OffOrFloat = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description="Inside an open run of one or two V beats, a V beat whose QRS matches the"
        " patient's dominant-beat template (template_corr) at least this well, and by 0.3"
        " better than it matches the V beat before it (beat_correlation), counts as a"
        " conducted beat: it is nearer the patient's own beat than the PVC it would extend."
        " Off by default: at 0.8 it removed false alarms out of fold on DS1 + svdb but only"
        ' lost true ones on the held-out DS2 (agent/alarms/ectopy.py). "off" (None): off.',
    )
    conducted_min_corr: OffOrFloat = Field(
        default=0.85,
        ge=-1.0,
        le=1.0,
        description="A V beat right after a beat called N or S whose QRS matches the patient's"
        " dominant-beat template less than this (template_corr) cannot continue a bigeminy or"
        " trigeminy cycle: that beat is not a clean conducted beat (most often a fusion beat"
        " the classifier called N). 0.85 is about the 2nd percentile of the template"
        " correlation of conducted beats out of fold on mitdb DS1 + svdb (37 % of fusion beats"
        ' called N fall below it; agent/alarms/ectopy.py). "off" (None): off.',
    )
    run_onset_premature: OffOrFloat = Field(
        default=0.9,
        gt=0.0,
        le=1.0,
        description="A pair or run of PVCs (not V-tach) needs its first V beat to be premature:"
        " its RR below this fraction of the median of the last 8 RR intervals of beats not"
        " counted as ventricular (agent/alarms/ectopy.py, 'Prematurity of a run'). V-tach is"
        " never held to it. Chosen on DS1 + svdb out-of-fold from off, 0.8, 0.9."
        ' "off" (None): off.',
    )
    lethal_chain: bool = Field(
        default=True,
        description="Alarm chain: a run, pair, bigeminy, trigeminy or PVCs/min decided while"
        " vtach or vfib is true is not raised (and its PVCs are not counted); the lethal"
        " alarm speaks for those beats (Mindray ePM 10.7.5.1 arrhythmia alarm chains; V Series"
        " 9.7.2.7). Off: every ectopy alarm on its own, as before session 25.",
    )
    bigeminy_min_cycles: int = Field(
        default=3,
        ge=2,
        le=20,
        description="Consecutive (N, V) cycles for bigeminy (Mindray V Series: 3).",
    )
    trigeminy_min_cycles: int = Field(
        default=3,
        ge=2,
        le=20,
        description="Consecutive (N, N, V) cycles for trigeminy (Mindray V Series: 3).",
    )
    frequent_pvcs_per_min: int = Field(
        default=10,
        ge=1,
        le=100,
        description="More PVCs than this within 60 s raises frequent_pvcs (Mindray range 1-100).",
    )
    event_hold_s: float = Field(
        default=5.0,
        ge=0.0,
        le=120.0,
        description="A pattern stays true this long after its last beat, s; a repeat within it"
        " extends the same alarm.",
    )


class AlarmConfig(_Section):
    """Alarm limits and delays.

    Defaults are typical adult monitor settings (HR limits 50/120 bpm as shipped on
    GE CARESCAPE and Philips IntelliVue monitors; asystole 4 s, pause 3 s as in the
    asystole and pause definitions used by IEC 60601-2-27 tests) and are configurable per bed.
    """

    hr_high_bpm: float = Field(default=120.0, ge=60.0, le=300.0, description="HR high limit.")
    hr_low_bpm: float = Field(default=50.0, ge=15.0, le=120.0, description="HR low limit.")
    extreme_tachy_bpm: float = Field(
        default=160.0, ge=80.0, le=350.0, description="Extreme tachycardia (high priority)."
    )
    extreme_brady_bpm: float = Field(
        default=40.0, ge=10.0, le=100.0, description="Extreme bradycardia (high priority)."
    )
    asystole_s: float = Field(
        default=4.0, ge=2.0, le=15.0, description="No QRS for this long raises asystole, s."
    )
    pause_s: float = Field(default=3.0, ge=1.5, le=10.0, description="RR >= this is a pause, s.")
    hr_alarm_delay_s: float = Field(
        default=5.0, ge=0.0, le=60.0, description="HR limit must be crossed this long, s."
    )
    clear_delay_s: float = Field(
        default=3.0, ge=0.0, le=60.0, description="Condition must be gone this long to clear, s."
    )
    strip_s: float = Field(default=6.0, ge=1.0, le=30.0, description="ECG strip in evidence, s.")
    afib_min_duration_s: float = Field(
        default=30.0,
        ge=0.0,
        le=600.0,
        description="AF raises the afib alarm once the episode has been seen this long, s: from"
        " the first of the windows that confirmed it (its estimated onset can be earlier,"
        " where P(AF) rose) to the time the detector's latest window still calling AF"
        " describes (the RR model's window describes its centre, half a window back); the"
        " rhythm reads AFIB as soon as AF is called. 30 s: an ECG of"
        " >= 30 s with irregular RR and no repeating P waves is diagnostic of AF (2020 ESC AF"
        " guideline, Hindricks et al., Eur Heart J 2021;42:373-498, section 5.1).",
    )
    afib_clear_after_s: float = Field(
        default=30.0,
        ge=0.0,
        le=600.0,
        description="An afib alarm stays active until AF has been gone this long, s, so that AF"
        " that stops and starts again within it is one alarm, not one per relapse (the rhythm"
        " still reads what the detectors say); not after a signal loss.",
    )
    ectopy: EctopyConfig = Field(
        default_factory=EctopyConfig, description="Ventricular ectopy alarms (beat classifier)."
    )
    escalation_high_s: float = Field(
        default=30.0,
        ge=0.0,
        le=3600.0,
        description="Unacknowledged high-priority alarm re-announced and escalated every, s"
        " (0: never). Site policy: IEC 60601-1-8 and IHE PCD ACM leave the delay to the"
        " responsible organisation; 30 s / 2 min are the issue-14 proposal.",
    )
    escalation_medium_s: float = Field(
        default=120.0,
        ge=0.0,
        le=3600.0,
        description="Same for medium priority, s (0: never).",
    )
    escalation_low_s: float = Field(
        default=0.0, ge=0.0, le=3600.0, description="Same for low priority, s (0: never)."
    )
    no_data_s: float = Field(
        default=10.0,
        ge=2.0,
        le=300.0,
        description="No ECG / RR from the source this long raises sensor_disconnected, s.",
    )
    battery_low_pct: int = Field(
        default=BATTERY_LOW_PCT,
        ge=0,
        le=100,
        description="Sensor battery at or below this raises battery_low.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> AlarmConfig:
        if not (
            self.extreme_brady_bpm < self.hr_low_bpm < self.hr_high_bpm < self.extreme_tachy_bpm
        ):
            msg = (
                "alarm limits must satisfy extreme_brady_bpm < hr_low_bpm < hr_high_bpm"
                " < extreme_tachy_bpm"
            )
            raise ValueError(msg)
        if self.pause_s >= self.asystole_s:
            msg = "alarms.pause_s must be shorter than alarms.asystole_s"
            raise ValueError(msg)
        return self


class VitalsConfig(_Section):
    """Vital signs beyond the ECG, and NEWS2 (Royal College of Physicians 2017)."""

    edr: bool = Field(default=True, description="Respiration rate from the ECG (EDR).")
    edr_period_s: float = Field(
        default=4.0, ge=1.0, le=60.0, description="How often the EDR rate is re-estimated, s."
    )
    edr_in_news2: bool = Field(
        default=False,
        description="Score the EDR respiration rate in NEWS2. Off by default: EDR is an"
        " estimate, not validated against a respiration reference (agent.vitals.edr), and a"
        " wrong rate would raise NEWS2 alarms; nurse-entered rates are always scored.",
    )
    news2: bool = Field(default=True, description="Score NEWS2 and raise its alarms.")
    news2_onset_delay_s: float = Field(
        default=60.0, ge=0.0, le=3600.0, description="NEWS2 condition must hold this long, s."
    )
    news2_clear_after_s: float = Field(
        default=60.0, ge=0.0, le=3600.0, description="NEWS2 alarm held this long after, s."
    )


class InferenceConfig(_Section):
    """Which models run, and where (CPU or a Coral Edge TPU)."""

    backend: Literal["cpu", "edgetpu"] = Field(
        default="cpu", description="`cpu`, or `edgetpu` (Coral; needs libedgetpu1-std)."
    )
    fallback_to_cpu: bool = Field(
        default=True,
        description="If the Edge TPU library is missing: true = log one line and use the CPU,"
        " false = refuse to start.",
    )
    beats: bool = Field(default=True, description="Classify every beat (AAMI N/S/V/F/Q).")
    beat_model: Path | None = Field(
        default=None, description="Model card (.json) of the beat classifier; default shipped."
    )
    af: bool = Field(default=True, description="Detect atrial fibrillation from RR intervals.")
    af_model: Path | None = Field(
        default=None, description="Model card (.json) of the AF model; default shipped."
    )
    s_in_af_as_n: bool = Field(
        default=True,
        description="While AF is called, a beat the classifier labels S is reported N: a"
        " premature supraventricular beat is defined against a regular atrial rhythm, and"
        " conducted beats in AF are labelled N (MIT-BIH, AAMI EC57).",
    )
    s_premature: OffOrFloat = Field(
        default=0.9,
        gt=0.0,
        le=1.0,
        description="A beat the classifier labels S is reported N unless its RR is below this"
        " fraction of the median RR of the N-labelled beats among the last 8 (an S beat is"
        " premature by definition, AAMI EC57). Chosen on DS1 + svdb out of fold"
        ' (agent/core/monitor.py). "off" (None): off.',
    )
    v_premature_match_as_s: OffOrFloat = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="A beat labelled V that is premature (RR below 80 % of the recent"
        " conducted RR) and matches the patient's on-time template at least this closely is"
        " reported S: a premature beat with the conducted QRS is supraventricular"
        " (agent/core/monitor.py). Acts only with v_dominant_as_n on and at or above"
        " alarms.ectopy.v_template_match. Measured, not shipped (docs/beat_classifier.md,"
        ' session 28). "off" (None): off.',
    )
    v_dominant_as_n: bool = Field(
        default=True,
        description="A beat labelled V that matches the patient's dominant-beat template"
        " (alarms.ectopy.v_template_match) and is not premature (RR >= 80 % of the recent"
        " conducted RR, or counted from the conducted beat before a single V beat unlike the"
        " template: an extra detection) is reported N: the patient's own wide beat, e.g."
        " bundle branch block (agent/core/monitor.py).",
    )
    dominant_template: Literal["running", "on_time"] = Field(
        default="on_time",
        description="What the patient's-own-beat test (v_dominant_as_n and the ectopy rules'"
        " v_template_match) compares a V-labelled beat with: on_time = a template of the"
        " recent on-time beats only, which ectopic beats cannot take over (agent.inference."
        "beat_features.OnTimeTemplate); running = the beat model's own template of every"
        " recent beat (before session 24). Out of fold on DS1 + svdb, true / false ectopy"
        " alarms 621/158 (running) -> 615/141 (on_time), false V-tach 5 -> 2 (docs/alarms.md).",
    )
    af_p_wave_veto: bool = Field(
        default=False,
        description="ECG streams, RR AF path: an RR window does not count as AF while the"
        " beats show repeating P waves (2 windows in a row); off until measured through the"
        " agent on AF data with waveforms (docs/af_detector.md); needs af_waveform = false.",
    )
    vf: bool = Field(default=True, description="Detect VF/VFL and VT from the waveform.")
    af_waveform: bool = Field(
        default=True,
        description="Also call AF from the ECG waveform (RR irregularity + no P waves), fused"
        " with the RR model: AF on short strips and within 30 s of onset (docs/af_detector.md)."
        " RR-only sources always use the RR model alone.",
    )

    @model_validator(mode="after")
    def _one_af_path(self) -> InferenceConfig:
        if self.af_p_wave_veto and self.af_waveform:
            msg = (
                "inference.af_p_wave_veto acts on the RR AF path alone: set"
                " inference.af_waveform = false with it (the waveform path has its own P-wave"
                " veto)"
            )
            raise ValueError(msg)
        return self


class MqttConfig(_Section):
    """MQTT broker connection (paho-mqtt 2.x, MQTT v5), its TLS identity and credentials.

    Secrets never come from the URL (refused) and are never logged: the password comes from
    ``password`` (TOML or ``BEDSIDE_MQTT__PASSWORD``) or from ``password_file`` (a secrets file,
    e.g. systemd's ``$CREDENTIALS_DIRECTORY/mqtt-password``), read when connecting.
    """

    url: str = Field(
        default="mqtt://127.0.0.1:1883",
        description="Broker URL, mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS, port 8883).",
    )
    username: str | None = Field(default=None, description="Broker user name.")
    password: SecretStr | None = Field(default=None, description="Broker password.")
    password_file: Path | None = Field(
        default=None, description="File holding the broker password (first line), read at connect."
    )
    tls_ca_file: Path | None = Field(
        default=None, description="mqtts: PEM file of the site CA that signed the broker."
    )
    tls_cert_file: Path | None = Field(
        default=None, description="mqtts: this client's PEM certificate (its identity)."
    )
    tls_key_file: Path | None = Field(
        default=None, description="mqtts: the private key of tls_cert_file (PEM)."
    )
    keepalive_s: int = Field(default=15, ge=5, le=600, description="MQTT keepalive, s.")
    connect_timeout_s: float = Field(
        default=5.0, ge=0.5, le=120.0, description="First connection must succeed within, s."
    )
    session_expiry_s: int = Field(
        default=86_400,
        ge=0,
        le=30 * 86_400,
        description=(
            "MQTT v5 session expiry, s: the broker keeps this client's subscriptions and queued"
            " acknowledgements this long while it is offline (0: clean session)."
        ),
    )
    state_dir: Path | None = Field(
        default=None,
        description=(
            "Folder for per-bed state (outbox); default $STATE_DIRECTORY (systemd),"
            " else $XDG_STATE_HOME/bedside, else ~/.local/state/bedside."
        ),
    )
    outbox_path: Path | None = Field(
        default=None,
        description=(
            "SQLite file where alarms wait until the broker acknowledges them; default"
            " STATE_DIR/UNIT/BED/outbox.sqlite3 (one per bed)."
        ),
    )
    vitals_period_s: float = Field(
        default=1.0, ge=0.1, le=60.0, description="Vitals publishing period, s."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parse_mqtt_url(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> MqttConfig:
        if (self.password is not None or self.password_file is not None) and not self.username:
            msg = "mqtt.password is set but mqtt.username is not"
            raise ValueError(msg)
        if self.password is not None and self.password_file is not None:
            msg = "give mqtt.password or mqtt.password_file, not both"
            raise ValueError(msg)
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            msg = "mqtt.tls_cert_file and mqtt.tls_key_file go together"
            raise ValueError(msg)
        tls_files = (self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        if not self.tls and any(f is not None for f in tls_files):
            msg = "TLS files are set but mqtt.url is not mqtts://"
            raise ValueError(msg)
        return self

    @property
    def host(self) -> str:
        """Broker host name."""
        return parse_mqtt_url(self.url)[0]

    @property
    def port(self) -> int:
        """Broker TCP port."""
        return parse_mqtt_url(self.url)[1]

    @property
    def tls(self) -> bool:
        """Whether the URL asks for TLS (``mqtts://``)."""
        return urlsplit(self.url).scheme == "mqtts"

    def resolved_outbox_path(self, unit: str, bed: str) -> Path:
        """Return ``outbox_path``, or the bed's own file under the state folder.

        The default is per bed (``STATE_DIR/UNIT/BED/outbox.sqlite3``), so two agents started
        in one folder never share an outbox. Reads the environment, nothing else.
        """
        if self.outbox_path is not None:
            return self.outbox_path
        return default_state_dir(self.state_dir) / unit / bed / "outbox.sqlite3"


def default_state_dir(configured: Path | None = None) -> Path:
    """Return the agent's state folder (see :attr:`MqttConfig.state_dir`)."""
    if configured is not None:
        return configured
    systemd = os.environ.get("STATE_DIRECTORY")
    if systemd:
        return Path(systemd.split(":")[0])
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "bedside"


MQTT_DEFAULT_PORTS: dict[str, int] = {"mqtt": 1883, "mqtts": 8883}
"""IANA ports: 1883 MQTT, 8883 MQTT over TLS."""


def parse_mqtt_url(url: str) -> tuple[str, int]:
    """Split ``mqtt[s]://HOST[:PORT]`` into ``(host, port)``; default port 1883 (8883 for mqtts).

    Raises
    ------
    ValueError
        If the scheme is not ``mqtt`` or ``mqtts``, the host is missing, or the URL holds a
        user name or password (the message never repeats the URL then: it may hold a secret).
    """
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        msg = (
            "broker URL must not contain a user name or password; use mqtt.username and"
            " mqtt.password_file (or BEDSIDE_MQTT__PASSWORD)"
        )
        raise ValueError(msg)
    if parts.scheme not in MQTT_DEFAULT_PORTS or not parts.hostname:
        msg = f"broker URL must look like mqtt://HOST[:PORT] or mqtts://HOST[:PORT], got {url!r}"
        raise ValueError(msg)
    try:
        port = parts.port or MQTT_DEFAULT_PORTS[parts.scheme]
    except ValueError as err:
        msg = f"bad port in broker URL {url!r}"
        raise ValueError(msg) from err
    return parts.hostname, port


class PatientConfig(_Section):
    """What the monitor must know about the patient (no identifiers: those never leave the bed).

    Bedside monitors ask for "Paced: yes / no" at admission (Philips IntelliVue "Patient
    Paced", GE CARESCAPE "Pacemaker detection", Mindray "Paced"): a paced beat is wide, like a
    PVC, and must not be counted as one.
    """

    paced: bool = Field(
        default=False,
        description="The patient has a pacemaker: wide beats at the patient's own (paced) rhythm"
        " are not counted as PVCs and never start a ventricular ectopy alarm"
        " (agent/alarms/ectopy.py).",
    )


class AgentConfig(BaseSettings):
    """The whole agent configuration (TOML file + ``BEDSIDE_*`` environment + CLI flags)."""

    model_config = SettingsConfigDict(
        env_prefix="BEDSIDE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    bed: BedConfig = Field(default_factory=BedConfig)
    source: SourceConfig = Field(default_factory=SourceConfig)
    dsp: DspConfig = Field(default_factory=lambda: DspConfig(powerline_hz=50))
    alarms: AlarmConfig = Field(default_factory=AlarmConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    vitals: VitalsConfig = Field(default_factory=VitalsConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    patient: PatientConfig = Field(default_factory=PatientConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order of precedence: CLI flags (init), environment, TOML file."""
        return (init_settings, env_settings, _TomlData(settings_cls, _TOML_DATA.get()))


_TOML_DATA: ContextVar[dict[str, Any]] = ContextVar("_TOML_DATA", default={})  # noqa: B039


class _TomlData(PydanticBaseSettingsSource):
    """Settings source for the already-parsed TOML file (lowest precedence but defaults)."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


ConfigOverrides = Annotated[dict[str, Any], "dotted path → value, from CLI flags"]


def _set_dotted(tree: dict[str, Any], dotted: str, value: object) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            msg = f"{key} is not a section"
            raise ConfigError(msg, field=dotted)
        node = child
    node[leaf] = value


def format_validation_error(err: ValidationError) -> str:
    """Render a pydantic error as ``field.path: message`` lines (first error first)."""
    lines = []
    for item in err.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "(config)"
        lines.append(f"{loc}: {item['msg']}")
    return "; ".join(lines)


def load_config(path: Path | None = None, overrides: ConfigOverrides | None = None) -> AgentConfig:
    """Load the configuration from an optional TOML file, the environment and CLI overrides.

    Parameters
    ----------
    path
        TOML file, or None for the built-in defaults.
    overrides
        Dotted path → value (``{"source.speed": 50}``) from command-line flags; they win over
        the file and the environment.

    Raises
    ------
    ConfigError
        If the file is missing or not valid TOML, or any field is invalid or unknown; the
        message names the field (``alarms.hr_high_bpm: ...``).
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            msg = f"config file not found: {path}"
            raise ConfigError(msg) from err
        except tomllib.TOMLDecodeError as err:
            msg = f"config file {path} is not valid TOML: {err}"
            raise ConfigError(msg) from err
        except UnicodeDecodeError as err:
            msg = f"config file {path} is not UTF-8 text (byte {err.start}); save it as UTF-8"
            raise ConfigError(msg) from err
        except OSError as err:
            msg = f"cannot read config file {path}: {err.strerror}"
            raise ConfigError(msg) from err
    flags: dict[str, Any] = {}
    for dotted, value in (overrides or {}).items():
        _set_dotted(flags, dotted, value)
    token = _TOML_DATA.set(data)
    try:
        cfg = AgentConfig(**flags)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        where = f" in {path}" if path else ""
        msg = f"invalid configuration{where}: {format_validation_error(err)}"
        raise ConfigError(msg, field=field) from err
    finally:
        _TOML_DATA.reset(token)
    return cfg
