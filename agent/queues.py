"""The runtime's two inboxes: frames from the source, and messages from the station.

- :class:`FrameQueue`: between the source and the core, with the overflow policy in one place
  (waveform chunks drop the oldest when the core falls behind; nothing else is ever dropped).
- :class:`StationInbox`: acknowledgements and nurse observations, handed over from the MQTT
  client's thread to the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from agent.messages import AlarmAck, ManualObservations
from firmware_bridge.frames import EcgChunk, Frame


class FrameQueue:
    """The queue between the source and the pipeline, with the overflow policy in one place.

    At most ``max_chunks`` waveform chunks wait. :meth:`put_nowait` (live sources) makes
    room by dropping the *oldest chunk*; :meth:`put` (recordings) waits for room instead.
    Device events, RR notifications and the end marker (None) are never dropped and never
    wait.
    """

    def __init__(self, max_chunks: int) -> None:
        self._items: deque[Frame | None] = deque()
        self._max_chunks = max_chunks
        self._chunks = 0
        self._nonempty = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def put_nowait(self, item: Frame | None) -> int:
        """Enqueue now; return how many chunks were dropped to make room (0 or 1)."""
        dropped = 0
        if isinstance(item, EcgChunk):
            if self._chunks >= self._max_chunks:
                oldest = next(f for f in self._items if isinstance(f, EcgChunk))
                self._items.remove(oldest)
                self._chunks -= 1
                dropped = 1
            self._chunks += 1
            if self._chunks >= self._max_chunks:
                self._room.clear()
        self._items.append(item)
        self._nonempty.set()
        return dropped

    async def put(self, item: Frame | None) -> None:
        """Enqueue, waiting while ``max_chunks`` chunks are already waiting."""
        if isinstance(item, EcgChunk):
            while self._chunks >= self._max_chunks:
                await self._room.wait()
        self.put_nowait(item)

    async def get(self) -> Frame | None:
        """Dequeue the oldest item, waiting for one."""
        while not self._items:
            await self._nonempty.wait()
        item = self._items.popleft()
        if not self._items:
            self._nonempty.clear()
        if isinstance(item, EcgChunk):
            self._chunks -= 1
            if self._chunks < self._max_chunks:
                self._room.set()
        return item


class StationInbox:
    """Acknowledgements and nurse observations from the station, for the runtime.

    The MQTT publisher's thread (paho's) calls :meth:`submit_ack` and
    :meth:`submit_observations`; the runtime reads them on its event loop. Created before both
    (the publisher needs its callbacks, the runtime needs the publisher), so neither refers to
    the other. Items submitted before the runtime's loop is bound wait for it.
    """

    def __init__(self) -> None:
        self.acks: asyncio.Queue[AlarmAck] = asyncio.Queue()
        self.observations: asyncio.Queue[ManualObservations] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._early: list[AlarmAck | ManualObservations] = []
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver on ``loop`` from now on (and what came before)."""
        with self._lock:
            self._loop = loop
            early, self._early = self._early, []
        for item in early:
            self._put(item)

    def submit_ack(self, ack: AlarmAck) -> None:
        """Queue an acknowledgement; safe to call from any thread."""
        self._submit(ack)

    def submit_observations(self, obs: ManualObservations) -> None:
        """Queue nurse-entered observations; safe to call from any thread."""
        self._submit(obs)

    def _submit(self, item: AlarmAck | ManualObservations) -> None:
        with self._lock:
            loop = self._loop
            if loop is None:
                self._early.append(item)
                return
        loop.call_soon_threadsafe(self._put, item)

    def _put(self, item: AlarmAck | ManualObservations) -> None:
        if isinstance(item, AlarmAck):
            self.acks.put_nowait(item)
        else:
            self.observations.put_nowait(item)
