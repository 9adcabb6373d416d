"""Alarm judgements ``bedside analyze`` makes, and proof that skipping idle ones changes nothing.

The core judges the timeline every 0.25 s of stream time and twice per beat, and the
immediate conditions every 0.25 s; :meth:`agent.core.monitor.MonitorCore.judge` skips a
judgement when no alarm is active or pending and every consumer judged is idle (issue 11).
For each record this runs the analysis twice, as shipped and with every judgement made (the
engine made never idle), and prints the judgements made by each and whether the alarm events
are identical (alarm ids and wall-clock stamps aside).

Usage::

    python -m tools.judgements ../shared/data/mitdb/100 ../shared/data/mitdb/208
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from agent.alarms.engine import AlarmEngine, Finding
from agent.analyze import analyze_record_blocking
from agent.config import AgentConfig
from agent.inference.bundle import ModelBundle, load_models
from agent.messages import AlarmEvent

_MASKED = frozenset({"alarm_id", "ts_utc", "onset_utc", "acknowledged_utc"})


def _masked(events: list[AlarmEvent]) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json", exclude=set(_MASKED)) for e in events]


def both_ways(
    run: Callable[[], list[AlarmEvent]],
) -> tuple[list[AlarmEvent], list[AlarmEvent], int, int]:
    """Run ``run`` as shipped, then with every judgement made (the engine never idle).

    Returns ``(events skipping, events judging every time, judgements made skipping,
    judgements made every time)``; a judgement is one :meth:`AlarmEngine.update` call. The
    engine's class is put back as it was, whatever ``run`` raises.
    """
    calls = [0]
    update = AlarmEngine.update
    idle = AlarmEngine.idle

    def counted(
        self: AlarmEngine,
        t_s: float,
        findings: Iterable[Finding],
        *,
        raised_s: float | None = None,
    ) -> list[AlarmEvent]:
        calls[0] += 1
        return update(self, t_s, findings, raised_s=raised_s)

    AlarmEngine.update = counted  # type: ignore[method-assign]
    try:
        skipping = run()
        made, calls[0] = calls[0], 0
        AlarmEngine.idle = property(lambda self: False)  # type: ignore[method-assign,assignment]
        every = run()
    finally:
        AlarmEngine.update = update  # type: ignore[method-assign]
        AlarmEngine.idle = idle  # type: ignore[method-assign]
    return skipping, every, made, calls[0]


def count(record: str, cfg: AgentConfig, models: ModelBundle) -> tuple[int, int, bool]:
    """Return ``(made, made without skipping, events identical)`` for one WFDB record path.

    Raises
    ------
    firmware_bridge.errors.RecordNotFoundError, firmware_bridge.errors.RecordReadError
        If the record cannot be read (:func:`agent.analyze.analyze_record`).
    """
    skipping, every, made, made_every = both_ways(
        lambda: analyze_record_blocking(record, cfg, models).events
    )
    return made, made_every, _masked(skipping) == _masked(every)


def main(argv: Sequence[str] | None = None) -> int:
    """Print one line per record; exit 1 if any record's events differ."""
    parser = argparse.ArgumentParser(prog="python -m tools.judgements", description=__doc__)
    parser.add_argument("records", nargs="+", help="WFDB record paths (no extension)")
    args = parser.parse_args(argv)
    cfg = AgentConfig()
    models = load_models(cfg.inference)
    same_all = True
    for record in args.records:
        made, every, same = count(record, cfg, models)
        same_all &= same
        share = 100.0 * made / every if every else 0.0
        verdict = "identical" if same else "DIFFERENT"
        print(f"{record}: {made} of {every} judgements made ({share:.1f} %), events {verdict}")
    return 0 if same_all else 1


if __name__ == "__main__":
    sys.exit(main())
