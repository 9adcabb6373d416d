"""The shipped beat classifier on the agent's own R-peaks (tools.beats.agent_eval)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.inference.beat_classifier import BeatClassifier
from tools.beats.agent_eval import score_agent


@pytest.mark.data
def test_record_119_with_the_agents_detector(mitdb: Path) -> None:
    """Record 119 (DS1): 1,543 N and 444 V beats in bigeminy / trigeminy."""
    scores = score_agent(mitdb, ["119"], BeatClassifier())
    assert scores.n_reference == 1987
    assert scores.se_pct("V") > 97.0
    assert scores.ppv_pct("V") > 97.0
    assert scores.accuracy_pct > 97.0
    # the detector found (nearly) every beat: few reference beats in the "no beat" column
    assert int(scores.confusion[:5, 5].sum()) < 10
