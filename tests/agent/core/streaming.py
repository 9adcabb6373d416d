"""Feed a core with frames built from arrays, numbered as a transport numbers them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from agent.config import AgentConfig
from agent.core.monitor import MonitorCore, StepOutput
from agent.core.streams import build_core
from agent.inference.bundle import ModelBundle, load_models
from firmware_bridge.frames import DeviceEvent, DeviceEventKind, EcgChunk, RrIntervals

T0_UTC = datetime(2026, 1, 1, tzinfo=UTC)


class Stream:
    """One stream: ECG chunks or RR notifications, device events, the end.

    The core is built from the first ECG chunk or RR notification, as the driver builds it.
    """

    def __init__(self, cfg: AgentConfig, fs_hz: float, models: ModelBundle | None = None) -> None:
        self.cfg = cfg
        self.fs_hz = fs_hz
        self.models = models if models is not None else load_models(cfg.inference)
        self._core: MonitorCore | None = None
        self._next_idx = 0

    @property
    def core(self) -> MonitorCore:
        """The core (after the first ECG / RR frame)."""
        assert self._core is not None, "no ECG or RR frame yet"
        return self._core

    def ecg(self, samples_uv: NDArray[np.float32]) -> StepOutput:
        """Push the next contiguous samples as one chunk."""
        chunk = EcgChunk(
            samples_uv=np.asarray(samples_uv, dtype=np.float32),
            fs_hz=self.fs_hz,
            first_sample_idx=self._next_idx,
            t0_monotonic_ns=0,
            t0_utc=T0_UTC,
        )
        self._next_idx += len(chunk.samples_uv)
        if self._core is None:
            self._core = build_core(self.cfg, self.models, chunk, rr_fs_hz=self.fs_hz)
        return self._core.step(chunk)

    def rr(self, rr_ms: Sequence[float], t_s: float) -> StepOutput:
        """Push one RR notification whose last interval ends at ``t_s``."""
        frame = RrIntervals(rr_ms=tuple(rr_ms), t_s=t_s, t0_monotonic_ns=0)
        if self._core is None:
            self._core = build_core(
                self.cfg, self.models, frame, rr_fs_hz=self.fs_hz, clock_utc=T0_UTC
            )
        return self._core.step(frame)

    def event(self, kind: DeviceEventKind, t_s: float, detail: str = "") -> StepOutput:
        """Push a device event."""
        return self.core.step(DeviceEvent(kind=kind, t_s=t_s, t0_monotonic_ns=0, detail=detail))

    def finish(self) -> StepOutput:
        """End of stream."""
        return self.core.finish()
