"""Tests of the transports, and the fake clock they share."""

from __future__ import annotations

from firmware_bridge.transports.clock import NS_PER_S


class FakeClock:
    """A :class:`~firmware_bridge.transports.clock.Clock` whose sleeps advance time instantly.

    ``sleeps_s`` records every requested delay, so a test can check the pacing schedule of a
    source without waiting for it.
    """

    def __init__(self, start_ns: int = 1_000 * NS_PER_S) -> None:
        self.now_ns = start_ns
        self.sleeps_s: list[float] = []

    def monotonic_ns(self) -> int:
        return self.now_ns

    async def sleep(self, delay_s: float) -> None:
        self.sleeps_s.append(delay_s)
        self.now_ns += round(delay_s * NS_PER_S)
