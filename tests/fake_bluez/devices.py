"""Simulated BLE wearables: Polar H10, Heart Rate Service strap, pulse oximeter, thermometer.

Each device has its own clock, started when the fake starts: it keeps "measuring" whether or not
a client is connected, and what it measures while no client listens is lost, as on a real strap.
``speed`` runs that clock faster than real time (``speed=20``: one second of record per 50 ms).

Faults are commanded through :mod:`tests.fake_bluez.control`: a link drop, silence (no
notifications for N s with the link up, the H10's known failure on Linux), malformed frames,
lost skin contact, battery level, SpO2 trajectory, temperature.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from tests.fake_bluez import wire

if TYPE_CHECKING:
    from tests.fake_bluez.bluez import FakeDevice

DeviceKind = Literal["h10", "hrs", "plx", "thermometer"]


def uuid16(short: int) -> str:
    """Return the 128-bit form of a 16-bit SIG UUID."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


HRS_SERVICE = uuid16(0x180D)
HR_MEASUREMENT = uuid16(0x2A37)
BODY_SENSOR_LOCATION = uuid16(0x2A38)
BATTERY_SERVICE = uuid16(0x180F)
BATTERY_LEVEL = uuid16(0x2A19)
DIS_SERVICE = uuid16(0x180A)
MANUFACTURER_NAME = uuid16(0x2A29)
PLX_SERVICE = uuid16(0x1822)
PLX_CONTINUOUS = uuid16(0x2A5F)
PLX_FEATURES = uuid16(0x2A60)
HTS_SERVICE = uuid16(0x1809)
TEMPERATURE_MEASUREMENT = uuid16(0x2A1C)
TEMPERATURE_TYPE = uuid16(0x2A1D)
PMD_SERVICE = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_POINT = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

POLAR_COMPANY_ID = 0x006B
"""Bluetooth SIG company identifier of Polar Electro Oy (manufacturer data in adverts)."""

H10_ECG_FS_HZ = 130
"""The only ECG sampling rate a Polar H10 offers (PMD get-settings answer)."""

H10_ECG_RESOLUTION_BITS = 14
H10_SAMPLES_PER_FRAME = 73
"""Samples per PMD ECG notification on an H10 at MTU 232 (Polar BLE SDK captures)."""

H10_TIMESTAMP_BASE_NS = 599_616_000_000_000_000
"""Device clock at power-on, ns since 2000-01-01 (2019-01-01, an arbitrary set clock)."""

PMD_OP_GET_SETTINGS = 0x01
PMD_OP_START = 0x02
PMD_OP_STOP = 0x03
PMD_ERR_SUCCESS = 0
PMD_ERR_INVALID_OP_CODE = 1
PMD_ERR_NOT_SUPPORTED = 3
PMD_ERR_INVALID_LENGTH = 4
PMD_ERR_ALREADY_IN_STATE = 6
PMD_ERR_INVALID_RESOLUTION = 7
PMD_ERR_INVALID_SAMPLE_RATE = 8
PMD_SETTING_SAMPLE_RATE = 0x00
PMD_SETTING_RESOLUTION = 0x01

HR_PERIOD_S = 1.0
"""Heart-rate straps notify 0x2A37 about once per second of device time."""

MALFORMED_BURST = 25
"""Malformed notifications sent back to back before yielding to the event loop."""


@dataclass(frozen=True, slots=True)
class CharDef:
    """One GATT characteristic of a simulated device (UUID and BlueZ flags)."""

    uuid: str
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ServiceDef:
    """One primary GATT service."""

    uuid: str
    chars: tuple[CharDef, ...]


BATTERY_DEF = ServiceDef(BATTERY_SERVICE, (CharDef(BATTERY_LEVEL, ("read", "notify")),))


@dataclass(slots=True)
class DeviceSpec:
    """What to simulate; JSON-serialisable so the fixture can hand it to the subprocess.

    Attributes
    ----------
    kind : {"h10", "hrs", "plx", "thermometer"}
        Which device.
    address : str
        Bluetooth address, ``AA:BB:CC:DD:EE:FF``.
    name : str
        Advertised name ("Polar H10 ABCD1234" for a Polar strap).
    speed : float
        Device clock as a multiple of real time.
    record : str | None
        WFDB record (without extension): the H10 streams its channel ``channel`` resampled to
        130 Hz; the HRS strap takes its beats from annotator ``annotator``.
    rr_ms : list[float] | None
        RR intervals (ms) for the HRS strap when no record is given; repeated forever.
    start_s, stop_s : float, float | None
        The part of the record the device plays (then loops); ``None`` = to the end.
    """

    kind: DeviceKind
    address: str
    name: str
    speed: float = 1.0
    record: str | None = None
    channel: int = 0
    annotator: str = "qrs"
    rr_ms: list[float] | None = None
    start_s: float = 0.0
    rssi_dbm: int = -60
    battery_pct: int = 85
    spo2_pct: float = 97.0
    pulse_rate_bpm: float = 72.0
    temperature_c: float = 36.8
    stop_s: float | None = None
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        """Return the spec as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceSpec:
        """Build a spec from :meth:`to_json` output."""
        return cls(**data)


WFDB_BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")
"""Annotation symbols that mark a beat (WFDB ``annot`` man page); rhythm and noise marks
(``+``, ``~``, ``|``) are not beats."""


def beat_samples(samples: Any, symbols: Any) -> NDArray[np.int64]:
    """Sample indices of the beat annotations among ``samples``/``symbols`` (wfdb.rdann)."""
    return np.asarray(
        [s for s, sym in zip(samples, symbols, strict=True) if sym in WFDB_BEAT_SYMBOLS],
        dtype=np.int64,
    )


class SimDevice:
    """Behaviour shared by all simulated devices: clock, faults, battery, statistics."""

    kind: ClassVar[DeviceKind]
    services: ClassVar[tuple[ServiceDef, ...]] = (BATTERY_DEF,)
    advertised_uuids: ClassVar[tuple[str, ...]] = ()
    data_uuid: ClassVar[str] = ""

    def __init__(self, spec: DeviceSpec) -> None:
        self.spec = spec
        self.address = spec.address.upper()
        self.name = spec.name
        self.rssi_dbm = spec.rssi_dbm
        self.speed = spec.speed
        self.manufacturer_data: dict[int, bytes] = {}
        self.link: FakeDevice | None = None
        self.advertising = True
        self.stats: dict[str, int] = {
            "connects": 0,
            "disconnects": 0,
            "start_notify_calls": 0,
            "start_notify_repeated": 0,
            "sent": 0,
            "lost": 0,
            "suppressed": 0,
            "malformed_sent": 0,
        }
        self.info: dict[str, Any] = {}
        self.silent_until = 0.0
        self.contact = True
        self.battery_pct = spec.battery_pct
        self.rng = random.Random(spec.seed)
        self.clock_start = time.monotonic()

    # --- clock ---------------------------------------------------------------------------

    def device_time_s(self) -> float:
        """Seconds of device time since power-on."""
        return (time.monotonic() - self.clock_start) * self.speed

    async def sleep_until(self, device_t_s: float) -> None:
        """Sleep until the device clock reads ``device_t_s``."""
        delay = self.clock_start + device_t_s / self.speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def periodic(self, period_s: float, tick: Callable[[int], None]) -> None:
        """Call ``tick(k)`` at device times ``(k + 1) * period_s`` without drift."""
        k = 0
        while True:
            await self.sleep_until((k + 1) * period_s)
            tick(k)
            k += 1

    # --- GATT ------------------------------------------------------------------------------

    def attach(self, link: FakeDevice) -> None:
        """Connect this model to its BlueZ ``Device1`` object."""
        self.link = link

    def read(self, uuid: str) -> bytes:
        """Return the value of a readable characteristic."""
        if uuid == BATTERY_LEVEL:
            return wire.encode_battery(self.battery_pct)
        if uuid == MANUFACTURER_NAME:
            return b"Polar Electro Oy"
        return self.read_more(uuid)

    def read_more(self, uuid: str) -> bytes:
        """Device-specific reads."""
        del uuid
        return b""

    def write(self, uuid: str, data: bytes) -> None:
        """Handle a write (device-specific)."""
        del uuid, data

    def on_connect(self) -> None:
        """A client connected."""

    def on_disconnect(self) -> None:
        """The link ended."""

    def send(self, uuid: str, payload: bytes) -> bool:
        """Notify ``payload`` unless the device is silenced; count what happened."""
        if time.monotonic() < self.silent_until:
            self.stats["suppressed"] += 1
            return False
        if self.link is not None and self.link.notify(uuid, payload):
            self.stats["sent"] += 1
            by_uuid = self.info.setdefault("sent_by_uuid", {})
            by_uuid[uuid] = by_uuid.get(uuid, 0) + 1
            return True
        self.stats["lost"] += 1
        return False

    def is_listening(self, uuid: str) -> bool:
        """Whether a client is subscribed to ``uuid``."""
        return self.link is not None and self.link.is_notifying(uuid)

    # --- faults ----------------------------------------------------------------------------

    def silence(self, seconds: float) -> None:
        """Stop notifying for ``seconds`` of real time, keeping the link up."""
        self.silent_until = time.monotonic() + seconds

    def set_contact(self, contact: bool) -> None:
        """Simulate skin contact lost (``False``) or restored."""
        self.contact = contact

    def set_battery(self, level_pct: int) -> None:
        """Change the battery level and notify it."""
        self.battery_pct = level_pct
        self.send(BATTERY_LEVEL, wire.encode_battery(level_pct))

    def malformed_frame(self) -> bytes:
        """One notification the device's data characteristic can never decode."""
        return wire.malformed_short(self.rng, 5)

    async def send_malformed(self, count: int) -> int:
        """Send ``count`` malformed notifications on the data characteristic.

        Returns
        -------
        int
            How many reached a subscribed client.
        """
        delivered = 0
        for i in range(count):
            if self.send(self.data_uuid, self.malformed_frame()):
                delivered += 1
            if (i + 1) % MALFORMED_BURST == 0:
                await asyncio.sleep(0.002)
        self.stats["malformed_sent"] += delivered
        return delivered

    def set_spo2(self, target_pct: float, ramp_s: float) -> None:
        """Set an SpO2 trajectory (pulse oximeters only)."""
        del target_pct, ramp_s
        msg = f"{self.kind} has no SpO2"
        raise ValueError(msg)

    def set_temperature(self, temperature_c: float) -> None:
        """Set the body temperature (thermometers only)."""
        del temperature_c
        msg = f"{self.kind} has no thermometer"
        raise ValueError(msg)

    def describe(self) -> dict[str, Any]:
        """State for the control interface (JSON-ready)."""
        return {
            "kind": self.kind,
            "address": self.address,
            "name": self.name,
            "connected": bool(self.link and self.link.connected),
            "stats": dict(self.stats),
            "info": dict(self.info),
        }

    async def run(self) -> None:
        """The device's own activity (measuring), forever."""
        await asyncio.Event().wait()


class HeartRateStrap(SimDevice):
    """A strap with the Heart Rate Service only: 0x2A37 with RR intervals, once a second.

    The beats come from a WFDB annotation file (e.g. an afdb ``.qrs``), or a list of RR
    intervals, and repeat when exhausted. Each notification carries the RR intervals of the
    beats that ended since the previous one, in 1/1024 s (Heart Rate Service 1.0, 3.1.1.5).
    """

    kind: ClassVar[DeviceKind] = "hrs"
    services: ClassVar[tuple[ServiceDef, ...]] = (
        ServiceDef(
            HRS_SERVICE,
            (CharDef(HR_MEASUREMENT, ("notify",)), CharDef(BODY_SENSOR_LOCATION, ("read",))),
        ),
        BATTERY_DEF,
    )
    advertised_uuids: ClassVar[tuple[str, ...]] = (HRS_SERVICE,)
    data_uuid: ClassVar[str] = HR_MEASUREMENT

    def __init__(self, spec: DeviceSpec) -> None:
        super().__init__(spec)
        self.rr_1024 = self._load_rr_1024(spec)
        self.beat_times_s = np.cumsum(self.rr_1024 / 1024.0)
        self.info["n_rr"] = len(self.rr_1024)

    @staticmethod
    def _load_rr_1024(spec: DeviceSpec) -> NDArray[np.int64]:
        if spec.record is not None:
            import wfdb

            annotator = spec.annotator
            if not Path(f"{spec.record}.{annotator}").exists():
                annotator = "atr"  # mitdb has reference beats in .atr, afdb has .qrs
            ann = wfdb.rdann(spec.record, annotator)
            samples = beat_samples(ann.sample, ann.symbol)
            samples = samples[samples >= round(spec.start_s * ann.fs)]
            rr_s = np.diff(samples) / float(ann.fs)
        elif spec.rr_ms:
            rr_s = np.asarray(spec.rr_ms, dtype=np.float64) / 1000.0
        else:
            rr_s = np.full(60, 0.8)
        return np.asarray(np.round(rr_s * 1024.0), dtype=np.int64)

    def read_more(self, uuid: str) -> bytes:
        return b"\x01" if uuid == BODY_SENSOR_LOCATION else b""

    def malformed_frame(self) -> bytes:
        return wire.malformed_heart_rate(self.rng)

    def beats_between(self, t0_s: float, t1_s: float) -> list[int]:
        """Indices (into the repeating RR list) of beats that end in ``(t0_s, t1_s]``."""
        period = float(self.beat_times_s[-1])
        out: list[int] = []
        cycle = int(t0_s // period)
        while cycle * period < t1_s:
            base = cycle * period
            lo = np.searchsorted(self.beat_times_s + base, t0_s, side="right")
            hi = np.searchsorted(self.beat_times_s + base, t1_s, side="right")
            out.extend(cycle * len(self.rr_1024) + int(i) for i in range(lo, hi))
            cycle += 1
        return out

    def heart_rate_packets(self, beat_idx: list[int]) -> list[bytes]:
        """0x2A37 notifications for these beats (split to at most 9 RR each)."""
        n = len(self.rr_1024)
        rr = [int(self.rr_1024[i % n]) for i in beat_idx]
        contact: bool | None = self.contact
        hr = round(60 * 1024 / rr[-1]) if rr else 0
        if not self.contact:
            rr, hr = [], 0
        if not rr:
            return [wire.encode_heart_rate(hr, contact, [])]
        return [
            wire.encode_heart_rate(hr, contact, rr[i : i + wire.HRS_MAX_RR_PER_PACKET])
            for i in range(0, len(rr), wire.HRS_MAX_RR_PER_PACKET)
        ]

    def tick(self, k: int) -> None:
        """Send what one second of device time produced."""
        beats = self.beats_between(k * HR_PERIOD_S, (k + 1) * HR_PERIOD_S)
        for packet in self.heart_rate_packets(beats):
            if self.send(HR_MEASUREMENT, packet) and beats and self.contact:
                self.info.setdefault("first_sent_beat", beats[0])

    async def run(self) -> None:
        await self.periodic(HR_PERIOD_S, self.tick)


class PolarH10(HeartRateStrap):
    """A Polar H10: PMD ECG streaming (130 Hz, 73 samples per frame), HRS, battery, DIS.

    The ECG is a WFDB record's channel resampled to 130 Hz with the project's own polyphase
    resampler and rounded to whole µV (the H10 reports µV integers). PMD commands are answered
    on the control point as indications; measurement stops when the link drops, as on the
    real strap, so a client must send ``start`` again after reconnecting.
    """

    kind: ClassVar[DeviceKind] = "h10"
    services: ClassVar[tuple[ServiceDef, ...]] = (
        ServiceDef(
            HRS_SERVICE,
            (CharDef(HR_MEASUREMENT, ("notify",)), CharDef(BODY_SENSOR_LOCATION, ("read",))),
        ),
        BATTERY_DEF,
        ServiceDef(DIS_SERVICE, (CharDef(MANUFACTURER_NAME, ("read",)),)),
        ServiceDef(
            PMD_SERVICE,
            (
                CharDef(PMD_CONTROL_POINT, ("read", "write", "indicate")),
                CharDef(PMD_DATA, ("notify",)),
            ),
        ),
    )
    advertised_uuids: ClassVar[tuple[str, ...]] = (HRS_SERVICE,)
    data_uuid: ClassVar[str] = PMD_DATA

    def __init__(self, spec: DeviceSpec) -> None:
        super().__init__(spec)
        self.manufacturer_data = {POLAR_COMPANY_ID: bytes([0x3F, 0x00, 0x00, 0x00])}
        self.ecg_uv = load_ecg_130hz(spec) if spec.record else synthetic_ecg_130hz()
        self.ecg_active = False
        self.info["ecg_samples"] = len(self.ecg_uv)

    @staticmethod
    def _load_rr_1024(spec: DeviceSpec) -> NDArray[np.int64]:
        if spec.record is not None and Path(f"{spec.record}.atr").exists():
            import wfdb

            ann = wfdb.rdann(spec.record, "atr")
            beats = beat_samples(ann.sample, ann.symbol)
            beats = beats[beats >= round(spec.start_s * ann.fs)]
            if len(beats) > 1:
                return np.asarray(np.round(np.diff(beats) / float(ann.fs) * 1024.0), dtype=np.int64)
        return np.full(60, 1024, dtype=np.int64)

    def read_more(self, uuid: str) -> bytes:
        if uuid == PMD_CONTROL_POINT:
            # 17 octets as an H10 answers; octet 1 bits: ECG (0x01) and ACC (0x04)
            return bytes([wire.PMD_FEATURES_READ, 0x05]) + bytes(15)
        return super().read_more(uuid)

    def malformed_frame(self) -> bytes:
        return wire.malformed_pmd(self.rng)

    def on_disconnect(self) -> None:
        self.ecg_active = False

    def write(self, uuid: str, data: bytes) -> None:
        if uuid != PMD_CONTROL_POINT:
            return
        response = self._control(data)
        # The H10 indicates the response after acknowledging the write.
        asyncio.get_running_loop().call_soon(self.send, PMD_CONTROL_POINT, response)

    def _control(self, data: bytes) -> bytes:
        if len(data) < 2:
            return wire.encode_pmd_response(data[0] if data else 0, 0, PMD_ERR_INVALID_LENGTH)
        op, mt = data[0], data[1]
        if op not in (PMD_OP_GET_SETTINGS, PMD_OP_START, PMD_OP_STOP):
            return wire.encode_pmd_response(op, mt, PMD_ERR_INVALID_OP_CODE)
        if mt != wire.PMD_MEASUREMENT_ECG:
            return wire.encode_pmd_response(op, mt, PMD_ERR_NOT_SUPPORTED)
        if op == PMD_OP_GET_SETTINGS:
            params = bytes([PMD_SETTING_SAMPLE_RATE, 1, H10_ECG_FS_HZ, 0])
            params += bytes([PMD_SETTING_RESOLUTION, 1, H10_ECG_RESOLUTION_BITS, 0])
            return wire.encode_pmd_response(op, mt, PMD_ERR_SUCCESS, params)
        if op == PMD_OP_STOP:
            self.ecg_active = False
            return wire.encode_pmd_response(op, mt, PMD_ERR_SUCCESS)
        settings = _parse_pmd_settings(data[2:])
        if settings is None:
            return wire.encode_pmd_response(op, mt, PMD_ERR_INVALID_LENGTH)
        if settings.get(PMD_SETTING_SAMPLE_RATE, H10_ECG_FS_HZ) != H10_ECG_FS_HZ:
            return wire.encode_pmd_response(op, mt, PMD_ERR_INVALID_SAMPLE_RATE)
        if settings.get(PMD_SETTING_RESOLUTION, H10_ECG_RESOLUTION_BITS) != (
            H10_ECG_RESOLUTION_BITS
        ):
            return wire.encode_pmd_response(op, mt, PMD_ERR_INVALID_RESOLUTION)
        if self.ecg_active:
            return wire.encode_pmd_response(op, mt, PMD_ERR_ALREADY_IN_STATE)
        self.ecg_active = True
        self.info["ecg_starts"] = self.info.get("ecg_starts", 0) + 1
        return wire.encode_pmd_response(op, mt, PMD_ERR_SUCCESS)

    def ecg_frame(self, k: int) -> bytes:
        """PMD frame ``k`` since power-on: samples ``73k .. 73k+72`` of the looping record."""
        first = k * H10_SAMPLES_PER_FRAME
        idx = np.arange(first, first + H10_SAMPLES_PER_FRAME) % len(self.ecg_uv)
        samples = self.ecg_uv[idx] if self.contact else np.zeros(len(idx), dtype=np.int64)
        last_ns = round((first + H10_SAMPLES_PER_FRAME - 1) * 1e9 / H10_ECG_FS_HZ)
        return wire.encode_pmd_ecg(H10_TIMESTAMP_BASE_NS + last_ns, samples.tolist())

    def ecg_tick(self, k: int) -> None:
        """Frame ``k`` is complete: notify it if a measurement runs."""
        if not self.ecg_active:
            return
        if self.send(PMD_DATA, self.ecg_frame(k)):
            self.info.setdefault("first_sent_sample", k * H10_SAMPLES_PER_FRAME)
            self.info["last_sent_sample"] = (k + 1) * H10_SAMPLES_PER_FRAME - 1

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.periodic(H10_SAMPLES_PER_FRAME / H10_ECG_FS_HZ, self.ecg_tick))
            tg.create_task(self.periodic(HR_PERIOD_S, self.tick))


def _parse_pmd_settings(body: bytes) -> dict[int, int] | None:
    """Parse ``(type, count=1, uint16 value)`` setting triplets of a PMD start command."""
    settings: dict[int, int] = {}
    i = 0
    while i < len(body):
        if i + 4 > len(body) or body[i + 1] != 1:
            return None
        settings[body[i]] = int.from_bytes(body[i + 2 : i + 4], "little")
        i += 4
    return settings


def load_ecg_130hz(spec: DeviceSpec) -> NDArray[np.int64]:
    """A record's channel, resampled to 130 Hz and rounded to µV (what the H10 would send).

    Uses :func:`firmware_bridge.transports.replay.resample_uv`, the same resampler a test
    applies to compute the expected samples.
    """
    assert spec.record is not None
    import wfdb

    from firmware_bridge.transports.replay import _resample_ratio, resample_uv

    fs = float(wfdb.rdheader(spec.record).fs)
    start = round(spec.start_s * fs)
    stop = None if spec.stop_s is None else round(spec.stop_s * fs)
    record = wfdb.rdrecord(spec.record, channels=[spec.channel], sampfrom=start, sampto=stop)
    mv = np.asarray(record.p_signal[:, 0], dtype=np.float64)
    uv = (mv * 1000.0).astype(np.float32)
    up, down = _resample_ratio(fs, H10_ECG_FS_HZ)
    out = resample_uv(uv, up, down)
    return np.round(np.nan_to_num(out, nan=0.0)).astype(np.int64)


def synthetic_ecg_130hz() -> NDArray[np.int64]:
    """60 s of a plain 60 bpm spike train when no record is given (1 mV R waves)."""
    t = np.arange(60 * H10_ECG_FS_HZ) / H10_ECG_FS_HZ
    phase = t % 1.0
    return np.round(1000.0 * np.exp(-(((phase - 0.3) / 0.012) ** 2))).astype(np.int64)


class PulseOximeter(SimDevice):
    """A pulse oximeter: PLX Continuous Measurement 0x2A5F once a second.

    ``set_spo2(target, ramp_s)`` moves SpO2 linearly from its current value to ``target`` over
    ``ramp_s`` seconds of device time (e.g. 97 -> 88 % over 30 s: a desaturation).
    """

    kind: ClassVar[DeviceKind] = "plx"
    services: ClassVar[tuple[ServiceDef, ...]] = (
        ServiceDef(
            PLX_SERVICE,
            (CharDef(PLX_CONTINUOUS, ("notify",)), CharDef(PLX_FEATURES, ("read",))),
        ),
        BATTERY_DEF,
    )
    advertised_uuids: ClassVar[tuple[str, ...]] = (PLX_SERVICE,)
    data_uuid: ClassVar[str] = PLX_CONTINUOUS

    def __init__(self, spec: DeviceSpec) -> None:
        super().__init__(spec)
        self.ramp = (0.0, spec.spo2_pct, 0.0, spec.spo2_pct)  # t0, v0, t1, v1 (device s)

    def read_more(self, uuid: str) -> bytes:
        return b"\x00\x00" if uuid == PLX_FEATURES else b""

    def spo2_at(self, t_s: float) -> float:
        """SpO2 (%) on the commanded trajectory at device time ``t_s``."""
        t0, v0, t1, v1 = self.ramp
        if t_s >= t1 or t1 <= t0:
            return v1
        return v0 + (v1 - v0) * max(0.0, t_s - t0) / (t1 - t0)

    def set_spo2(self, target_pct: float, ramp_s: float) -> None:
        now = self.device_time_s()
        self.ramp = (now, self.spo2_at(now), now + max(0.0, ramp_s), target_pct)

    def tick(self, k: int) -> None:
        """One measurement per second of device time."""
        spo2 = round(self.spo2_at((k + 1) * HR_PERIOD_S), 1)
        self.send(PLX_CONTINUOUS, wire.encode_plx_continuous(spo2, self.spec.pulse_rate_bpm))

    async def run(self) -> None:
        await self.periodic(HR_PERIOD_S, self.tick)


class Thermometer(SimDevice):
    """A Health Thermometer: Temperature Measurement 0x2A1C (indicate) once a second."""

    kind: ClassVar[DeviceKind] = "thermometer"
    services: ClassVar[tuple[ServiceDef, ...]] = (
        ServiceDef(
            HTS_SERVICE,
            (
                CharDef(TEMPERATURE_MEASUREMENT, ("indicate",)),
                CharDef(TEMPERATURE_TYPE, ("read",)),
            ),
        ),
        BATTERY_DEF,
    )
    advertised_uuids: ClassVar[tuple[str, ...]] = (HTS_SERVICE,)
    data_uuid: ClassVar[str] = TEMPERATURE_MEASUREMENT

    def __init__(self, spec: DeviceSpec) -> None:
        super().__init__(spec)
        self.temperature_c = spec.temperature_c

    def read_more(self, uuid: str) -> bytes:
        return b"\x02" if uuid == TEMPERATURE_TYPE else b""

    def set_temperature(self, temperature_c: float) -> None:
        self.temperature_c = temperature_c

    def tick(self, k: int) -> None:
        """One measurement per second of device time."""
        del k
        self.send(TEMPERATURE_MEASUREMENT, wire.encode_temperature(self.temperature_c))

    async def run(self) -> None:
        await self.periodic(HR_PERIOD_S, self.tick)


SIMULATORS: dict[DeviceKind, type[SimDevice]] = {
    "h10": PolarH10,
    "hrs": HeartRateStrap,
    "plx": PulseOximeter,
    "thermometer": Thermometer,
}
"""Device kind -> simulator class (the CLI's and the fixture's registry)."""


def build_device(spec: DeviceSpec) -> SimDevice:
    """Instantiate the simulator for ``spec.kind``."""
    return SIMULATORS[spec.kind](spec)


def specs_to_json(specs: list[DeviceSpec]) -> str:
    """Serialise specs for the subprocess command line."""
    return json.dumps([spec.to_json() for spec in specs])
