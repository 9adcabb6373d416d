"""Transports: everything that produces frames (replay, simulation, BLE) behind one protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from firmware_bridge.frames import Frame


@runtime_checkable
class Source(Protocol):
    """An async iterator of frames.

    A source yields :class:`~firmware_bridge.frames.EcgChunk`,
    :class:`~firmware_bridge.frames.RrIntervals` and
    :class:`~firmware_bridge.frames.DeviceEvent` frames until the stream ends (replay) or
    forever (live devices, simulation). ``describe()`` names the source in logs and status
    messages without patient identifiers; ``counters()`` gives its own counters (reconnects,
    malformed frames, ...) for the status message.
    """

    def frames(self) -> AsyncIterator[Frame]:
        """Yield frames in stream order."""
        ...

    def describe(self) -> str:
        """Return a short human-readable description, e.g. ``replay:mitdb/232@360Hz``."""
        ...

    def counters(self) -> dict[str, int]:
        """Return the source's own counters for the status message (``{}`` if it has none).

        Names are stable and prefixed by the transport (``ble_notifications``, ...); values
        only grow.
        """
        ...
