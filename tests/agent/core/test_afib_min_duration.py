"""The ``afib`` alarm waits until AF has lasted ``alarms.afib_min_duration_s`` (30 s).

svdb 880 (128 Hz, frequent supraventricular ectopy and runs) is where the waveform AF path
calls AF for stretches of 15-30 s as well as for a minute or more: the rhythm reads AFIB for
each call, and only the calls that last 30 s from their estimated onset raise ``afib``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.analyze import RecordResult, analyze_record
from agent.config import AgentConfig, AlarmConfig
from agent.inference.bundle import load_models


def _analyse(record: Path, min_duration_s: float) -> RecordResult:
    cfg = AgentConfig(alarms=AlarmConfig(afib_min_duration_s=min_duration_s))
    return asyncio.run(analyze_record(record, cfg, load_models(cfg.inference)))


@pytest.fixture(scope="module")
def svdb_880(data_dir: Path) -> Path:
    path = data_dir / "svdb" / "880"
    if not path.with_suffix(".hea").exists():
        pytest.skip("svdb 880 not in the shared data")
    return path


def _afib_raised(res: RecordResult) -> list[tuple[float, float]]:
    return [
        (e.onset_s, e.raised_s)
        for e in res.events
        if e.condition == "afib" and e.lifecycle == "raised"
    ]


def test_short_af_calls_read_afib_without_an_alarm(svdb_880: Path) -> None:
    res = _analyse(svdb_880, 30.0)
    episodes = res.episodes["AFIB"]
    short = [(a, b) for a, b in episodes if b - a < 30.0]
    long = [(a, b) for a, b in episodes if b - a >= 30.25]  # one 0.25 s judging tick of slack
    print(
        f"{len(episodes)} AF episodes, {len(short)} shorter than 30 s; alarms {_afib_raised(res)}"
    )
    assert short
    assert long
    raised = _afib_raised(res)
    assert {round(o, 3) for o, _ in raised} == {round(a, 3) for a, _ in long}
    for onset_s, raised_s in raised:
        assert raised_s >= onset_s + 30.0


def test_without_the_wait_every_af_call_raises_afib(svdb_880: Path) -> None:
    res = _analyse(svdb_880, 0.0)
    onsets = {round(a, 3) for a, _ in res.episodes["AFIB"]}
    assert {round(o, 3) for o, _ in _afib_raised(res)} == onsets
