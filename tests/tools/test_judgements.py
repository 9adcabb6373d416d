"""``python -m tools.judgements``: judgements made with and without skipping, same events."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.alarms.engine import AlarmEngine
from tests.records import cut_record
from tools import judgements


def test_counts_the_judgements_and_finds_the_events_identical(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # mitdb 208, 60-180 s: PVC couplets and trigeminy, so alarms are raised and judged
    record = cut_record(data_dir, "mitdb", "208", 60, 180, tmp_path)
    idle = AlarmEngine.idle
    assert judgements.main([str(record)]) == 0
    assert AlarmEngine.idle is idle  # the tool puts the engine back as it was
    line = capsys.readouterr().out.strip()
    found = re.fullmatch(r".*: (\d+) of (\d+) judgements made \(.*\), events identical", line)
    assert found is not None, line
    made, every = int(found[1]), int(found[2])
    assert 0 < made < every  # 120 s: about 960 grid times and 300 beats
    assert every > 1000
