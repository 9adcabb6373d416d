"""SIGTERM and SIGHUP unwind like Ctrl-C, so what a command started is stopped, not orphaned."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["termination_unwinds"]


@contextlib.contextmanager
def termination_unwinds() -> Iterator[None]:
    """Within: SIGTERM and SIGHUP raise ``SystemExit(128 + signal)``, unwinding like Ctrl-C.

    ``kill``, a batch scheduler or a closed terminal then runs the ``finally`` blocks and exit
    stacks of the command (the demo's broker and agent, ``bedside analyze``'s worker
    processes) instead of ending the process with them left running. The previous handlers
    come back on leaving; outside the main thread nothing changes (Python delivers signals
    there only).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, _raise) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
