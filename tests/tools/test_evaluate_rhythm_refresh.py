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


def test_only_the_agent_afib_section_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = rhythm._agent_afib_markdown(_report(2))
    head, tail = "# Rhythm evaluation\n\nVT table\n\n", "\n# VF/VFL detector evaluation\n\nVF\n"
    (tmp_path / "rhythm.md").write_text(head + before + tail, encoding="utf-8")
    seen: list[Path] = []

    def fake_run(mitdb: Path) -> dict[str, Any]:  # the 48-record run is what is replaced
        seen.append(mitdb)
        return _report(3)

    monkeypatch.setattr(rhythm, "agent_afib_alarms", fake_run)
    section = rhythm.refresh_agent_afib(tmp_path / "data", tmp_path)
    text = (tmp_path / "rhythm.md").read_text(encoding="utf-8")
    assert seen == [tmp_path / "data" / "mitdb"]
    assert text == head + rhythm._agent_afib_markdown(_report(3)) + tail
    assert "3 false afib alarms" in section
    assert "2 false" not in text
    saved = json.loads((tmp_path / "rhythm_agent_afib.json").read_text(encoding="utf-8"))
    assert saved["non_af"]["false_alarms"] == 3


def test_a_report_without_the_section_is_refused(tmp_path: Path) -> None:
    (tmp_path / "rhythm.md").write_text("# Rhythm evaluation\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="afib alarms raised by the agent"):
        rhythm.refresh_agent_afib(tmp_path / "data", tmp_path)
