"""Running under systemd: readiness, a watchdog fed by pipeline progress, journal logging.

``bedside run`` under ``Type=notify`` (``deploy/bedside-agent@.service``) tells the service
manager three things over the datagram socket named by ``$NOTIFY_SOCKET`` (sd_notify(3)):

- ``READY=1`` once the agent is monitoring: the models are loaded, the broker connection is up
  and the runtime's stages are running. A wearable that is not yet connected does not delay it:
  a missing sensor is a technical alarm (``sensor_disconnected``), not a failed service;
- ``WATCHDOG=1`` every half watchdog period (``$WATCHDOG_USEC``, set by ``WatchdogSec=``),
  **only while the pipeline makes progress**: the ping is skipped when frames have arrived
  from the source but the core has not completed a step for ``stall_s`` seconds (a hung worker
  thread, a deadlock on the driver lock). A silent source with an idle core is healthy: the
  source's own silence watchdog raises the technical alarm. A blocked event loop stops the pings
  too, because they are sent from it. After ``WatchdogSec`` without a ping, systemd kills the
  agent and ``Restart=on-failure`` starts it again;
- ``STOPPING=1`` when a stop was asked for.

The protocol is one ``AF_UNIX`` datagram per message; the dozen lines below are used instead of
the unmaintained ``sdnotify`` package (../shared/STACK.md). Without ``$NOTIFY_SOCKET`` every
call is a no-op, so the same code runs by hand, in tests and under systemd.

Logging: under systemd (``$JOURNAL_STREAM`` set) every line starts with its syslog priority
(``<3>`` ... ``<7>``, which journald strips into the entry's priority; ``SyslogLevelPrefix=``,
systemd.exec(5)) and carries the bed (``unit/bed``), and no timestamp (the journal adds one).

References
----------
.. [1] sd_notify(3), systemd 252: ``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``;
   sd_watchdog_enabled(3): ping at half of ``WATCHDOG_USEC``.
.. [2] systemd.service(5): ``Type=notify``, ``WatchdogSec=``, ``Restart=on-failure``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Final

from firmware_bridge.frames import DeviceEvent, DeviceEventKind, EcgChunk, Frame, RrIntervals
from firmware_bridge.transports import Source

logger = logging.getLogger(__name__)

DEFAULT_STALL_S: Final = 20.0
"""Frames waiting and no completed step for this long = the pipeline is stalled, s. A step of
the core takes milliseconds (one 2-s analysis window; docs/benchmarks.md), the first step up to
a few seconds while NeuroKit2 is imported (2-3 s on x86, ~10 s expected on a Pi 4); 20 s leaves
room for a loaded Pi and stays under the units' ``WatchdogSec=60``."""

FIRST_STEP_STALL_S: Final = 120.0
"""The same bound before the core's first step has completed, s. The first step imports
NeuroKit2 and its numeric stack (2-3 s on x86; tens of seconds are possible on a busy Pi 4), so
a slow start is not taken for a hung pipeline; a first step stuck longer than this still is."""

SYSLOG_PRIORITY: Final = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
"""Python level → syslog priority (RFC 5424 severities; sd-daemon(3) ``SD_ERR`` ...)."""


class SystemdNotifier:
    """Send sd_notify(3) messages to ``$NOTIFY_SOCKET``; a no-op when it is not set.

    Parameters
    ----------
    environ
        Where to read ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` (default :data:`os.environ`).

    Attributes
    ----------
    address : str | None
        The socket path (``@`` = Linux abstract namespace), or None when not under systemd.
    watchdog_period_s : float | None
        The watchdog timeout from ``WATCHDOG_USEC``, s, or None when no watchdog is asked for
        (also when ``WATCHDOG_PID`` names another process, as sd_watchdog_enabled(3) says).
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET") or None
        self.watchdog_period_s: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_period_s = int(usec) / 1e6

    @property
    def enabled(self) -> bool:
        """Whether a service manager listens (``$NOTIFY_SOCKET`` is set)."""
        return self.address is not None

    def notify(self, message: str) -> bool:
        """Send one message (``"READY=1"``, ``"WATCHDOG=1"``, ...); return whether it was sent.

        A failed send is logged once at WARNING and reported as False, never raised: the agent
        keeps monitoring even if the service manager has gone away.
        """
        if self.address is None:
            return False
        addr = self.address
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(addr)
                sock.sendall(message.encode())
        except OSError as err:
            logger.warning("sd_notify %s to %s failed: %s", message, self.address, err)
            return False
        return True


class PipelineWatchdog:
    """Decide whether the pipeline makes progress; ping systemd's watchdog only while it does.

    The watchdog sees both ends of the pipeline: :meth:`watch` wraps the source and stamps the
    time each frame the core will step is read (the stream's kind of frame: ECG chunks, or RR
    notifications on an RR-only stream; :meth:`agent.core.monitor.MonitorCore.accepts`), and
    :meth:`note_step` (the runtime's ``on_output``) stamps each completed step. Frames are
    *waiting* when one was read after the last step completed; the pipeline is *stalled* when
    frames are waiting and no step has completed for ``stall_s``. Device events and vitals are
    not stamped: before the first ECG / RR frame the core keeps them without a step.

    Parameters
    ----------
    notifier
        Where the pings go.
    stall_s
        Frames waiting and no completed step for this long is a stall, s
        (:data:`DEFAULT_STALL_S`).
    first_step_stall_s
        The bound while no step has completed yet, s (:data:`FIRST_STEP_STALL_S`).
    clock_ns
        Monotonic clock, ns (``time.monotonic_ns``; tests pass their own to judge stalls
        without waiting on the wall clock).

    Attributes
    ----------
    steps : int
        Step outputs seen since start.
    pings : int
        ``WATCHDOG=1`` messages sent.
    stalls : int
        Checks that found the pipeline stalled (the ping was withheld).

    Raises
    ------
    ValueError
        If ``stall_s`` or ``first_step_stall_s`` is not positive.
    """

    def __init__(
        self,
        notifier: SystemdNotifier,
        *,
        stall_s: float = DEFAULT_STALL_S,
        first_step_stall_s: float = FIRST_STEP_STALL_S,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        if not stall_s > 0 or not first_step_stall_s > 0:
            msg = f"stall_s and first_step_stall_s must be > 0, got {stall_s}, {first_step_stall_s}"
            raise ValueError(msg)
        self._notifier = notifier
        self._clock_ns = clock_ns
        self._stall_ns = int(stall_s * 1e9)
        self._first_ns = int(first_step_stall_s * 1e9)
        self._last_step_ns = clock_ns()
        self._last_read_ns = 0
        self._kind: type[EcgChunk] | type[RrIntervals] | None = None
        self._stalled = False
        self.steps = 0
        self.pings = 0
        self.stalls = 0

    def watch(self, source: Source) -> Source:
        """Return ``source`` wrapped so that every frame the core will step is time-stamped."""
        return _WatchedSource(source, self)

    def note_read(self, frame: Frame) -> None:
        """Record that ``frame`` was read from the source (called by :meth:`watch`'s wrapper)."""
        if self._kind is None and isinstance(frame, EcgChunk | RrIntervals):
            self._kind = type(frame)
        if self._kind is not None and isinstance(frame, self._kind):
            self._last_read_ns = self._clock_ns()

    def note_step(self, _out: object, _arrival_ns: int) -> None:
        """Record one completed step of the core (signature of the runtime's ``on_output``)."""
        self.steps += 1
        self._last_step_ns = self._clock_ns()

    def healthy(self) -> bool:
        """Return False when a frame is waiting and no step completed for ``stall_s``.

        Before the first step has completed, the bound is the larger of ``stall_s`` and
        :data:`FIRST_STEP_STALL_S`.
        """
        waiting = self._last_read_ns > self._last_step_ns
        bound_ns = self._stall_ns if self.steps else max(self._stall_ns, self._first_ns)
        return not (waiting and self._clock_ns() - self._last_step_ns >= bound_ns)

    def check_and_ping(self) -> bool:
        """Ping (``WATCHDOG=1``) if :meth:`healthy`; log a change of state; return healthy."""
        ok = self.healthy()
        if ok:
            if self._stalled:
                logger.warning("pipeline progresses again: watchdog pings resumed")
            self._stalled = False
            if self._notifier.notify("WATCHDOG=1"):
                self.pings += 1
        else:
            self.stalls += 1
            if not self._stalled:
                logger.error(
                    "pipeline stalled: frames wait but no step completed for %.0f s;"
                    " watchdog pings withheld (systemd restarts the agent)",
                    self._stall_ns / 1e9,
                )
            self._stalled = True
        return ok

    async def run(self, period_s: float) -> None:
        """Check and ping every ``period_s`` seconds until cancelled."""
        while True:
            await asyncio.sleep(period_s)
            self.check_and_ping()


class _WatchedSource:
    """A source that tells a :class:`PipelineWatchdog` about every frame it passes on."""

    def __init__(self, source: Source, watchdog: PipelineWatchdog) -> None:
        self._source = source
        self._watchdog = watchdog

    def describe(self) -> str:
        return self._source.describe()

    def counters(self) -> dict[str, int]:
        return self._source.counters()

    async def frames(self) -> AsyncIterator[Frame]:
        frames = self._source.frames()
        try:
            async for frame in frames:
                self._watchdog.note_read(frame)
                yield frame
        finally:
            aclose = getattr(frames, "aclose", None)
            if aclose is not None:
                await aclose()


class JournalFormatter(logging.Formatter):
    """``<priority>unit/bed logger: message``, for stderr captured by journald.

    Parameters
    ----------
    bed
        ``unit/bed`` of this agent, put in every line.
    """

    def __init__(self, bed: str) -> None:
        super().__init__("%(name)s: %(message)s")
        self._bed = bed

    def format(self, record: logging.LogRecord) -> str:
        """Return the line with its syslog priority prefix and the bed."""
        prio = SYSLOG_PRIORITY.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)
        return f"<{prio}>{self._bed} {super().format(record)}"


def log_with_bed(bed: str, environ: Mapping[str, str] | None = None) -> None:
    """Put ``bed`` (``unit/bed``) in every log line of the root logger's handlers.

    Under systemd (``$JOURNAL_STREAM`` set) the lines take :class:`JournalFormatter`'s form;
    otherwise ``time level unit/bed logger: message``. Called by the ``bedside`` command only
    (handlers are set in the entry point, STYLE.md 4).
    """
    env = os.environ if environ is None else environ
    fmt: logging.Formatter
    if env.get("JOURNAL_STREAM"):
        fmt = JournalFormatter(bed)
    else:
        safe = bed.replace("%", "%%")
        fmt = logging.Formatter(f"%(asctime)s %(levelname)s {safe} %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setFormatter(fmt)


class StreamTimeLimit:
    """A source that ends after ``limit_s`` seconds of *stream* time (``bedside run --stop-after``).

    The end does not depend on wall-clock time or machine speed: the wrapped source's frames are
    passed on until ``limit_s`` (an ECG chunk that crosses it is cut there); then an
    ``END_OF_STREAM`` event ends the run as a recording's end would (the core finishes and
    clears its alarms). Used to compare runs on different machines (``./run.sh pi-check``).

    Parameters
    ----------
    source
        The wrapped source.
    limit_s
        Stream time after which the stream ends, s (> 0).

    Raises
    ------
    ValueError
        If ``limit_s`` is not positive.
    """

    def __init__(self, source: Source, limit_s: float) -> None:
        if not limit_s > 0:
            msg = f"limit_s must be > 0, got {limit_s}"
            raise ValueError(msg)
        self._source = source
        self._limit_s = limit_s

    def describe(self) -> str:
        """Return the wrapped source's description with the limit."""
        return f"{self._source.describe()} for {self._limit_s:g}s"

    def counters(self) -> dict[str, int]:
        """Return the wrapped source's counters."""
        return self._source.counters()

    async def frames(self) -> AsyncIterator[Frame]:
        """Yield the wrapped source's frames that start before ``limit_s``, then the end."""
        frames = self._source.frames()
        try:
            async for frame in frames:
                t_s = frame.t0_s if isinstance(frame, EcgChunk) else frame.t_s
                if t_s >= self._limit_s:
                    break
                if isinstance(frame, EcgChunk) and t_s + frame.duration_s > self._limit_s:
                    keep = round((self._limit_s - t_s) * frame.fs_hz)
                    yield dataclasses.replace(frame, samples_uv=frame.samples_uv[:keep])
                    break
                yield frame
                if isinstance(frame, DeviceEvent) and frame.kind is DeviceEventKind.END_OF_STREAM:
                    return
        finally:
            aclose = getattr(frames, "aclose", None)
            if aclose is not None:
                await aclose()
        yield DeviceEvent(
            kind=DeviceEventKind.END_OF_STREAM,
            t_s=self._limit_s,
            t0_monotonic_ns=time.monotonic_ns(),
            detail=f"stream time limit {self._limit_s:g} s",
        )
