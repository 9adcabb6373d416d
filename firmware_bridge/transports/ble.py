"""BLE wearables as one :class:`~firmware_bridge.transports.Source`, with reconnection.

The module is long (about 850 lines) because one device's whole connection lifecycle (scan,
connect, subscribe, watchdog, decode, ECG gap filling, reconnect) is one state machine that
reads best in one place; the configuration model ``BleDeviceConfig`` lives in
:mod:`firmware_bridge.devices` and the plausibility gates in :mod:`firmware_bridge.limits`.

Supported devices (``BleDeviceConfig.kind``):

``polar_h10``
    Polar H10 chest strap: ECG over the Polar Measurement Data (PMD) service at 130 Hz, plus
    the Heart Rate Service for skin contact (and optionally its RR intervals) and the Battery
    Service.
``hrs``
    Any Bluetooth Heart Rate Service strap: RR intervals and skin contact from 0x2A37.
``plx``
    Pulse oximeter (Pulse Oximeter Service, PLX Continuous Measurement 0x2A5F).
``thermometer``
    Health Thermometer (Temperature Measurement 0x2A1C).

How a device is followed
------------------------
Each device runs its own loop: scan (by address or advertised name), connect through
``bleak_retry_connector.establish_connection`` (its retry and backoff for the transient BlueZ
errors), subscribe, then consume notifications until the link is lost or the device goes
silent, and start again. Scans are serialised (BlueZ allows one discovery per D-Bus client,
and bleak uses one client per process).

- The notification callback only stamps ``time.monotonic_ns()`` and enqueues the raw bytes
  (``put_nowait``; a full queue counts ``notifications_dropped``). Decoding happens in the
  device's consumer; a frame that does not decode (:class:`~firmware_bridge.errors.
  FrameDecodeError`) is counted in ``stats[device].malformed_frames`` and dropped.
- Silence watchdog: no decoded frame on the device's measurement characteristic for
  ``silence_s`` seconds while connected ends the session (``DISCONNECTED``, detail
  ``"silent for N s"``): the Polar H10 is known to stop streaming after 30-150 s on Linux when
  BlueZ rejects a connection-parameter update, with the link still up [3]_.
- A link loss (bleak's disconnected callback) ends the session the same way.
- Reconnection starts at once after a session that delivered data, then backs off
  exponentially from ``reconnect_initial_s`` to ``reconnect_max_s``.
- ``CONNECTED`` is emitted when data flows again (the first decoded measurement of a session),
  not when the link comes up: a link without data is still a sensor failure.
- Every session has its own queue and its own callbacks, and subscribes each characteristic
  once, so a reconnect can never deliver a notification twice (duplicate callbacks after
  reconnect are a known bleak/BlueZ pitfall [4]_).

ECG stream time
---------------
ECG chunks are contiguous from sample 0 (the first sample received). After a reconnect (or a
lost notification within a session), the missing stretch is filled with ``NaN`` so that stream
time never drifts from wall time. Its length comes from the H10's sensor timestamps (the
timestamp of the last sample of each frame, in ns): exact, and independent of how long the
reconnection took. When the sensor clock is not usable (it went backwards, e.g. the strap
rebooted, or jumped more than ``MAX_ECG_GAP_FILL_S``), the gap is estimated from the arrival
times instead. Within a session, timestamp differences under ``ECG_GAP_TOLERANCE_SAMPLES`` are
taken as clock jitter, not loss.

Other frames carry ``t_s``, seconds since the source started.

References
----------
.. [1] Bluetooth SIG. Heart Rate Service 1.0; Pulse Oximeter Service 1.0; Health Thermometer
   Service 1.0; Battery Service 1.0.
.. [2] Polar Electro. Polar BLE SDK, Polar Measurement Data specification (H10 ECG, 130 Hz).
.. [3] polarofficial/polar-ble-sdk and hbldh/bleak issue reports: H10 streams stopping after
   ~30 s / ~100 s / 150 s on Linux (rejected connection-parameter update).
.. [4] hbldh/bleak issue reports on duplicate notifications after reconnecting (BlueZ
   ``StartNotify`` vs ``AcquireNotify``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from bleak_retry_connector import BleakClientWithServiceCache, establish_connection
from numpy.typing import NDArray

from firmware_bridge.codecs.battery import BATTERY_LEVEL_UUID, decode_battery_level
from firmware_bridge.codecs.heart_rate import (
    HEART_RATE_MEASUREMENT_UUID,
    HEART_RATE_SERVICE_UUID,
    decode_heart_rate_measurement,
)
from firmware_bridge.codecs.plx import PLX_CONTINUOUS_UUID, PLX_SERVICE_UUID, decode_plx_continuous
from firmware_bridge.codecs.pmd import (
    PMD_CONTROL_POINT_UUID,
    PMD_DATA_UUID,
    PMD_SERVICE_UUID,
    PmdControlResponse,
    PmdEcgFrame,
    PmdError,
    PmdMeasurementType,
    build_start_ecg,
    build_stop,
    decode_pmd_data,
    parse_control_response,
)
from firmware_bridge.codecs.thermometer import (
    HEALTH_THERMOMETER_SERVICE_UUID,
    TEMPERATURE_MEASUREMENT_UUID,
    decode_temperature_measurement,
)
from firmware_bridge.devices import BleDeviceConfig, BleKind
from firmware_bridge.errors import FrameDecodeError, SourceError
from firmware_bridge.frames import (
    DeviceEvent,
    DeviceEventKind,
    EcgChunk,
    Frame,
    RrIntervals,
    Spo2Reading,
    TemperatureReading,
)
from firmware_bridge.limits import (
    PULSE_MAX_PLAUSIBLE_BPM,
    PULSE_MIN_PLAUSIBLE_BPM,
    RR_MAX_PLAUSIBLE_MS,
    RR_MIN_PLAUSIBLE_MS,
    SPO2_MAX_PLAUSIBLE_PCT,
    SPO2_MIN_PLAUSIBLE_PCT,
    TEMPERATURE_MAX_PLAUSIBLE_C,
    TEMPERATURE_MIN_PLAUSIBLE_C,
)

logger = logging.getLogger(__name__)

H10_ECG_FS_HZ = 130
"""The Polar H10's only ECG sampling rate (PMD get-settings answer; Polar BLE SDK)."""

H10_ECG_RESOLUTION_BITS = 14
"""The Polar H10's only ECG resolution."""

RAW_QUEUE_MAX = 8192
"""Raw notifications buffered per session before new ones are dropped (and counted): about
4 min of H10 ECG frames, or a burst of a few thousand malformed ones."""

OUT_QUEUE_MAX = 1024
"""Decoded frames buffered for the consumer of :meth:`BleSource.frames`; when full, device
consumers wait (backpressure), so the raw queues absorb the delay."""

PMD_RESPONSE_TIMEOUT_S = 5.0
"""Wait for the PMD control-point indication after a start request (an H10 answers in
~100 ms; 5 s covers a congested link)."""

DISCONNECT_TIMEOUT_S = 5.0
"""Bound on a client disconnect (BlueZ answers within ~1 s; a dead D-Bus may never answer)."""

RECONNECT_AFTER_DATA_S = 0.1
"""Pause before reconnecting after a session that delivered data (lets bleak's disconnect
callbacks run; a link lost mid-stream is retried at once)."""

ECG_GAP_TOLERANCE_SAMPLES = 36
"""Within a session, timestamp gaps up to half an H10 frame (73 samples) are clock jitter; a
lost notification shows as a gap of a whole frame."""

MAX_ECG_GAP_FILL_S = 6 * 3600.0
"""Longest gap accepted from the sensor clock; longer (or negative) means the clock reset, and
the gap is estimated from arrival times instead."""

SILENCE_RECHECK_YIELDS = 3
"""Event-loop turns granted to pending notification callbacks before the watchdog fires (the
D-Bus reader, then bleak's dispatch, then our callback)."""

NAN_CHUNK_MAX_S = 5.0
"""Gap fills are emitted as NaN chunks of at most this length."""

BleFrame = Frame
"""Any frame :class:`BleSource` yields."""


class BleDeviceNotFoundError(SourceError):
    """No advertisement from the configured device during a scan.

    Attributes
    ----------
    device : str
        The device id.
    """

    def __init__(self, device: str, timeout_s: float) -> None:
        super().__init__(
            f"BLE device {device} not found within {timeout_s:g} s: is it switched on, worn"
            " (a chest strap advertises only with skin contact) and not connected elsewhere?"
        )
        self.device = device


class BleProtocolError(SourceError):
    """The device lacks a required characteristic or rejected a command.

    Attributes
    ----------
    device : str
        The device id.
    """

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"BLE device {device}: {message}")
        self.device = device


@dataclass(slots=True)
class BleDeviceStats:
    """Counters of one device (published with the agent's status).

    Attributes
    ----------
    notifications : int
        Notifications received (all characteristics).
    notifications_dropped : int
        Notifications dropped because the raw queue was full.
    stale_notifications : int
        Notifications from a finished session, ignored.
    malformed_frames : int
        Notifications that did not decode (dropped).
    implausible_values : int
        Decoded values outside the plausibility gates (dropped).
    frames : int
        Frames yielded.
    connects, connect_failures, link_losses, silence_timeouts : int
        Sessions started, connection attempts failed, links lost, watchdog expiries.
    ecg_samples, ecg_gap_samples : int
        ECG samples yielded, and NaN samples filled for gaps.
    ecg_clock_resets : int
        Gaps estimated from arrival times because the sensor clock was unusable.
    """

    notifications: int = 0
    notifications_dropped: int = 0
    stale_notifications: int = 0
    malformed_frames: int = 0
    implausible_values: int = 0
    frames: int = 0
    connects: int = 0
    connect_failures: int = 0
    link_losses: int = 0
    silence_timeouts: int = 0
    ecg_samples: int = 0
    ecg_gap_samples: int = 0
    ecg_clock_resets: int = 0


@dataclass(frozen=True, slots=True)
class FoundDevice:
    """A supported device seen by :func:`scan_supported`.

    Attributes
    ----------
    name : str | None
        Advertised name.
    address : str
        Bluetooth address.
    rssi_dbm : int
        Signal strength of the last advertisement, dBm.
    kinds : tuple[BleKind, ...]
        The kinds this transport can drive it as (best first).
    """

    name: str | None
    address: str
    rssi_dbm: int
    kinds: tuple[BleKind, ...]


_SCAN_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _scan_lock() -> asyncio.Lock:
    """Return the event loop's scan lock (BlueZ allows one discovery per D-Bus client)."""
    loop = asyncio.get_running_loop()
    lock = _SCAN_LOCKS.get(loop)
    if lock is None:
        lock = _SCAN_LOCKS[loop] = asyncio.Lock()
    return lock


def kinds_from_advertisement(name: str | None, service_uuids: Sequence[str]) -> tuple[BleKind, ...]:
    """Judge which kinds a device supports from its advertised name and service UUIDs.

    A Polar H10 advertises the Heart Rate Service and its name ("Polar H10 <id>"), not the PMD
    service, so the name decides ``polar_h10``.
    """
    uuids = {u.lower() for u in service_uuids}
    kinds: list[BleKind] = []
    if (name or "").lower().startswith("polar h10") or PMD_SERVICE_UUID in uuids:
        kinds.append("polar_h10")
    if HEART_RATE_SERVICE_UUID in uuids:
        kinds.append("hrs")
    if PLX_SERVICE_UUID in uuids:
        kinds.append("plx")
    if HEALTH_THERMOMETER_SERVICE_UUID in uuids:
        kinds.append("thermometer")
    return tuple(kinds)


async def scan_supported(timeout_s: float = 5.0) -> list[FoundDevice]:
    """Scan for ``timeout_s`` seconds and list the devices this transport supports.

    Parameters
    ----------
    timeout_s : float
        Scan duration, s.

    Returns
    -------
    list[FoundDevice]
        Supported devices, strongest signal first.

    Raises
    ------
    bleak.exc.BleakError
        If there is no usable Bluetooth adapter (bleak's own error, with its advice).
    """
    async with _scan_lock():
        seen = await BleakScanner.discover(timeout=timeout_s, return_adv=True)
    found = []
    for device, adv in seen.values():
        name = adv.local_name or device.name
        kinds = kinds_from_advertisement(name, adv.service_uuids)
        if kinds:
            found.append(FoundDevice(name, device.address, adv.rssi, kinds))
    found.sort(key=lambda d: -d.rssi_dbm)
    return found


class _Tag(enum.Enum):
    """Which characteristic a raw notification came from."""

    BATTERY = "battery"
    HEART_RATE = "heart_rate"
    PMD_CONTROL = "pmd_control"
    PMD_DATA = "pmd_data"
    PLX = "plx"
    TEMPERATURE = "temperature"


_PRIMARY: dict[BleKind, _Tag] = {
    "polar_h10": _Tag.PMD_DATA,
    "hrs": _Tag.HEART_RATE,
    "plx": _Tag.PLX,
    "thermometer": _Tag.TEMPERATURE,
}
"""The measurement characteristic whose frames feed the silence watchdog, per kind."""

_RawItem = tuple[_Tag, int, bytes] | None  # None: the link was lost


class _Session:
    """One connection: its own raw queue and callbacks (never shared with another session)."""

    def __init__(self, number: int, stats: BleDeviceStats) -> None:
        self.number = number
        self.stats = stats
        self.queue: asyncio.Queue[_RawItem] = asyncio.Queue(maxsize=RAW_QUEUE_MAX)
        self.active = True
        self.link_lost = False
        self.armed_ns: int | None = None
        self.last_primary_ns: int | None = None
        self.delivered = False
        self.subscribed: set[str] = set()
        self.pmd_waiter: asyncio.Future[PmdControlResponse] | None = None

    def callback(self, tag: _Tag) -> Callable[[BleakGATTCharacteristic, bytearray], None]:
        """Return a notification callback that only stamps and enqueues."""

        def on_notify(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            arrival_ns = time.monotonic_ns()
            if not self.active:
                self.stats.stale_notifications += 1
                return
            try:
                self.queue.put_nowait((tag, arrival_ns, bytes(data)))
            except asyncio.QueueFull:
                self.stats.notifications_dropped += 1

        return on_notify

    def on_disconnected(self, _client: BleakClient) -> None:
        """Bleak's disconnected callback: wake the consumer."""
        self.link_lost = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


class _DeviceLink:
    """Follows one device for the life of the source: connect, consume, reconnect."""

    def __init__(
        self,
        cfg: BleDeviceConfig,
        out: asyncio.Queue[tuple[str, BleFrame]],
        stats: BleDeviceStats,
        origin_ns: int,
    ) -> None:
        self.cfg = cfg
        self.id = cfg.device_id
        self.out = out
        self.stats = stats
        self.origin_ns = origin_ns
        self.linked: bool | None = None
        self.session: _Session | None = None
        self.sessions = 0
        self.contact: bool | None = None
        self.battery_pct: int | None = None
        # ECG stream state (persists across sessions)
        self.ecg_next_idx = 0
        self.ecg_last_ts_ns: int | None = None
        self.ecg_last_arrival_ns: int | None = None
        self.ecg_session = -1
        self.ecg_utc_origin: datetime | None = None

    # --- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, stream, reconnect, forever (until cancelled); never raises otherwise."""
        backoff_s = self.cfg.reconnect_initial_s
        while True:
            delivered = False
            try:
                delivered = await self._session()
            except (BleakError, SourceError, TimeoutError, EOFError, OSError) as err:
                self.stats.connect_failures += 1
                logger.warning("%s: %s", self.id, err)
                await self._set_linked(False, f"connection failed: {err}")
            except Exception as err:
                # never let one device stop the source: count, log, back off, go on
                self.stats.connect_failures += 1
                logger.exception("%s: unexpected error; reconnecting", self.id)
                await self._set_linked(False, f"error: {type(err).__name__}")
            if delivered:
                backoff_s = self.cfg.reconnect_initial_s
                delay_s = RECONNECT_AFTER_DATA_S
            else:
                delay_s = backoff_s
                backoff_s = min(backoff_s * 2.0, self.cfg.reconnect_max_s)
            await asyncio.sleep(delay_s)

    async def _find(self) -> BLEDevice:
        async with _scan_lock():
            if self.cfg.address is not None:
                device = await BleakScanner.find_device_by_address(
                    self.cfg.address, timeout=self.cfg.scan_timeout_s
                )
            else:
                wanted = self.cfg.name

                def match(dev: BLEDevice, adv: AdvertisementData) -> bool:
                    return (adv.local_name or dev.name) == wanted

                device = await BleakScanner.find_device_by_filter(
                    match, timeout=self.cfg.scan_timeout_s
                )
        if device is None:
            raise BleDeviceNotFoundError(self.id, self.cfg.scan_timeout_s)
        return device

    async def _session(self) -> bool:
        """One connection; return whether it delivered data."""
        device = await self._find()
        self.sessions += 1
        session = _Session(self.sessions, self.stats)
        client = await establish_connection(
            BleakClientWithServiceCache,
            device,
            self.id,
            disconnected_callback=session.on_disconnected,
            max_attempts=self.cfg.connect_attempts,
        )
        self.stats.connects += 1
        self.session = session
        logger.info("%s: connected (session %d)", self.id, session.number)
        pump = asyncio.create_task(self._pump(session), name=f"ble-pump-{self.id}")
        try:
            await self._subscribe(client, session)
            reason = await pump
            await self._set_linked(False, reason)
        finally:
            session.active = False
            if not pump.done():
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
            await self._close(client, session)
        return session.delivered

    async def _close(self, client: BleakClient, session: _Session) -> None:
        if self.cfg.kind == "polar_h10" and client.is_connected and not session.link_lost:
            # stop the measurement so the strap saves its battery (best effort)
            with contextlib.suppress(BleakError, TimeoutError, EOFError, OSError):
                async with asyncio.timeout(1.0):
                    await client.write_gatt_char(
                        PMD_CONTROL_POINT_UUID, build_stop(PmdMeasurementType.ECG), response=True
                    )
        with contextlib.suppress(BleakError, TimeoutError, EOFError, OSError):
            async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                await client.disconnect()

    # --- subscriptions -------------------------------------------------------------------

    def _char(self, client: BleakClient, uuid: str, what: str) -> BleakGATTCharacteristic:
        char = client.services.get_characteristic(uuid)
        if char is None:
            raise BleProtocolError(
                self.id, f"no {what} characteristic ({uuid}): is it a {self.cfg.kind} device?"
            )
        return char

    async def _notify(
        self, client: BleakClient, char: BleakGATTCharacteristic, tag: _Tag, session: _Session
    ) -> None:
        if char.uuid in session.subscribed:  # never twice in one session
            return
        await client.start_notify(char, session.callback(tag))
        session.subscribed.add(char.uuid)

    async def _subscribe(self, client: BleakClient, session: _Session) -> None:
        battery = client.services.get_characteristic(BATTERY_LEVEL_UUID)
        if battery is not None:
            if "read" in battery.properties:
                value = await client.read_gatt_char(battery)
                with contextlib.suppress(asyncio.QueueFull):
                    session.queue.put_nowait((_Tag.BATTERY, time.monotonic_ns(), bytes(value)))
            if "notify" in battery.properties:
                await self._notify(client, battery, _Tag.BATTERY, session)
        kind = self.cfg.kind
        if kind in ("polar_h10", "hrs"):
            hr = client.services.get_characteristic(HEART_RATE_MEASUREMENT_UUID)
            if hr is None and kind == "hrs":
                hr = self._char(client, HEART_RATE_MEASUREMENT_UUID, "Heart Rate Measurement")
            if hr is not None:  # an H10 without HRS still streams ECG (no contact events)
                await self._notify(client, hr, _Tag.HEART_RATE, session)
        if kind == "polar_h10":
            control = self._char(client, PMD_CONTROL_POINT_UUID, "PMD control point")
            data = self._char(client, PMD_DATA_UUID, "PMD data")
            await self._notify(client, control, _Tag.PMD_CONTROL, session)
            await self._notify(client, data, _Tag.PMD_DATA, session)
            await self._start_ecg(client, control, session)
        elif kind == "plx":
            plx = self._char(client, PLX_CONTINUOUS_UUID, "PLX Continuous Measurement")
            await self._notify(client, plx, _Tag.PLX, session)
        elif kind == "thermometer":
            temp = self._char(client, TEMPERATURE_MEASUREMENT_UUID, "Temperature Measurement")
            await self._notify(client, temp, _Tag.TEMPERATURE, session)
        session.armed_ns = time.monotonic_ns()

    async def _start_ecg(
        self, client: BleakClient, control: BleakGATTCharacteristic, session: _Session
    ) -> None:
        session.pmd_waiter = asyncio.get_running_loop().create_future()
        await client.write_gatt_char(
            control, build_start_ecg(H10_ECG_FS_HZ, H10_ECG_RESOLUTION_BITS), response=True
        )
        try:
            async with asyncio.timeout(PMD_RESPONSE_TIMEOUT_S):
                response = await session.pmd_waiter
        except TimeoutError:
            raise BleProtocolError(
                self.id, f"no PMD response to ECG start within {PMD_RESPONSE_TIMEOUT_S:g} s"
            ) from None
        if not response.ok and response.error is not PmdError.ALREADY_IN_STATE:
            raise BleProtocolError(self.id, f"ECG start rejected: {response.error.name}")

    # --- consumer ------------------------------------------------------------------------

    async def _pump(self, session: _Session) -> str:
        """Decode a session's notifications until the link is lost or falls silent."""
        silence_ns = round(self.cfg.silence_s * 1e9)
        while True:
            since = session.last_primary_ns or session.armed_ns
            timeout_s = None if since is None else (since + silence_ns - time.monotonic_ns()) / 1e9
            try:
                async with asyncio.timeout(None if timeout_s is None else max(timeout_s, 0.0)):
                    item = await session.queue.get()
            except TimeoutError:
                # After a stall of this process (a loaded Pi), the timer may fire before the
                # D-Bus reader has run: let pending callbacks in before calling it silence.
                for _ in range(SILENCE_RECHECK_YIELDS):
                    await asyncio.sleep(0)
                if not session.queue.empty():
                    continue
                self.stats.silence_timeouts += 1
                return f"silent for {self.cfg.silence_s:g} s"
            if item is None or session.link_lost:
                self.stats.link_losses += 1
                return "link lost"
            tag, arrival_ns, data = item
            self.stats.notifications += 1
            try:
                await self._handle(tag, arrival_ns, data, session)
            except FrameDecodeError as err:
                self.stats.malformed_frames += 1
                logger.debug("%s: malformed %s frame dropped: %s", self.id, tag.value, err)
                continue
            if tag is _PRIMARY[self.cfg.kind]:
                session.last_primary_ns = arrival_ns
                if not session.delivered:
                    session.delivered = True
                    await self._set_linked(True, f"{self.cfg.kind} streaming")

    async def _handle(self, tag: _Tag, arrival_ns: int, data: bytes, session: _Session) -> None:
        if tag is _Tag.PMD_DATA:
            for chunk in self._ecg_chunks(decode_pmd_data(data), arrival_ns, session.number):
                await self._emit(chunk)
        elif tag is _Tag.HEART_RATE:
            await self._heart_rate(data, arrival_ns)
        elif tag is _Tag.PMD_CONTROL:
            response = parse_control_response(data)
            waiter = session.pmd_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(response)
        elif tag is _Tag.BATTERY:
            await self._battery(decode_battery_level(data), arrival_ns)
        elif tag is _Tag.PLX:
            await self._spo2(data, arrival_ns)
        elif tag is _Tag.TEMPERATURE:
            await self._temperature(data, arrival_ns)

    async def _heart_rate(self, data: bytes, arrival_ns: int) -> None:
        m = decode_heart_rate_measurement(data)
        if m.sensor_contact is not None and m.sensor_contact != self.contact:
            previous, self.contact = self.contact, m.sensor_contact
            if not m.sensor_contact:
                await self._event(DeviceEventKind.CONTACT_LOST, "skin contact lost", arrival_ns)
            elif previous is False:
                await self._event(
                    DeviceEventKind.CONTACT_RESTORED, "skin contact restored", arrival_ns
                )
        if not self.cfg.rr_enabled or not m.rr_ms:
            return
        rr_ms = tuple(rr for rr in m.rr_ms if RR_MIN_PLAUSIBLE_MS <= rr <= RR_MAX_PLAUSIBLE_MS)
        self.stats.implausible_values += len(m.rr_ms) - len(rr_ms)
        if rr_ms:
            hr = float(m.hr_bpm) if m.hr_bpm > 0 else None
            await self._emit(RrIntervals(rr_ms, self._t_s(arrival_ns), arrival_ns, hr))

    async def _battery(self, level_pct: int, arrival_ns: int) -> None:
        if level_pct == self.battery_pct:
            return
        self.battery_pct = level_pct
        low = level_pct <= self.cfg.battery_low_pct
        detail = f"battery {level_pct} %" + (" (low)" if low else "")
        await self._event(
            DeviceEventKind.BATTERY,
            detail,
            arrival_ns,
            battery_pct=level_pct,
            low="true" if low else "false",
        )

    async def _spo2(self, data: bytes, arrival_ns: int) -> None:
        m = decode_plx_continuous(data)
        if m.spo2_pct is None:
            return  # the oximeter has no valid value (finger out, searching)
        if not SPO2_MIN_PLAUSIBLE_PCT <= m.spo2_pct <= SPO2_MAX_PLAUSIBLE_PCT:
            self.stats.implausible_values += 1
            return
        pr = m.pulse_rate_bpm
        if pr is not None and not PULSE_MIN_PLAUSIBLE_BPM <= pr <= PULSE_MAX_PLAUSIBLE_BPM:
            self.stats.implausible_values += 1
            pr = None
        await self._emit(Spo2Reading(m.spo2_pct, pr, self._t_s(arrival_ns), arrival_ns, self.id))

    async def _temperature(self, data: bytes, arrival_ns: int) -> None:
        m = decode_temperature_measurement(data)
        temperature_c = m.temperature_c
        if not (
            math.isfinite(temperature_c)
            and TEMPERATURE_MIN_PLAUSIBLE_C <= temperature_c <= TEMPERATURE_MAX_PLAUSIBLE_C
        ):
            self.stats.implausible_values += 1
            return
        await self._emit(
            TemperatureReading(temperature_c, self._t_s(arrival_ns), arrival_ns, self.id)
        )

    # --- ECG -----------------------------------------------------------------------------

    def _ecg_chunks(self, frame: PmdEcgFrame, arrival_ns: int, session: int) -> list[EcgChunk]:
        """Turn one PMD frame into chunks: NaN for any gap, then the frame's samples."""
        n = len(frame.samples_uv)
        period_ns = 1e9 / H10_ECG_FS_HZ
        chunks: list[EcgChunk] = []
        if self.ecg_last_ts_ns is not None and self.ecg_last_arrival_ns is not None:
            first_ts_ns = frame.sensor_timestamp_ns - (n - 1) * period_ns
            gap = round((first_ts_ns - self.ecg_last_ts_ns - period_ns) / period_ns)
            by_clock_ok = 0 <= gap <= MAX_ECG_GAP_FILL_S * H10_ECG_FS_HZ
            if not by_clock_ok:
                self.stats.ecg_clock_resets += 1
                elapsed = (arrival_ns - self.ecg_last_arrival_ns) / period_ns
                gap = min(max(0, round(elapsed) - n), round(MAX_ECG_GAP_FILL_S * H10_ECG_FS_HZ))
            elif session == self.ecg_session and gap <= ECG_GAP_TOLERANCE_SAMPLES:
                gap = 0
            if gap > 0:
                chunks.extend(self._nan_chunks(gap, arrival_ns))
        chunks.append(self._chunk(np.asarray(frame.samples_uv, dtype=np.float32), arrival_ns))
        self.ecg_last_ts_ns = frame.sensor_timestamp_ns
        self.ecg_last_arrival_ns = arrival_ns
        self.ecg_session = session
        self.stats.ecg_samples += n
        return chunks

    def _nan_chunks(self, gap: int, arrival_ns: int) -> list[EcgChunk]:
        self.stats.ecg_gap_samples += gap
        step = round(NAN_CHUNK_MAX_S * H10_ECG_FS_HZ)
        out = []
        while gap > 0:
            size = min(gap, step)
            out.append(self._chunk(np.full(size, np.nan, dtype=np.float32), arrival_ns))
            gap -= size
        return out

    def _chunk(self, samples_uv: NDArray[np.float32], arrival_ns: int) -> EcgChunk:
        if self.ecg_utc_origin is None:
            self.ecg_utc_origin = datetime.now(UTC)
        idx = self.ecg_next_idx
        self.ecg_next_idx += len(samples_uv)
        return EcgChunk(
            samples_uv=samples_uv,
            fs_hz=float(H10_ECG_FS_HZ),
            first_sample_idx=idx,
            t0_monotonic_ns=arrival_ns,
            t0_utc=self.ecg_utc_origin + timedelta(seconds=idx / H10_ECG_FS_HZ),
            source_sample_idx=idx,
            source_fs_hz=float(H10_ECG_FS_HZ),
        )

    # --- output --------------------------------------------------------------------------

    def _t_s(self, arrival_ns: int) -> float:
        return (arrival_ns - self.origin_ns) / 1e9

    async def _emit(self, frame: BleFrame) -> None:
        self.stats.frames += 1
        await self.out.put((self.id, frame))

    async def _event(
        self,
        kind: DeviceEventKind,
        detail: str,
        arrival_ns: int,
        *,
        battery_pct: int | None = None,
        **extra: str,
    ) -> None:
        info = {"device": self.id, "kind": self.cfg.kind}
        if self.cfg.address is not None:
            info["address"] = self.cfg.address
        info.update(extra)
        await self._emit(
            DeviceEvent(
                kind=kind,
                t_s=self._t_s(arrival_ns),
                t0_monotonic_ns=arrival_ns,
                detail=f"{self.id}: {detail}",
                battery_pct=battery_pct,
                extra=info,
            )
        )

    async def _set_linked(self, linked: bool, detail: str) -> None:
        """Emit CONNECTED/DISCONNECTED on a change of state only."""
        if self.linked == linked:
            return
        self.linked = linked
        kind = DeviceEventKind.CONNECTED if linked else DeviceEventKind.DISCONNECTED
        logger.info("%s: %s (%s)", self.id, kind.value, detail)
        await self._event(kind, detail, time.monotonic_ns())


class BleSource:
    """Frames from one or more BLE wearables, merged: a BLE :class:`~.transports.Source`.

    Parameters
    ----------
    devices : Sequence[BleDeviceConfig]
        The devices to follow; their ``device_id`` must be unique.

    Attributes
    ----------
    stats : dict[str, BleDeviceStats]
        Counters per device id.

    Raises
    ------
    ValueError
        If ``devices`` is empty or two devices share an id.

    Notes
    -----
    :meth:`frames` runs until its consumer stops iterating (close the iterator, e.g. with
    ``contextlib.aclosing``, to disconnect cleanly). :meth:`tagged_frames` yields
    ``(device_id, frame)`` pairs for consumers that need each frame's origin.
    """

    def __init__(self, devices: Sequence[BleDeviceConfig]) -> None:
        if not devices:
            msg = "BleSource needs at least one device"
            raise ValueError(msg)
        ids = [cfg.device_id for cfg in devices]
        if len(set(ids)) != len(ids):
            msg = f"BLE device ids must be unique: {ids}"
            raise ValueError(msg)
        self.devices = tuple(devices)
        self.stats: dict[str, BleDeviceStats] = {i: BleDeviceStats() for i in ids}

    def counters(self) -> dict[str, int]:
        """Return every device's counters, summed, as ``ble_<name>`` (:class:`BleDeviceStats`)."""
        out: dict[str, int] = {}
        for device_stats in self.stats.values():
            for name, value in asdict(device_stats).items():
                if isinstance(value, int):
                    out[f"ble_{name}"] = out.get(f"ble_{name}", 0) + value
        return out

    def describe(self) -> str:
        """E.g. ``ble:polar_h10(Polar H10 ABCD1234)+plx(00:1C:05:12:34:56)``."""
        return "ble:" + "+".join(f"{d.kind}({d.device_id})" for d in self.devices)

    async def tagged_frames(self) -> AsyncGenerator[tuple[str, BleFrame]]:
        """Yield ``(device_id, frame)`` from all devices, in arrival order."""
        out: asyncio.Queue[tuple[str, BleFrame]] = asyncio.Queue(maxsize=OUT_QUEUE_MAX)
        origin_ns = time.monotonic_ns()
        links = [
            _DeviceLink(cfg, out, self.stats[cfg.device_id], origin_ns) for cfg in self.devices
        ]
        tasks = [asyncio.create_task(link.run(), name=f"ble-{link.id}") for link in links]
        try:
            while True:
                yield await out.get()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def frames(self) -> AsyncGenerator[BleFrame]:
        """Yield frames from all devices, in arrival order (see :meth:`tagged_frames`)."""
        async with contextlib.aclosing(self.tagged_frames()) as tagged:
            async for _device, frame in tagged:
                yield frame
