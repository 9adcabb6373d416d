"""Periodic jobs of the live agent that ride on the wake-ups the stream already makes.

A live agent wakes for every strap notification (about two a second at 130 Hz). The vital
signs (once a second), the watchdog (once a second) and the status (every 10 s) used to wake
the process on timers of their own, out of phase with the stream: each such wake-up brought an
idle CPU back and the core's thread with it, and cost several times the work it did (issue 11,
session 30: the vitals alone cost 0.08 % of one core in paired live runs, against their own
0.14 ms of work a second; a step of the core measured 0.64 ms back to back and 1.5 ms when the
CPU had slept 50 ms before it).

A :class:`Cadence` runs its job when the runtime, having just finished a step, calls
:meth:`Cadence.nudge` and the job is due (or due within ``early_s``); when no step comes, a
timer of its own runs it at ``due + grace_s`` (a silent strap, a hung step), so a job is never
more than ``grace_s`` late. Jobs stay on a fixed grid of ``period_s``: nudged a little early or
late, the next one is still due one period after this one was.
"""

from __future__ import annotations

import asyncio
from typing import Final

EARLY_FRACTION: Final = 0.25
"""A nudge runs the job when it is due within this fraction of its period (a notification
arriving a little before the grid point does not push the job half a second later)."""

GRACE_FRACTION: Final = 0.5
"""Without a nudge the job's own timer runs it this fraction of its period after it was due:
wider than a strap's 0.5-0.56 s notification interval at a 1 s period, so while data flows
every job rides on a step."""


class Cadence:
    """When a periodic job is due; :meth:`wait` returns each time it should run.

    Parameters
    ----------
    period_s
        Period of the job, s (> 0).
    early_s, grace_s
        A nudge within ``early_s`` before the due time runs the job; without one the job runs
        ``grace_s`` after it (defaults: :data:`EARLY_FRACTION` and :data:`GRACE_FRACTION` of
        the period).

    Raises
    ------
    ValueError
        If ``period_s`` is not positive, or ``early_s`` or ``grace_s`` is negative.

    Notes
    -----
    Use it from one event loop: :meth:`nudge` and :meth:`kick` from any coroutine or callback
    of that loop, :meth:`wait` from the one task that runs the job.
    """

    def __init__(
        self, period_s: float, *, early_s: float | None = None, grace_s: float | None = None
    ) -> None:
        if not period_s > 0.0:
            msg = f"period_s must be positive, got {period_s}"
            raise ValueError(msg)
        self.period_s = period_s
        self.early_s = EARLY_FRACTION * period_s if early_s is None else early_s
        self.grace_s = GRACE_FRACTION * period_s if grace_s is None else grace_s
        if self.early_s < 0.0 or self.grace_s < 0.0:
            msg = f"early_s and grace_s must not be negative, got {self.early_s}, {self.grace_s}"
            raise ValueError(msg)
        self._due: float | None = None  # loop time; set by the first wait()
        self._go = asyncio.Event()
        self.runs_nudged = 0
        """Times the job ran on a nudge (a step the stream brought) or a :meth:`kick`."""
        self.runs_timed = 0
        """Times the job ran on its own timer (no step within ``grace_s`` of the due time)."""

    @property
    def due_s(self) -> float | None:
        """Loop time (``loop.time()``, s) at which the job is next due; None before :meth:`wait`."""
        return self._due

    def nudge(self) -> None:
        """Run the job now if it is due (or nearly): call it when a step has just finished."""
        due = self._due
        if due is not None and asyncio.get_running_loop().time() >= due - self.early_s:
            self._go.set()

    def kick(self) -> None:
        """Run the job now, due or not (an unrecoverable problem must not wait a period)."""
        self._go.set()

    async def wait(self) -> None:
        """Return when the job should run: first one period after the first call."""
        loop = asyncio.get_running_loop()
        if self._due is None:
            self._due = loop.time() + self.period_s
        try:
            async with asyncio.timeout_at(self._due + self.grace_s):
                await self._go.wait()
            self.runs_nudged += 1
        except TimeoutError:
            self.runs_timed += 1
        self._go.clear()
        now = loop.time()
        # stay on the grid; after a long stall (a hung step) start again from now
        self._due = self._due + self.period_s
        if self._due < now:
            self._due = now + self.period_s
