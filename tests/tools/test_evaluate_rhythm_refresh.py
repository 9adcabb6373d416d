"""``python -m tools.evaluate rhythm --only agent-afib`` replaces one section of rhythm.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tools.evaluate import rhythm


def _report(false_alarms: int) -> dict[str, Any]:
    return {
        "records": {"200": {"reference_af": False, "afib_alarms": false_alarms,
                            "af_found_s": 12.5, "duration_s": 1805.6}},
        "non_af": {"records": 1, "false_alarms": false_alarms, "hours": 0.5,
                   "per_hour": false_alarms / 0.5},
        "af": {"records": 0, "found": 0},
    }  # fmt: skip


HEAD, TAIL = "# Rhythm evaluation\n\nVT table\n\n", "\n# VF/VFL detector evaluation\n\nVF\n"
"""What surrounds the replaced sections in the stand-in rhythm.md."""


def test_only_the_agent_afib_section_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = rhythm._agent_afib_markdown(_report(2))
    (tmp_path / "rhythm.md").write_text(HEAD + before + TAIL, encoding="utf-8")
    seen: list[Path] = []

    def fake_run(mitdb: Path) -> dict[str, Any]:  # the 48-record run is what is replaced
        seen.append(mitdb)
        return _report(3)

    monkeypatch.setattr(rhythm, "agent_afib_alarms", fake_run)
    section = rhythm.refresh_agent_afib(tmp_path / "data", tmp_path)
    text = (tmp_path / "rhythm.md").read_text(encoding="utf-8")
    assert seen == [tmp_path / "data" / "mitdb"]
    assert text == HEAD + rhythm._agent_afib_markdown(_report(3)) + TAIL
    assert "3 false afib alarms" in section
    assert "2 false" not in text
    saved = json.loads((tmp_path / "rhythm_agent_afib.json").read_text(encoding="utf-8"))
    assert saved["non_af"]["false_alarms"] == 3


def test_a_report_without_the_section_is_refused(tmp_path: Path) -> None:
    (tmp_path / "rhythm.md").write_text("# Rhythm evaluation\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="afib alarms raised by the agent"):
        rhythm.refresh_agent_afib(tmp_path / "data", tmp_path)


def _afdb_report(false_alarms: int) -> dict[str, Any]:
    return {
        "records": 25, "afib_alarms": 456, "false_alarms_non_af_records": 0,
        "false_alarms_af_records": false_alarms, "hours_outside_af": 154.28,
        "false_per_hour_outside_af": round(false_alarms / 154.28, 3), "episodes_min_60s": 191,
        "alarmed_within_30s": 40, "alarmed_within_60s": 174, "af_row_within_30s": 177,
        "af_row_within_60s": 183, "episodes_observed_onset": 187,
        "af_row_within_30s_observed_onset": 175, "false_by_record": {"06995": false_alarms},
        "models": {"06995": "af_rr_fold2"},
    }  # fmt: skip


def test_the_afdb_section_goes_in_once_and_is_then_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    afib = rhythm._agent_afib_markdown(_report(2))
    (tmp_path / "rhythm.md").write_text(HEAD + afib + TAIL, encoding="utf-8")
    runs = iter([_afdb_report(31), _afdb_report(20)])
    monkeypatch.setattr(rhythm, "agent_afdb", lambda data, jobs=2: next(runs))
    section = rhythm.refresh_agent_afdb(tmp_path / "data", tmp_path)
    assert "| false `afib` outside annotated AF (154.28 h) | 31 (0.201/h) |" in section
    assert "177 / 183 of 191 (92.7 % within 30 s)" in section
    text = (tmp_path / "rhythm.md").read_text(encoding="utf-8")
    assert text == HEAD + section + "\n" + afib + TAIL  # before the mitdb afib section
    rhythm.refresh_agent_afdb(tmp_path / "data", tmp_path)
    text = (tmp_path / "rhythm.md").read_text(encoding="utf-8")
    assert text == HEAD + rhythm._agent_afdb_markdown(_afdb_report(20)) + "\n" + afib + TAIL
    assert text.count(rhythm.AGENT_AFDB_HEADING) == 1
    saved = json.loads((tmp_path / "rhythm_agent_afdb.json").read_text(encoding="utf-8"))
    assert saved["false_alarms_af_records"] == 20


def test_the_afdb_section_needs_a_rhythm_report(tmp_path: Path) -> None:
    (tmp_path / "rhythm.md").write_text("# Rhythm evaluation\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="afib alarms raised by the agent"):
        rhythm.refresh_agent_afdb(tmp_path / "data", tmp_path)
