"""``bedside analyze --ack-after S``: a nurse acknowledges latched alarms S seconds after them.

The record is vfdb 419 from 540 s to 980 s (same digital samples): two reference VFL
episodes, 577-651 s and 920-955 s. ``vfib`` is latched (IEC 60601-1-8, 6.11.2.2): without an
acknowledgement the first alarm stays active to the end and hides the second episode; with
``--ack-after 30`` each episode raises its own alarm.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from tests.records import cut_record

START_S, END_S = 540, 980
VF_EPISODES_S = ((577.0, 651.0), (920.0, 955.0))  # vfdb 419 reference, from the annotations


@pytest.fixture(scope="module")
def vf_twice(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """vfdb 419, 540-980 s, channel 0, as a WFDB record in a temporary folder."""
    folder = tmp_path_factory.mktemp("vf419")
    return cut_record(data_dir, "vfdb", "419", START_S, END_S, folder)


def _vfib_raised(out: Path) -> list[dict[str, Any]]:
    lines = (out / "419" / "alarms.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    return [e for e in events if e["condition"] == "vfib" and e["lifecycle"] == "raised"]


def _episode_of(onset_s: float) -> int | None:
    for i, (start, end) in enumerate(VF_EPISODES_S):
        if start - START_S - 5.0 <= onset_s <= end - START_S:
            return i
    return None


def test_second_vf_episode_raises_its_own_alarm_with_ack_after(
    vf_twice: Path, tmp_path: Path
) -> None:
    assert main(["analyze", str(vf_twice), "--out", str(tmp_path / "ack"), "-q", "--jobs", "1",
                 "--ack-after", "30"]) == 0  # fmt: skip
    raised = _vfib_raised(tmp_path / "ack")
    assert [_episode_of(float(e["onset_s"])) for e in raised] == [0, 1]
    events = [
        json.loads(line)
        for line in (tmp_path / "ack" / "419" / "alarms.jsonl").read_text().splitlines()
    ]
    first = str(raised[0]["alarm_id"])
    acks = [e for e in events if e["alarm_id"] == first and e["lifecycle"] == "updated"]
    assert len(acks) == 1
    assert acks[0]["acknowledged"] is True
    cleared = [e for e in events if e["alarm_id"] == first and e["lifecycle"] == "cleared"]
    # acknowledged 30 s after it was raised (on that sample: the chunk is cut there); cleared
    # once the VFL was over (reference end 651 s) and before the second episode
    assert float(raised[0]["raised_s"]) + 30.0 <= float(cleared[0]["cleared_s"])
    assert float(cleared[0]["cleared_s"]) < VF_EPISODES_S[1][0] - START_S


def test_without_ack_after_one_latched_alarm_hides_the_second_episode(
    vf_twice: Path, tmp_path: Path
) -> None:
    assert main(["analyze", str(vf_twice), "--out", str(tmp_path / "no"), "-q", "--jobs", "1"]) == 0
    raised = _vfib_raised(tmp_path / "no")
    assert [_episode_of(float(e["onset_s"])) for e in raised] == [0]


def test_ack_after_rejects_a_negative_delay(vf_twice: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as err:
        main(["analyze", str(vf_twice), "--out", str(tmp_path), "--ack-after", "-1"])
    assert err.value.code == 2
