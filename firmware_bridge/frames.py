"""Typed frames that every source yields (see DESIGN.md, "Frames").

Frames are internal, high-rate values (a waveform chunk every few hundred ms), so they are frozen
slotted dataclasses holding numpy arrays rather than pydantic models; everything that leaves the
process (MQTT payloads, config) is pydantic, in :mod:`agent.messages` and :mod:`agent.config`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class EcgChunk:
    """A contiguous chunk of single-lead ECG.

    Attributes
    ----------
    samples_uv : NDArray[np.float32]
        Shape ``(n_samples,)``, ECG in microvolts. ``NaN`` marks samples the device flagged
        invalid (e.g. WFDB's invalid-sample sentinel); consumers treat them as lead-off.
    fs_hz : float
        Sampling rate of ``samples_uv`` in Hz.
    first_sample_idx : int
        Index of ``samples_uv[0]`` in the stream, counted at ``fs_hz`` from 0. Consecutive
        chunks of one stream are contiguous: ``next.first_sample_idx == prev.first_sample_idx +
        len(prev.samples_uv)``.
    t0_monotonic_ns : int
        ``time.monotonic_ns()`` at which the first sample arrived (latency measurement).
    t0_utc : datetime
        Timezone-aware UTC wall-clock time of the first sample (for humans).
    source_sample_idx : int
        Index of the first sample at the *source's own* rate (differs from
        ``first_sample_idx`` when the source resamples; used to report WFDB sample numbers).
    source_fs_hz : float
        The source's own sampling rate in Hz.
    """

    samples_uv: NDArray[np.float32]
    fs_hz: float
    first_sample_idx: int
    t0_monotonic_ns: int
    t0_utc: datetime
    source_sample_idx: int = 0
    source_fs_hz: float = 0.0

    @property
    def t0_s(self) -> float:
        """Stream time of the first sample, in seconds from the start of the stream."""
        return self.first_sample_idx / self.fs_hz

    @property
    def duration_s(self) -> float:
        """Duration of the chunk in seconds."""
        return len(self.samples_uv) / self.fs_hz

    def split(self, k: int) -> tuple[EcgChunk, EcgChunk]:
        """Cut the chunk before its sample ``k``: the first ``k`` samples, then the rest.

        The two parts are contiguous chunks of the same stream, as a source that had sent
        them one after the other would have: the second's stream index, arrival time,
        wall-clock time and source sample index are advanced by ``k`` samples.

        Raises
        ------
        ValueError
            If ``k`` is not strictly between 0 and the number of samples.
        """
        n = len(self.samples_uv)
        if not 0 < k < n:
            msg = f"cannot split a chunk of {n} samples before sample {k}"
            raise ValueError(msg)
        dt = k / self.fs_hz
        ratio = self.source_fs_hz / self.fs_hz if self.source_fs_hz > 0 else 1.0
        head = replace(self, samples_uv=self.samples_uv[:k])
        rest = replace(
            self,
            samples_uv=self.samples_uv[k:],
            first_sample_idx=self.first_sample_idx + k,
            t0_monotonic_ns=self.t0_monotonic_ns + round(dt * 1e9),
            t0_utc=self.t0_utc + timedelta(seconds=dt),
            source_sample_idx=self.source_sample_idx + round(k * ratio),
        )
        return head, rest

    def follows(self, prev: EcgChunk) -> bool:
        """Whether this chunk continues ``prev`` with no sample missing (same stream rates)."""
        return (
            self.fs_hz == prev.fs_hz
            and self.source_fs_hz == prev.source_fs_hz
            and self.first_sample_idx == prev.first_sample_idx + len(prev.samples_uv)
        )

    def join(self, nxt: EcgChunk) -> EcgChunk:
        """Return this chunk followed by ``nxt`` as one chunk (the inverse of :meth:`split`).

        The joined chunk keeps this chunk's stream index, arrival time (so a latency measured
        from it includes the wait for ``nxt``), wall-clock time and source sample index.

        Raises
        ------
        ValueError
            If ``nxt`` does not continue this chunk (:meth:`follows`).
        """
        if not nxt.follows(self):
            msg = (
                f"cannot join a chunk starting at sample {nxt.first_sample_idx} ({nxt.fs_hz:g}"
                f" Hz) to one ending before sample {self.first_sample_idx + len(self.samples_uv)}"
                f" ({self.fs_hz:g} Hz)"
            )
            raise ValueError(msg)
        return replace(self, samples_uv=np.concatenate((self.samples_uv, nxt.samples_uv)))


@dataclass(frozen=True, slots=True)
class RrIntervals:
    """RR intervals reported by a strap with no waveform (BLE Heart Rate Service 0x2A37).

    Attributes
    ----------
    rr_ms : tuple[float, ...]
        RR intervals in milliseconds, oldest first.
    t_s : float
        Stream time (s) of the R-peak that ends the last interval.
    t0_monotonic_ns : int
        ``time.monotonic_ns()`` at arrival.
    hr_bpm : float | None
        The device's own heart-rate value, when it sends one.
    """

    rr_ms: tuple[float, ...]
    t_s: float
    t0_monotonic_ns: int
    hr_bpm: float | None = None


class DeviceEventKind(enum.StrEnum):
    """Kinds of device events that sources report (never dropped by queues)."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    CONTACT_LOST = "contact_lost"
    CONTACT_RESTORED = "contact_restored"
    BATTERY = "battery"
    END_OF_STREAM = "end_of_stream"


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """A change in the device or link state.

    Attributes
    ----------
    kind : DeviceEventKind
        What happened.
    t_s : float
        Stream time in seconds at which it happened.
    t0_monotonic_ns : int
        ``time.monotonic_ns()`` at arrival.
    detail : str
        Free text for logs (never patient data).
    battery_pct : int | None
        Battery level in percent, for ``BATTERY`` events.
    """

    kind: DeviceEventKind
    t_s: float
    t0_monotonic_ns: int
    detail: str = ""
    battery_pct: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Spo2Reading:
    """One pulse-oximeter reading (PLX Continuous Measurement, normal response).

    Attributes
    ----------
    spo2_pct : float
        Functional oxygen saturation, %.
    pulse_rate_bpm : float | None
        Pulse rate, bpm, when the oximeter sent a valid one.
    t_s : float
        Seconds since the source started, at arrival.
    t0_monotonic_ns : int
        ``time.monotonic_ns()`` at arrival.
    device : str
        The device id (:attr:`firmware_bridge.devices.BleDeviceConfig.device_id`).
    """

    spo2_pct: float
    pulse_rate_bpm: float | None
    t_s: float
    t0_monotonic_ns: int
    device: str


@dataclass(frozen=True, slots=True)
class TemperatureReading:
    """One body-temperature reading (Health Thermometer 0x2A1C).

    Attributes
    ----------
    temperature_c : float
        Temperature, °C (converted from °F when the thermometer sends °F).
    t_s : float
        Seconds since the source started, at arrival.
    t0_monotonic_ns : int
        ``time.monotonic_ns()`` at arrival.
    device : str
        The device id (:attr:`firmware_bridge.devices.BleDeviceConfig.device_id`).
    """

    temperature_c: float
    t_s: float
    t0_monotonic_ns: int
    device: str


Frame = EcgChunk | RrIntervals | DeviceEvent | Spo2Reading | TemperatureReading
"""Any frame a :class:`~firmware_bridge.transports.Source` may yield."""
