"""Clocks and pacing shared by the file-backed sources (replay, simulation).

A recorded or simulated stream has its own time axis (sample index / sampling rate). To play it
"live" the source must emit chunk ``k`` when the wall clock reaches ``t_start + t_k / speed``.
:class:`StreamPacer` does that against an injected :class:`Clock`, so tests can run the real
schedule on a fake clock instead of sleeping (STYLE.md §5, "an injected clock").

The schedule is computed from the stream position of each chunk, never by adding the chunk
duration to the previous wake-up time, so rounding and scheduling latency do not accumulate:
a 24 h replay ends 24 h / speed after it started, give or take one event-loop tick.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

NS_PER_S = 1_000_000_000


class Clock(Protocol):
    """The two time operations a paced source needs."""

    def monotonic_ns(self) -> int:
        """Return a monotonic time in nanoseconds (like :func:`time.monotonic_ns`)."""
        ...

    async def sleep(self, delay_s: float) -> None:
        """Suspend the caller for ``delay_s`` seconds (0 = just yield to the event loop)."""
        ...


class MonotonicClock:
    """The real clock: :func:`time.monotonic_ns` and :func:`asyncio.sleep`."""

    def monotonic_ns(self) -> int:
        """Return :func:`time.monotonic_ns`."""
        return time.monotonic_ns()

    async def sleep(self, delay_s: float) -> None:
        """Await :func:`asyncio.sleep`."""
        await asyncio.sleep(delay_s)


def validate_pacing(speed: float | None, chunk_s: float) -> None:
    """Check the pacing arguments every source takes.

    Raises
    ------
    ValueError
        If ``speed`` is not positive (None means as fast as possible) or ``chunk_s`` is not
        positive.
    """
    if speed is not None and not speed > 0:
        msg = f"speed must be > 0 or None (as fast as possible), got {speed}"
        raise ValueError(msg)
    if not chunk_s > 0:
        msg = f"chunk_s must be > 0, got {chunk_s}"
        raise ValueError(msg)


class StreamPacer:
    """Emit stream samples at ``speed`` times real time, without drift.

    Parameters
    ----------
    fs_hz : float
        Sampling rate of the stream in Hz; sample ``i`` is at stream time ``i / fs_hz`` s.
    speed : float | None
        Playback speed as a multiple of real time (1.0 = real time, 50.0 = fifty times faster).
        ``None`` means as fast as possible: :meth:`wait_for_sample` only yields to the event
        loop (``sleep(0)``) so that other tasks still run between chunks.
    clock : Clock
        Time source; :class:`MonotonicClock` in production, a fake one in tests.

    Raises
    ------
    ValueError
        If ``fs_hz`` or ``speed`` is not positive.
    """

    def __init__(self, *, fs_hz: float, speed: float | None, clock: Clock) -> None:
        if not fs_hz > 0:
            msg = f"fs_hz must be > 0, got {fs_hz}"
            raise ValueError(msg)
        if speed is not None and not speed > 0:
            msg = f"speed must be > 0 or None (as fast as possible), got {speed}"
            raise ValueError(msg)
        self._fs_hz = fs_hz
        self._speed = speed
        self._clock = clock
        self._t_start_ns: int | None = None

    async def wait_for_sample(self, stream_sample_idx: int) -> int:
        """Wait until the sample at ``stream_sample_idx`` is due, and return the time.

        The first call fixes the schedule's origin (that sample is due now); afterwards sample
        ``i`` is due at ``t_start + i / fs_hz / speed``. A consumer that falls behind is not
        made to wait, and no samples are skipped; the stream simply catches up.

        Parameters
        ----------
        stream_sample_idx : int
            Index of the sample in the stream, counted at ``fs_hz`` from 0.

        Returns
        -------
        int
            ``clock.monotonic_ns()`` when the sample is emitted, in nanoseconds.
        """
        if self._speed is None:
            await self._clock.sleep(0)
            return self._clock.monotonic_ns()
        now_ns = self._clock.monotonic_ns()
        offset_ns = round(stream_sample_idx / self._fs_hz / self._speed * NS_PER_S)
        if self._t_start_ns is None:
            self._t_start_ns = now_ns - offset_ns
        due_ns = self._t_start_ns + offset_ns
        if due_ns > now_ns:
            await self._clock.sleep((due_ns - now_ns) / NS_PER_S)
        else:
            await self._clock.sleep(0)
        return self._clock.monotonic_ns()
