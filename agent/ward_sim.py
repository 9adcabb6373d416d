"""``bedside ward-sim --beds N``: N simulated patients in one process, publishing like agents.

Each bed has its own MQTT client (so its own last will: a bed that drops is ``offline``), and
publishes on the real topics with the real payloads of :mod:`agent.messages`: a retained
``status``, ``vitals`` at 1 Hz (HR, SpO2, respiration, temperature, rhythm and NEWS2 computed by
:mod:`agent.vitals` from what the bed has, manual observations included), ``alarms`` with
evidence (a 6 s ECG strip at 130 Hz, the labelled beats, the RR intervals), and the live
``ecg`` waveform only while a station holds a lease on it (:class:`agent.messages.EcgControl`).

It behaves like an agent towards a station: an ``alarms/ack`` is confirmed with an ``updated``
event (``acknowledged`` true, and ``acknowledged_by`` when the wire model has that field);
latched alarms (high priority: asystole, VF) stay active until acknowledged (IEC 60601-1-8:2006,
6.2: a latching alarm signal continues after its condition ends until the operator acts);
``observations`` feed the bed's NEWS2.

Scripted events (:data:`EVENTS`): tachycardia, pause, asystole, vf, af, desaturation,
sensor_drop, offline. ``--script bed03:asystole@20`` runs one at a given second of simulated
time; without a script every bed gets a random event every few minutes (``--seed``).

The ECG is a sum-of-Gaussians PQRST per beat (the shape of McSharry et al. 2003, ECGSYN,
doi:10.1109/TBME.2003.808805, without its dynamics): cheap enough for 64 beds on one core,
realistic enough to read on a strip. It is a demonstration signal, not a physiological model.
"""

from __future__ import annotations

import logging
import math
import queue
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import paho.mqtt.client as mqtt
from numpy.typing import NDArray
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from agent.config import parse_mqtt_url
from agent.core.vitals import news2_summary
from agent.errors import BedsideError, BrokerUnreachableError
from agent.messages import (
    AamiClass,
    ActiveAlarmsMessage,
    AlarmAck,
    AlarmCode,
    AlarmCondition,
    AlarmEvent,
    AlarmEvidence,
    AlarmLifecycle,
    AlarmPriority,
    BeatEvidence,
    EcgChunkMessage,
    EcgControl,
    EcgStrip,
    ManualObservations,
    StatusMessage,
    VitalsMessage,
    topic,
)
from agent.vitals.observations import VitalsStore

__all__ = ["EVENTS", "ScriptItem", "WardSim", "parse_script"]

logger = logging.getLogger(__name__)

FS_HZ: Final = 130.0
"""Polar H10 ECG rate (the wearable the agent reads), Hz."""

TICK_S: Final = 0.25
"""One simulation step: a live ECG chunk of 32-33 samples; vitals every fourth step (1 Hz)."""

STRIP_S: Final = 6.0
"""Evidence strip length (the agent's strips are up to 6 s: AlarmEvidence.strip)."""

ECG_BUFFER_S: Final = 10.0

ASYSTOLE_RAISE_S: Final = 4.0
"""Asystole is raised 4 s after the last beat (IEC 60601-2-27:2011, 201.12.1.101.2: within 10 s
of its onset; 4 s of no QRS is the common monitor default)."""

SIM_VERSION: Final = "ward-sim-1"


@dataclass(frozen=True)
class EventSpec:
    """One scripted event: the alarm it raises and how the patient changes."""

    condition: AlarmCode
    priority: AlarmPriority
    duration_s: float
    latched: bool
    message: str


EVENTS: Final[dict[str, EventSpec]] = {
    "tachycardia": EventSpec(
        AlarmCode.EXTREME_TACHY, AlarmPriority.HIGH, 20.0, False, "Extreme tachycardia"
    ),
    "pause": EventSpec(AlarmCode.PAUSE, AlarmPriority.MEDIUM, 6.0, False, "Pause > 3 s"),
    "asystole": EventSpec(AlarmCode.ASYSTOLE, AlarmPriority.HIGH, 8.0, True, "Asystole"),
    "vf": EventSpec(AlarmCode.VFIB, AlarmPriority.HIGH, 10.0, True, "Ventricular fibrillation"),
    "af": EventSpec(AlarmCode.AFIB, AlarmPriority.MEDIUM, 40.0, False, "Atrial fibrillation"),
    "desaturation": EventSpec(
        AlarmCode.NEWS2_URGENT, AlarmPriority.MEDIUM, 40.0, False, "NEWS2 urgent: SpO2 86 %"
    ),
    "sensor_drop": EventSpec(
        AlarmCode.SENSOR_DISCONNECTED, AlarmPriority.MEDIUM, 15.0, False, "ECG sensor disconnected"
    ),
    "offline": EventSpec(
        AlarmCode.SENSOR_DISCONNECTED, AlarmPriority.MEDIUM, 20.0, False, "agent offline"
    ),
}
"""Scripted events by name; priorities as the agent's rules give them (agent/alarms/rules.py)."""

RANDOM_EVENT_MEAN_S: Final = 180.0
"""Without a script, each bed has an event every ~3 min on average (a busy demo ward)."""

# PQRST as (centre s from R, width s, amplitude µV) per beat class: ECGSYN-like shapes.
_WAVES: Final[dict[AamiClass, tuple[tuple[float, float, float], ...]]] = {
    AamiClass.N: (
        (-0.20, 0.025, 150.0),
        (-0.03, 0.010, -120.0),
        (0.0, 0.012, 1200.0),
        (0.03, 0.010, -250.0),
        (0.25, 0.045, 300.0),
    ),
    AamiClass.V: ((-0.01, 0.035, 1500.0), (0.07, 0.040, -500.0), (0.30, 0.060, -350.0)),
}


@dataclass(frozen=True)
class ScriptItem:
    """``bed:event@t_s``: run ``event`` on ``bed`` at simulated second ``t_s``."""

    bed: str
    event: str
    at_s: float


def parse_script(text: str) -> list[ScriptItem]:
    """Parse ``bed01:asystole@20,bed02:vf@35``.

    Raises
    ------
    ValueError
        If an item is malformed or names an unknown event.
    """
    items: list[ScriptItem] = []
    for raw in filter(None, (p.strip() for p in text.split(","))):
        bed, sep, rest = raw.partition(":")
        name, at, when = rest.partition("@")
        if not sep or not at or name not in EVENTS:
            msg = (
                f"script item must be BED:EVENT@SECONDS with EVENT in {sorted(EVENTS)}, got {raw!r}"
            )
            raise ValueError(msg)
        try:
            at_s = float(when)
        except ValueError as err:
            msg = f"bad time in script item {raw!r}"
            raise ValueError(msg) from err
        items.append(ScriptItem(bed, name, at_s))
    return items


@dataclass
class _Alarm:
    event: AlarmEvent
    condition_over: bool = False


@dataclass
class _Bed:
    unit: str
    bed: str
    hr_base_bpm: float
    rng: random.Random
    client: mqtt.Client | None = None
    t_s: float = 0.0
    next_beat_s: float = 0.5
    last_beat_s: float = 0.0
    beats: deque[BeatEvidence] = field(default_factory=lambda: deque(maxlen=64))
    ecg: deque[float] = field(default_factory=lambda: deque(maxlen=int(ECG_BUFFER_S * FS_HZ)))
    ecg_t0_s: float = 0.0
    event: str | None = None
    event_start_s: float = 0.0
    event_end_s: float = 0.0
    alarms: dict[AlarmCode, _Alarm] = field(default_factory=dict)
    leases: dict[str, float] = field(default_factory=dict)  # station → lease end, sim s
    store: VitalsStore = field(default_factory=VitalsStore)
    next_random_s: float = 0.0
    spo2_pct: float = 97.0
    offline_until_s: float | None = None

    @property
    def name(self) -> str:
        return f"{self.unit}/{self.bed}"

    @property
    def device_id(self) -> str:
        return f"sim-{self.unit}-{self.bed}"


class WardSim:
    """N simulated beds publishing to one broker.

    Parameters
    ----------
    broker_url
        ``mqtt://HOST[:PORT]``.
    beds
        Number of beds, named ``bed01`` ... in ``unit``.
    unit
        Unit (ward) name, a topic segment.
    script
        Scripted events; when None, random events (``random_events``).
    random_events
        Whether beds get random events when there is no script.
    seed
        Seed of the random events and the patients' baseline HR.
    speed
        Simulated seconds per wall-clock second (1 = real time).
    event_mean_s
        Mean interval between random events of one bed, s (plus a 60 s rest after each).

    Raises
    ------
    ValueError
        If ``beds`` < 1, ``speed`` <= 0, or the URL or a name is invalid.
    """

    def __init__(
        self,
        broker_url: str,
        *,
        beds: int,
        unit: str = "ward1",
        script: Sequence[ScriptItem] | None = None,
        random_events: bool = True,
        seed: int = 1,
        speed: float = 1.0,
        event_mean_s: float = RANDOM_EVENT_MEAN_S,
    ) -> None:
        if beds < 1 or speed <= 0 or event_mean_s <= 0:
            msg = f"need beds >= 1 and speed > 0, got beds={beds} speed={speed}"
            raise ValueError(msg)
        self.host, self.port = parse_mqtt_url(broker_url)
        self.url = broker_url
        self.speed = speed
        self.event_mean_s = event_mean_s
        self.random_events = random_events and script is None
        rng = random.Random(seed)  # noqa: S311 - a simulation, not cryptography
        self.beds: dict[str, _Bed] = {}
        for i in range(1, beds + 1):
            name = f"bed{i:02d}"
            topic(unit, name, "status")  # validates the names
            b = _Bed(
                unit,
                name,
                hr_base_bpm=rng.uniform(62, 88),
                rng=random.Random(seed * 1000 + i),  # noqa: S311
            )
            b.next_random_s = b.rng.expovariate(1 / event_mean_s)
            self.beds[name] = b
        self.script = sorted(script or [], key=lambda s: s.at_s)
        for item in self.script:
            if item.bed not in self.beds:
                msg = f"script names bed {item.bed!r}, the ward has bed01..bed{beds:02d}"
                raise ValueError(msg)
        self.t_s = 0.0
        self.start_utc = datetime.now(UTC)
        self.published_alarm_events = 0
        self.published_messages = 0
        self._inbox: queue.Queue[tuple[str, str, bytes]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ MQTT
    def _client(self, b: _Bed) -> mqtt.Client:
        c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"{b.device_id}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        will = StatusMessage(
            device_id=b.device_id, ts_utc=datetime.now(UTC), state="offline", last_will=True
        )
        will_json = will.model_dump_json(exclude_none=True)
        c.will_set(topic(b.unit, b.bed, "status"), will_json, qos=1, retain=True)
        c.reconnect_delay_set(1, 5)
        subs = [
            (topic(b.unit, b.bed, "alarms/ack"), 1),
            (topic(b.unit, b.bed, "observations"), 1),
            (topic(b.unit, b.bed, "ecg/control"), 1),
        ]

        def on_connect(client: mqtt.Client, *_: object) -> None:
            client.subscribe(subs)
            self._publish_status(b, "online", client)

        def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
            self._inbox.put((b.bed, msg.topic, bytes(msg.payload)))

        c.on_connect = on_connect
        c.on_message = on_message
        return c

    def _connect(self, b: _Bed) -> None:
        c = self._client(b)
        try:
            c.connect(self.host, self.port, keepalive=15)
        except OSError as err:
            raise BrokerUnreachableError(self.url, str(err)) from err
        c.loop_start()
        b.client = c

    def _publish(self, b: _Bed, kind: str, payload: str, *, qos: int, retain: bool = False) -> None:
        if b.client is None:
            return
        b.client.publish(kind, payload, qos=qos, retain=retain)
        self.published_messages += 1

    def _publish_status(self, b: _Bed, state: str, client: mqtt.Client | None = None) -> None:
        msg = StatusMessage(
            device_id=b.device_id,
            ts_utc=datetime.now(UTC),
            state="online" if state == "online" else "offline",
            agent_version=SIM_VERSION,
            source="ward-sim",
        )
        target = client or b.client
        if target is not None:
            target.publish(
                topic(b.unit, b.bed, "status"),
                msg.model_dump_json(exclude_none=True),
                qos=1,
                retain=True,
            )

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Connect every bed and start the simulation thread.

        Raises
        ------
        BrokerUnreachableError
            If the broker refuses a connection.
        """
        for b in self.beds.values():
            self._connect(b)
        self._thread = threading.Thread(target=self._run, name="ward-sim", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the simulation; each bed says ``offline`` and disconnects cleanly."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for b in self.beds.values():
            if b.client is not None:
                self._publish_status(b, "offline")
                b.client.disconnect()
                b.client.loop_stop()

    def run_for(self, duration_s: float | None) -> None:
        """Block until ``duration_s`` of wall-clock time passed (None: until stopped)."""
        self._stop.wait(duration_s)

    def trigger(self, bed: str, event: str, duration_s: float | None = None) -> None:
        """Start ``event`` on ``bed`` at the next step (thread-safe).

        Raises
        ------
        KeyError
            If the bed or the event is unknown.
        """
        if bed not in self.beds or event not in EVENTS:
            msg = f"{bed}:{event}"
            raise KeyError(msg)
        self._inbox.put((bed, "__trigger__", f"{event}:{duration_s or ''}".encode()))

    def end(self, bed: str) -> None:
        """End ``bed``'s current event at the next step (thread-safe).

        Latched alarms stay active until acknowledged.

        Raises
        ------
        KeyError
            If the bed is unknown.
        """
        if bed not in self.beds:
            raise KeyError(bed)
        self._inbox.put((bed, "__end__", b""))

    # ------------------------------------------------------------ simulation
    def _run(self) -> None:
        next_wall = time.monotonic()
        step = 0
        while not self._stop.is_set():
            self._drain_inbox()
            while self.script and self.script[0].at_s <= self.t_s:
                item = self.script.pop(0)
                self._start_event(self.beds[item.bed], item.event, None)
            for b in self.beds.values():
                self._step(b, vitals=step % 4 == 0)
            self.t_s += TICK_S
            step += 1
            next_wall += TICK_S / self.speed
            delay = next_wall - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_wall = time.monotonic()  # behind: do not try to catch up in a burst

    def _drain_inbox(self) -> None:
        while True:
            try:
                bed, topic_name, payload = self._inbox.get_nowait()
            except queue.Empty:
                return
            b = self.beds[bed]
            if topic_name == "__end__":
                if b.event is not None:
                    self._end_event(b)
            elif topic_name == "__trigger__":
                name, _, dur = payload.decode().partition(":")
                self._start_event(b, name, float(dur) if dur else None)
            elif topic_name.endswith("/alarms/ack"):
                self._on_ack(b, payload)
            elif topic_name.endswith("/observations"):
                self._on_observations(b, payload)
            elif topic_name.endswith("/ecg/control"):
                try:
                    ctl = EcgControl.model_validate_json(payload)
                except ValidationError:
                    continue
                if ctl.on:
                    b.leases[ctl.station_id] = b.t_s + ctl.lease_s
                else:
                    b.leases.pop(ctl.station_id, None)

    def _start_event(self, b: _Bed, name: str, duration_s: float | None) -> None:
        if b.event is not None:
            self._end_event(b)
        spec = EVENTS[name]
        b.event = name
        b.event_start_s = b.t_s
        b.event_end_s = b.t_s + (duration_s if duration_s is not None else spec.duration_s)
        logger.info("%s: %s for %.0f s", b.name, name, b.event_end_s - b.t_s)
        if name == "offline" and b.client is not None:
            # an abrupt loss: the socket closes without DISCONNECT, the broker sends the will
            b.client.loop_stop()
            sock = b.client.socket()
            if sock is not None:
                sock.close()
            b.client = None
            b.offline_until_s = b.event_end_s
        elif name in ("tachycardia", "af", "desaturation", "sensor_drop", "vf"):
            self._raise(b, spec, onset_s=b.t_s)
        # asystole and pause are raised from the beats (see _step)

    def _end_event(self, b: _Bed) -> None:
        name = b.event
        b.event = None
        if name == "offline":
            b.offline_until_s = None
            self._connect(b)
            return
        if name is None:
            return
        spec = EVENTS[name]
        alarm = b.alarms.get(spec.condition)
        if alarm is None:
            return
        alarm.condition_over = True
        if not spec.latched or alarm.event.acknowledged:
            self._clear(b, spec.condition)

    def _rr_s(self, b: _Bed) -> float | None:
        """Return the next RR interval, s; None while no beat comes (asystole, VF, sensor off)."""
        ev = b.event
        if ev in ("asystole", "vf", "sensor_drop"):
            return None
        hr = b.hr_base_bpm
        if ev == "tachycardia":
            hr = 165.0
        rr = 60.0 / hr * b.rng.uniform(0.97, 1.03)
        if ev == "af":
            rr = b.rng.uniform(0.40, 1.00)
        if ev == "pause" and b.t_s - b.event_start_s < 1.0:
            rr = 3.6
        return rr

    def _step(self, b: _Bed, *, vitals: bool) -> None:
        b.t_s = self.t_s
        if b.event is not None and b.t_s >= b.event_end_s:
            self._end_event(b)
        if b.client is None:
            return
        t0 = b.t_s
        n = round((t0 + TICK_S) * FS_HZ) - round(t0 * FS_HZ)
        t = (round(t0 * FS_HZ) + np.arange(n)) / FS_HZ
        new_beats: list[float] = []
        while b.next_beat_s < t0 + TICK_S:
            rr = self._rr_s(b)
            if rr is None:
                b.next_beat_s = t0 + TICK_S  # no beat in this step
                break
            beat_t = b.next_beat_s
            cls = AamiClass.V if b.rng.random() < 0.05 else AamiClass.N
            rr_ms = None if not b.beats else round((beat_t - b.beats[-1].t_s) * 1000.0, 1)
            b.beats.append(
                BeatEvidence(t_s=round(beat_t, 3), rr_ms=rr_ms, aami_class=cls, confidence=0.95)
            )
            b.last_beat_s = beat_t
            new_beats.append(beat_t)
            b.next_beat_s = beat_t + rr
        samples = self._synth(b, t)
        if not b.ecg:
            b.ecg_t0_s = t[0]
        overflow = len(b.ecg) + len(samples) - (b.ecg.maxlen or 0)
        if overflow > 0:
            b.ecg_t0_s += overflow / FS_HZ
        b.ecg.extend(samples.tolist())
        # beat-derived alarms: a pause is seen when the beat after a > 3 s gap arrives
        if b.event == "pause" and AlarmCode.PAUSE not in b.alarms and len(b.beats) >= 2:
            gap = b.beats[-1].t_s - b.beats[-2].t_s
            if gap > 3.0:
                self._raise(b, EVENTS["pause"], onset_s=b.beats[-2].t_s)
        if (
            b.event == "asystole"
            and AlarmCode.ASYSTOLE not in b.alarms
            and b.t_s - b.last_beat_s >= ASYSTOLE_RAISE_S
        ):
            self._raise(b, EVENTS["asystole"], onset_s=b.last_beat_s)
        if any(end > b.t_s for end in b.leases.values()):
            chunk = EcgChunkMessage(
                device_id=b.device_id,
                ts_utc=self._now_utc(b, float(t[0])),
                fs_hz=FS_HZ,
                t0_s=round(float(t[0]), 4),
                samples_uv=[round(x) for x in samples.tolist()],
                beats_t_s=[round(x, 3) for x in new_beats],
            )
            self._publish(b, topic(b.unit, b.bed, "ecg"), chunk.model_dump_json(), qos=0)
        if vitals:
            self._vitals(b)

    def _synth(self, b: _Bed, t: NDArray[np.float64]) -> NDArray[np.float64]:
        noise = np.asarray([b.rng.gauss(0.0, 15.0) for _ in range(len(t))], dtype=np.float64)
        if b.event == "sensor_drop":
            return noise * 0.2
        if b.event == "vf":
            phase = 2 * math.pi * 5.2 * t
            vf: NDArray[np.float64] = 700.0 * np.sin(phase + 0.6 * np.sin(2 * math.pi * 0.7 * t))
            return vf + noise
        out = noise
        for beat in b.beats:
            if abs(beat.t_s - t[0]) > 1.2:
                continue
            for centre, width, amp in _WAVES[
                AamiClass.V if beat.aami_class == AamiClass.V else AamiClass.N
            ]:
                out = out + amp * np.exp(-(((t - beat.t_s - centre) / width) ** 2) / 2)
        return out

    def _vitals(self, b: _Bed) -> None:
        recent = [x.rr_ms for x in list(b.beats)[-8:] if x.rr_ms]
        hr = None
        if recent and b.event not in ("asystole", "vf", "sensor_drop"):
            hr = round(60_000.0 / (sum(recent) / len(recent)), 1)
        if b.event in ("asystole", "vf"):
            hr = 0.0
        target_spo2 = 86.0 if b.event == "desaturation" else 97.0
        b.spo2_pct += (target_spo2 - b.spo2_pct) * 0.3
        spo2 = round(b.spo2_pct, 1)
        t = b.t_s
        if hr is not None and hr > 0:
            b.store.put_pulse(min(hr, 300.0), source="ecg", t_s=t)
        b.store.put_spo2(spo2, source="ble:plx", t_s=t)
        b.store.put_respiration_rate(16.0, source="edr", t_s=t)
        b.store.put_temperature(36.8, source="ble:therm", t_s=t)
        result = b.store.news2(t)
        rhythm = {"asystole": "ASYS", "vf": "VF", "af": "AFIB", "tachycardia": "SVTA"}.get(
            b.event or "", "N"
        )
        msg = VitalsMessage(
            device_id=b.device_id,
            ts_utc=datetime.now(UTC),
            t_s=round(t, 2),
            hr_bpm=hr,
            rr_ms=b.beats[-1].rr_ms if b.beats else None,
            beats_total=len(b.beats),
            signal_quality=0.0 if b.event == "sensor_drop" else 0.95,
            leads_off=b.event == "sensor_drop",
            active_alarms=sorted(b.alarms),
            spo2_pct=spo2,
            respiration_rate_per_min=16.0,
            respiration_source="edr",
            temperature_c=36.8,
            rhythm=None if b.event == "sensor_drop" else rhythm,
            news2=news2_summary(result),
        )
        self._publish(b, topic(b.unit, b.bed, "vitals"), msg.model_dump_json(), qos=0)
        if self.random_events and b.event is None and t >= b.next_random_s:
            name = b.rng.choice([n for n in EVENTS if n != "offline"] + ["offline"])
            b.next_random_s = t + b.rng.expovariate(1 / self.event_mean_s) + 60.0
            self._start_event(b, name, None)

    # ------------------------------------------------------------ alarms
    def _evidence(self, b: _Bed) -> AlarmEvidence:
        n = int(STRIP_S * FS_HZ)
        samples = list(b.ecg)[-n:]
        t0 = b.ecg_t0_s + (len(b.ecg) - len(samples)) / FS_HZ
        beats = [x for x in b.beats if x.t_s >= t0]
        rr = [x.rr_ms for x in beats if x.rr_ms is not None]
        hr = round(60_000.0 / (sum(rr) / len(rr)), 1) if rr else None
        return AlarmEvidence(
            rr_ms=rr,
            beats=beats,
            strip=EcgStrip(fs_hz=FS_HZ, t0_s=round(t0, 4), samples_uv=[round(x) for x in samples]),
            hr_bpm=hr,
        )

    def _now_utc(self, b: _Bed, t_s: float) -> datetime:
        return self.start_utc + timedelta(seconds=t_s / self.speed)

    def _send(self, b: _Bed, ev: AlarmEvent) -> None:
        self._publish(b, topic(b.unit, b.bed, "alarms"), ev.model_dump_json(), qos=1)
        self.published_alarm_events += 1
        # like the agent: the retained list of active alarms after every change (DESIGN.md)
        active = ActiveAlarmsMessage(
            device_id=b.device_id,
            ts_utc=ev.ts_utc,
            alarms=sorted((a.event for a in b.alarms.values()), key=lambda e: e.onset_utc),
        )
        active_topic = topic(b.unit, b.bed, "alarms/active")
        self._publish(b, active_topic, active.model_dump_json(), qos=1, retain=True)

    def _raise(self, b: _Bed, spec: EventSpec, *, onset_s: float) -> None:
        if spec.condition in b.alarms:
            return
        kind = (
            AlarmCondition.TECHNICAL
            if spec.condition == AlarmCode.SENSOR_DISCONNECTED
            else AlarmCondition.PHYSIOLOGICAL
        )
        ev = AlarmEvent(
            device_id=b.device_id,
            ts_utc=datetime.now(UTC),
            alarm_id=uuid.uuid4().hex,
            condition=spec.condition,
            priority=spec.priority,
            kind=kind,
            lifecycle=AlarmLifecycle.RAISED,
            onset_s=round(onset_s, 3),
            onset_utc=datetime.now(UTC) - timedelta(seconds=(b.t_s - onset_s) / self.speed),
            raised_s=round(b.t_s, 3),
            latched=spec.latched,
            message=spec.message,
            evidence=self._evidence(b),
            model_versions={"ward-sim": SIM_VERSION},
        )
        b.alarms[spec.condition] = _Alarm(ev)
        self._send(b, ev)

    def _update(self, b: _Bed, code: AlarmCode, **changes: Any) -> AlarmEvent:  # noqa: ANN401
        alarm = b.alarms[code]
        data = alarm.event.model_dump()
        data.update(changes, ts_utc=datetime.now(UTC))
        ev = AlarmEvent.model_validate(data)
        alarm.event = ev
        return ev

    def _clear(self, b: _Bed, code: AlarmCode) -> None:
        if code not in b.alarms:
            return
        ev = self._update(b, code, lifecycle=AlarmLifecycle.CLEARED, cleared_s=round(b.t_s, 3))
        del b.alarms[code]
        self._send(b, ev)

    def _on_ack(self, b: _Bed, payload: bytes) -> None:
        try:
            ack = AlarmAck.model_validate_json(payload)
        except ValidationError:
            return
        for code, alarm in list(b.alarms.items()):
            if alarm.event.alarm_id != ack.alarm_id or alarm.event.acknowledged:
                continue
            extra: dict[str, Any] = {}
            if "acknowledged_by" in AlarmEvent.model_fields:
                extra["acknowledged_by"] = ack.station_id
            ev = self._update(b, code, lifecycle=AlarmLifecycle.UPDATED, acknowledged=True, **extra)
            self._send(b, ev)
            if alarm.condition_over:
                self._clear(b, code)

    def _on_observations(self, b: _Bed, payload: bytes) -> None:
        try:
            obs = ManualObservations.model_validate_json(payload)
        except ValidationError:
            return
        b.store.add_manual(obs, t_s=b.t_s)


def run_ward_sim(
    broker_url: str,
    *,
    beds: int,
    unit: str,
    script: str | None,
    seed: int,
    duration_s: float | None,
    quiet_events: bool = False,
) -> int:
    """Run ``bedside ward-sim`` until SIGTERM / Ctrl-C or ``duration_s``; return 0.

    Raises
    ------
    BedsideError
        If the script is malformed or the broker is unreachable.
    """
    try:
        items = parse_script(script) if script else None
        sim = WardSim(
            broker_url,
            beds=beds,
            unit=unit,
            script=items,
            seed=seed,
            random_events=not quiet_events,
        )
    except ValueError as err:
        raise BedsideError(str(err)) from err
    sim.start()
    print(f"ward-sim: {beds} beds in {unit} publishing to {broker_url}", flush=True)  # noqa: T201
    try:
        sim.run_for(duration_s)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0
