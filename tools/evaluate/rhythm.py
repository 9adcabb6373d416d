"""``python -m tools.evaluate rhythm``: atrial fibrillation and VF/VFL, as the agent decides them.

- **AF** (:func:`tools.af.evaluate.evaluate_af`): per-beat Se / Sp, episode and duration
  Se / +P and time from onset to alarm on afdb, cross-validated patient-wise (each record
  scored by the fold model that never saw it, through the agent's own
  :class:`agent.rhythm.af.AfDetector` episode logic, int8); the same with the shipped model on
  the mitdb records with AF, and false AF alarms per hour on the mitdb records without AF. By
  default the mitdb beat times are the agent's own R-peaks.
- **VF/VFL** (:func:`tools.vf.evaluate.evaluate_vf`): episode sensitivity, onset-to-alarm
  delay (median, maximum) and false VF alarms per hour on non-VF stretches of vfdb, mitdb and
  nstdb, cross-validated by record and with the shipped parameters, plus a run at 130 Hz.

Writes ``OUT/rhythm.md`` (both reports) and ``OUT/rhythm_af.json`` / ``OUT/rhythm_vf.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from tools.af.evaluate import evaluate_af
from tools.vf.evaluate import evaluate_vf

logger = logging.getLogger(__name__)


def run_rhythm_evaluation(
    data_dir: Path,
    out_dir: Path,
    *,
    rr_source: Literal["agent", "reference"] = "agent",
    vf_cross_validated: bool = True,
) -> str:
    """Run both evaluations, write the reports, return the Markdown text.

    Raises
    ------
    FileNotFoundError
        If the data or the shipped models are missing.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    logger.info("AF: afdb cross-validated, mitdb (%s beats)", rr_source)
    af = evaluate_af(data_dir, rr_source=rr_source)
    logger.info("VF/VFL: vfdb, mitdb, nstdb")
    vf = evaluate_vf(data_dir, cross_validated=vf_cross_validated, progress=logger.info)
    (out_dir / "rhythm_af.json").write_text(af.to_json(), encoding="utf-8")
    (out_dir / "rhythm_vf.json").write_text(vf.to_json(), encoding="utf-8")
    text = (
        "# Rhythm evaluation\n\nReproduce: `.venv/bin/python -m tools.evaluate rhythm --data"
        " ../shared/data --out reports`.\n\n"
        + af.to_markdown().replace("\n# ", "\n## ", 1)
        + "\n\n"
        + vf.to_markdown()
        + "\n"
    )
    (out_dir / "rhythm.md").write_text(text, encoding="utf-8")
    return text
