"""Build the configured :class:`~firmware_bridge.transports.Source` (one place for the CLI)."""

from __future__ import annotations

from typing import Final

from agent.config import SourceConfig
from firmware_bridge.transports import Source

SIMULATE_FS_HZ: Final = 250.0
"""Default rate of the simulated ECG, Hz (a typical clinical monitor export rate)."""


def make_source(cfg: SourceConfig) -> Source:
    """Open the source described by ``cfg``.

    Raises
    ------
    RecordNotFoundError
        For ``replay`` when the record header does not exist.
    RecordReadError
        For ``replay`` when the record cannot be read (truncated, bad channel).
    """
    if cfg.kind == "ble":
        from firmware_bridge.transports.ble import BleSource

        return BleSource(cfg.devices)
    if cfg.kind == "rr":
        from firmware_bridge.transports.rr_replay import RrReplaySource

        assert cfg.record is not None  # noqa: S101  (guaranteed by SourceConfig's validator)
        return RrReplaySource(cfg.record, annotations=cfg.rr_annotations, speed=cfg.speed)
    if cfg.kind == "replay":
        from firmware_bridge.transports.replay import WfdbReplaySource

        assert cfg.record is not None  # noqa: S101  (guaranteed by SourceConfig's validator)
        return WfdbReplaySource(
            cfg.record,
            channel=cfg.channel,
            speed=cfg.speed,
            fs_hz=cfg.fs_hz,
            chunk_s=cfg.chunk_s,
            loop=cfg.loop,
            read_in_subprocess=True,  # keeps wfdb and pandas out of the agent (issue 11)
        )
    from firmware_bridge.transports.simulate import SimulatedSource

    return SimulatedSource(fs_hz=cfg.fs_hz or SIMULATE_FS_HZ, speed=cfg.speed, chunk_s=cfg.chunk_s)
