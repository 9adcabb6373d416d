"""Where the core's CPU time goes: an optional per-stage accumulator (``tools.bench`` uses it).

The core takes a :class:`StageTimes` (or None, the default, which costs one ``is None`` test
per stage call) and adds the CPU time of each stage call to it, measured with
:func:`time.process_time_ns` (CPU time of the process: the figure a Pi's load depends on).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")


@dataclass(slots=True)
class StageTimes:
    """CPU time and call count per stage name.

    Attributes
    ----------
    ns : dict[str, int]
        CPU time per stage, ns.
    calls : dict[str, int]
        Calls per stage.
    """

    ns: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def add(self, stage: str, cpu_ns: int) -> None:
        """Add one call of ``stage`` that took ``cpu_ns`` of CPU time."""
        self.ns[stage] = self.ns.get(stage, 0) + cpu_ns
        self.calls[stage] = self.calls.get(stage, 0) + 1

    def s(self, stage: str) -> float:
        """CPU seconds spent in ``stage``."""
        return self.ns.get(stage, 0) / 1e9


def timed(
    times: StageTimes | None,
    stage: str,
    fn: Callable[_P, _T],
    *args: _P.args,
    **kwargs: _P.kwargs,
) -> _T:
    """Call ``fn(*args, **kwargs)``; add its CPU time to ``times[stage]`` when ``times`` is set."""
    if times is None:
        return fn(*args, **kwargs)
    t0 = time.process_time_ns()
    try:
        return fn(*args, **kwargs)
    finally:
        times.add(stage, time.process_time_ns() - t0)
