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

- **afib alarms of the agent itself** (:func:`agent_afib_alarms`): ``bedside analyze`` over
  every mitdb record with the beat classifier on, as the live agent runs (there the AF
  detector leaves out the RR intervals around beats called V); counts the ``afib`` alarms on
  records without AF (false alarms per hour) and the AF time found on records with AF.
- **The agent on afdb's RR path, out of fold** (:func:`agent_afdb`): ``bedside analyze
  --rr-annotations qrs`` with every afdb record through the AF fold model that never saw it
  (:func:`tools.af.agent_out.run_fold_models`): false ``afib`` per hour outside annotated AF
  and AF episodes >= 60 s with an AFIB row / an alarm within 30 and 60 s (issue 13's targets).

- **VT and VF/VFL through the agent** (:mod:`tools.vf.agent_eval`, issue 13): ``bedside
  analyze --ack-after 15`` over vfdb 418-428 and mitdb with leave-one-record-out VT
  parameters, nstdb and svdb with the shipped ones: per episode kind the sensitivity of the
  rhythm row and of the ``vtach``/``vfib`` alarm within 10 s, delays (median, max), false
  alarms per hour per database (resumable: ``out/rhythm_work/*.jsonl``).
- **AF from the waveform** (:mod:`tools.af.wave`): record-level AF F1 on CinC 2017, 5-fold
  by recording, and the same folds' false AF calls on mitdb.

Writes ``OUT/rhythm.md`` (all reports) and ``OUT/rhythm_af.json`` / ``OUT/rhythm_vf.json`` /
``OUT/rhythm_agent_afib.json`` / ``OUT/rhythm_agent_afdb.json``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Final, Literal

from agent.analyze import analyze_record_blocking
from agent.config import AgentConfig, DspConfig
from agent.inference.bundle import load_models
from agent.messages import AlarmCode, AlarmLifecycle
from tools.af.evaluate import evaluate_af, has_af_annotation
from tools.vf.evaluate import evaluate_vf

logger = logging.getLogger(__name__)

WORK_DIR = Path("out/rhythm_work")
"""Resumable journals of the agent runs (one JSON line per record) and the VT fold params."""


def agent_afib_alarms(mitdb: Path) -> dict[str, Any]:
    """Run ``bedside analyze``'s pipeline over every mitdb record and count its afib alarms.

    Returns
    -------
    dict
        ``records``: name → has reference AF, afib alarms raised, AF seconds found, duration;
        ``non_af``: false alarms, hours, per hour; ``af``: records with AF found / all.
    """
    cfg = AgentConfig(dsp=DspConfig(powerline_hz=60))  # MIT-BIH: Boston
    models = load_models(cfg.inference)
    rows: dict[str, dict[str, Any]] = {}
    for name in (mitdb / "RECORDS").read_text(encoding="utf-8").split():
        has_af = has_af_annotation(mitdb / name)
        res = analyze_record_blocking(mitdb / name, cfg, models)
        alarms = sum(
            1
            for e in res.events
            if e.condition is AlarmCode.AFIB and e.lifecycle is AlarmLifecycle.RAISED
        )
        af_s = sum(b - a for a, b in res.episodes.get("AFIB", []))
        rows[name] = {
            "reference_af": has_af,
            "afib_alarms": alarms,
            "af_found_s": round(af_s, 1),
            "duration_s": round(res.duration_s, 1),
        }
        logger.info("mitdb %s: %d afib alarms", name, alarms)
    non_af = [r for r in rows.values() if not r["reference_af"]]
    hours = sum(r["duration_s"] for r in non_af) / 3600.0
    false_alarms = sum(r["afib_alarms"] for r in non_af)
    with_af = [r for r in rows.values() if r["reference_af"]]
    return {
        "records": rows,
        "non_af": {
            "records": len(non_af),
            "false_alarms": false_alarms,
            "hours": round(hours, 2),
            "per_hour": round(false_alarms / hours, 2),
        },
        "af": {"records": len(with_af), "found": sum(r["afib_alarms"] > 0 for r in with_af)},
    }


AGENT_AFIB_HEADING: Final = "## afib alarms raised by the agent on mitdb"


def _agent_afib_markdown(report: dict[str, Any]) -> str:
    non_af, af = report["non_af"], report["af"]
    lines = [
        f"{AGENT_AFIB_HEADING} (`bedside analyze`, beat classifier on)",
        "",
        f"- records without AF: {non_af['false_alarms']} false afib alarms in"
        f" {non_af['hours']} h = **{non_af['per_hour']} per hour** ({non_af['records']}"
        " records)",
        f"- records with AF (reference `(AFIB`/`(AFL`): AF found in {af['found']} of"
        f" {af['records']}",
        "",
        "| record | reference AF | afib alarms | AF found, s |",
        "|---|---|---|---|",
    ]
    for name, row in report["records"].items():
        if row["reference_af"] or row["afib_alarms"]:
            ref = "yes" if row["reference_af"] else "no"
            lines.append(f"| {name} | {ref} | {row['afib_alarms']} | {row['af_found_s']} |")
    return "\n".join(lines) + "\n"


def agent_afdb(data_dir: Path, work: Path = WORK_DIR, jobs: int = 2) -> dict[str, Any]:
    """Run the agent over afdb's RR path out of fold and score it (``tools.af agent-cv``).

    Returns
    -------
    dict
        :func:`tools.af.agent_out.score_folder`'s figures plus ``models`` (record -> the
        model it went through).

    Raises
    ------
    FileNotFoundError
        If afdb or the AF fold models are missing.
    RuntimeError
        If a ``bedside analyze`` run fails.
    """
    from tools.af.agent_out import agent_cv

    return agent_cv(data_dir, work / "agent_afdb", jobs=jobs)


AGENT_AFDB_HEADING: Final = "## The agent on afdb's RR path, every record out of fold"


def _agent_afdb_markdown(r: dict[str, Any]) -> str:
    n = r["episodes_min_60s"]
    n_seen = r["episodes_observed_onset"]
    false = ", ".join(f"{k} {v}" for k, v in sorted(r["false_by_record"].items()))
    return "\n".join(
        [
            f"{AGENT_AFDB_HEADING} (`bedside analyze --rr-annotations qrs`)",
            "",
            "Every record through the AF fold model (and the episode hysteresis in its card)"
            " whose training never saw it; 00735 and 03665 trained no model and go through the"
            " shipped one. Reproduce alone: `.venv/bin/python -m tools.af agent-cv --data"
            " ../shared/data --out A --jobs 2` (about 6 min).",
            "",
            "| measure | value | issue 13 target |",
            "|---|---|---|",
            f"| false `afib` outside annotated AF ({r['hours_outside_af']} h) |"
            f" {r['false_alarms_af_records'] + r['false_alarms_non_af_records']}"
            f" ({r['false_per_hour_outside_af']}/h) | <= 0.1/h |",
            f"| AF episodes >= 60 s with an AFIB row within 30 s / 60 s |"
            f" {r['af_row_within_30s']} / {r['af_row_within_60s']} of {n}"
            f" ({100.0 * r['af_row_within_30s'] / max(n, 1):.1f} % within 30 s) | 95 % |",
            f"| the same within 30 s, leaving out the {n - n_seen} episodes under way when the"
            f" record starts (no onset to see) | {r['af_row_within_30s_observed_onset']} of"
            f" {n_seen} ({100.0 * r['af_row_within_30s_observed_onset'] / max(n_seen, 1):.1f} %)"
            " | |",
            f"| the same with an active `afib` alarm within 30 s / 60 s |"
            f" {r['alarmed_within_30s']} / {r['alarmed_within_60s']} of {n} | |",
            f"| `afib` alarms raised | {r['afib_alarms']} | |",
            "",
            f"False `afib` by record: {false or 'none'}.",
            "",
        ]
    )


def _rhythm_md(out_dir: Path, heading: str) -> Path:
    """Return ``OUT/rhythm.md`` after checking that it has the section under ``heading``.

    Raises
    ------
    FileNotFoundError
        If ``OUT/rhythm.md`` does not exist or has no such section.
    """
    path = out_dir / "rhythm.md"
    if heading not in path.read_text(encoding="utf-8"):
        msg = f"{path} has no section {heading!r}: run the whole evaluation"
        raise FileNotFoundError(msg)
    return path


def _replace_section(text: str, heading: str, section: str) -> str:
    """Return ``text`` with its section from ``heading`` up to the next heading replaced."""
    start = text.index(heading)
    end = text.find("\n#", start + len(heading))
    return text[:start] + section + ("" if end < 0 else text[end:])


def refresh_agent_afib(data_dir: Path, out_dir: Path) -> str:
    """Re-run :func:`agent_afib_alarms` alone and replace its section of ``OUT/rhythm.md``.

    For a change that touches only the AF alarm path: the other sections (the VT/VF runs
    through the agent take most of an hour) stay as they were measured. Writes
    ``OUT/rhythm_agent_afib.json``; returns the new section.

    Raises
    ------
    FileNotFoundError
        If ``OUT/rhythm.md`` does not exist or has no such section (checked before the run).
    """
    path = _rhythm_md(out_dir, AGENT_AFIB_HEADING)
    agent_af = agent_afib_alarms(data_dir / "mitdb")
    (out_dir / "rhythm_agent_afib.json").write_text(
        json.dumps(agent_af, indent=2) + "\n", encoding="utf-8"
    )
    section = _agent_afib_markdown(agent_af)
    text = _replace_section(path.read_text(encoding="utf-8"), AGENT_AFIB_HEADING, section)
    path.write_text(text, encoding="utf-8")
    return section


def refresh_agent_afdb(data_dir: Path, out_dir: Path, jobs: int = 2) -> str:
    """Re-run :func:`agent_afdb` alone and put its section into ``OUT/rhythm.md``.

    The section replaces the one already there, or goes right before the mitdb ``afib``
    section when the report predates it. Writes ``OUT/rhythm_agent_afdb.json``; returns the
    section.

    Raises
    ------
    FileNotFoundError
        If ``OUT/rhythm.md`` has neither section (checked before the run), or afdb or the
        fold models are missing.
    RuntimeError
        If a ``bedside analyze`` run fails.
    """
    path = out_dir / "rhythm.md"
    text = path.read_text(encoding="utf-8")
    if AGENT_AFDB_HEADING not in text:
        path = _rhythm_md(out_dir, AGENT_AFIB_HEADING)
        text = text.replace(AGENT_AFIB_HEADING, AGENT_AFDB_HEADING + "\n\n" + AGENT_AFIB_HEADING)
    report = agent_afdb(data_dir, jobs=jobs)
    (out_dir / "rhythm_agent_afdb.json").write_text(
        json.dumps(report, indent=2) + "\n", encoding="utf-8"
    )
    section = _agent_afdb_markdown(report)
    path.write_text(_replace_section(text, AGENT_AFDB_HEADING, section), encoding="utf-8")
    return section


def new_rhythm_sections(data_dir: Path, out_dir: Path) -> str:
    """Issue 13's sections: VT/VF through the agent with ack-after, and the waveform AF path.

    Writes ``OUT/rhythm_ventricular.json``; returns Markdown. The waveform-AF figures are the
    shipped model's nested cross-validation, read from its card (``models/af_wave.json``);
    ``reports/af_wave_tune.json`` is its training's report (``./run.sh train af-wave``) and is
    left as that wrote it (before session 23 this overwrote it with the card's int8 figures
    alone, dropping the float figures and the per-fold rules).
    """
    from agent.inference.bundle import load_models as _load
    from tools.af.wave import shipped_cross_validation
    from tools.vf.agent_eval import evaluate_ventricular, ventricular_markdown

    vent = evaluate_ventricular(
        data_dir, _load(AgentConfig().inference), progress=logger.info, work=WORK_DIR
    )
    (out_dir / "rhythm_ventricular.json").write_text(
        json.dumps(vent, indent=1, default=float) + "\n", encoding="utf-8"
    )
    af_cv = shipped_cross_validation()  # the shipped model's nested CV, from its card
    return ventricular_markdown(vent) + "\n" + af_wave_markdown(af_cv)


def af_wave_markdown(cv: dict[str, Any]) -> str:
    """Render the waveform-AF section (CinC 2017 record-level F1, cross-validated)."""
    return (
        "## AF from the waveform (int8 MLP `models/af_wave.tflite`; CinC 2017 + mitdb outside"
        " DS2, nested 5-fold by recording; `./run.sh train af-wave`, `tools/af/wave_mlp.py`)\n\n"
        f"- record-level AF F1 **{cv['f1']}** (tp {cv['tp']}, fp {cv['fp']}, fn {cv['fn']});"
        f" called AF by reference label: {cv['called_af_by_label']}\n"
        f"- mitdb windows in the same folds: {cv['mitdb_false_calls']} confirmed AF calls"
        f" outside AF in about {cv['mitdb_non_af_hours_approx']} h; AF records found"
        f" {cv['mitdb_af_records_found']}\n"
    )


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
    head = new_rhythm_sections(data_dir, out_dir)
    logger.info("AF: afdb cross-validated, mitdb (%s beats)", rr_source)
    af = evaluate_af(data_dir, rr_source=rr_source)
    logger.info("VF/VFL: vfdb, mitdb, nstdb")
    vf = evaluate_vf(data_dir, cross_validated=vf_cross_validated, progress=logger.info)
    logger.info("afib alarms of the agent on mitdb")
    agent_af = agent_afib_alarms(data_dir / "mitdb")
    (out_dir / "rhythm_agent_afib.json").write_text(
        json.dumps(agent_af, indent=2) + "\n", encoding="utf-8"
    )
    logger.info("the agent on afdb's RR path, out of fold")
    agent_afdb_report = agent_afdb(data_dir)
    (out_dir / "rhythm_agent_afdb.json").write_text(
        json.dumps(agent_afdb_report, indent=2) + "\n", encoding="utf-8"
    )
    (out_dir / "rhythm_af.json").write_text(af.to_json(), encoding="utf-8")
    (out_dir / "rhythm_vf.json").write_text(vf.to_json(), encoding="utf-8")
    text = (
        "# Rhythm evaluation\n\nReproduce: `.venv/bin/python -m tools.evaluate rhythm --data"
        " ../shared/data --out reports`.\n\n"
        + head
        + "\n"
        + af.to_markdown().replace("\n# ", "\n## ", 1)
        + "\n\n"
        + _agent_afdb_markdown(agent_afdb_report)
        + "\n"
        + _agent_afib_markdown(agent_af)
        + "\n"
        + vf.to_markdown()
        + "\n"
    )
    (out_dir / "rhythm.md").write_text(text, encoding="utf-8")
    return text
