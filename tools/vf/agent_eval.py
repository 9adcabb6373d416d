"""VT and VF/VFL as the agent decides them: ``bedside analyze``'s pipeline, alarms with ack.

Every record runs through :func:`agent.analyze.analyze_record` (the live agent's core and
driver) with ``ack_after_s`` (a nurse acknowledges each latched alarm that long after it is
raised, so later episodes raise their own alarms). Scored per annotated episode:

- **episodes**: maximal stretches annotated VF/VFL/VFIB (kind ``VF``) or VT, at least
  ``MIN_EPISODE_S`` long, or, for VT, at least ``VT_MIN_BEATS`` annotated beats at a mean rate
  above ``VT_MIN_RATE_BPM`` (the issue's definition; vfdb has no beat annotations, so there a
  VT episode is one of >= 4 s);
- **rhythm row within 10 s**: a ``VT``, ``VF`` row of the agent (``RecordResult.episodes``,
  what ``rhythm.csv`` is built from) that starts at or before onset + 10 s and ends after the
  onset; its delay is ``max(0, row start - onset)``;
- **alarm within 10 s**: a ``vtach`` or ``vfib`` alarm raised in ``[onset, onset + 10 s]``, or
  one raised before the onset and still active at it (delay 0); delay = raised - onset;
- **false alarms**: ``vtach`` / ``vfib`` raised outside every VT/VF episode ``[onset - 2 s,
  end + 10 s]`` (any length), per hour of record.

Cross-validated runs pass each record its own fold's VT parameters (tuned without it).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import wfdb

from agent.analyze import analyze_record_blocking
from agent.config import AgentConfig, DspConfig
from agent.inference.bundle import ModelBundle
from agent.messages import AlarmCode, AlarmLifecycle
from agent.rhythm.ventricular import VtParams
from tools.vf.dataset import VF_CODES, VT_CODES

logger = logging.getLogger(__name__)

HELD_OUT_NOTE: Final = {
    "nstdb": "never tuned on, but its noise record em was seen by the VT leakage gate's choice",
}
"""How far a held-out set of the false-alarm table is held out, where it is not entirely
(nstdb 118e* / 119e* are mitdb 118 / 119 plus nstdb's ``em``, which
:func:`tools.vf.vt.leak_gate_study` scores; docs/vf_detector.md, session 21)."""

MIN_EPISODE_S: Final = 4.0
VT_MIN_BEATS: Final = 6
VT_MIN_RATE_BPM: Final = 100.0
DEADLINE_S: Final = 10.0
PRE_GRACE_S: Final = 2.0
ACK_AFTER_S: Final = 15.0
"""Acknowledgement delay used for the report, s (``bedside analyze --ack-after 15``)."""
_CODES: Final = (AlarmCode.VTACH, AlarmCode.VFIB)


@dataclass(frozen=True, slots=True)
class Episode:
    """One scored episode: kind, onset, duration, row and alarm delays (None = missed)."""

    record: str
    kind: str
    start_s: float
    duration_s: float
    row_delay_s: float | None
    alarm_delay_s: float | None
    alarm: str | None


@dataclass(frozen=True, slots=True)
class RecordRun:
    """One record's episodes and false alarms."""

    key: str
    hours: float
    episodes: tuple[Episode, ...]
    false_alarms: tuple[tuple[str, float], ...]


def reference_episodes(path: Path) -> list[tuple[str, float, float, int]]:
    """``(kind, start_s, end_s, n_beats)`` of the VT and VF stretches of a record.

    A record without reference annotations (nstdb's noise records ``bw``, ``em``, ``ma``)
    has none.
    """
    if not path.with_suffix(".atr").exists():
        return []
    ann = wfdb.rdann(str(path), "atr")
    hdr = wfdb.rdheader(str(path))
    end_all = hdr.sig_len / ann.fs
    out: list[tuple[str, float, float, int]] = []
    cur: tuple[str, float] | None = None
    beats = [s / ann.fs for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym.isalpha()]
    for s, aux in zip(ann.sample, ann.aux_note, strict=True):
        note = str(aux).strip("\x00").strip()
        if not note.startswith("("):
            continue
        code = note[1:]
        kind = "VF" if code in VF_CODES else "VT" if code in VT_CODES else None
        t = s / ann.fs
        if cur is not None and kind != cur[0]:
            out.append((cur[0], cur[1], t, 0))
            cur = None
        if kind is not None and cur is None:
            cur = (kind, t)
    if cur is not None:
        out.append((cur[0], cur[1], end_all, 0))
    bt = np.asarray(beats)
    return [(k, a, b, int(np.sum((bt >= a) & (bt < b)))) for k, a, b, _ in out]


def _counts(kind: str, a: float, b: float, n_beats: int) -> bool:
    if b - a >= MIN_EPISODE_S:
        return True
    if kind != "VT" or n_beats < VT_MIN_BEATS:
        return False
    return 60.0 * (n_beats - 1) / max(b - a, 1e-6) > VT_MIN_RATE_BPM


def run_record(
    path: Path, db: str, models: ModelBundle, ack_after_s: float = ACK_AFTER_S
) -> RecordRun:
    """Analyse one record with the agent and score its VT/VF episodes and alarms."""
    cfg = AgentConfig(dsp=DspConfig(powerline_hz=60))  # MIT-BIH (Boston) and vfdb
    res = analyze_record_blocking(path, cfg, models, ack_after_s=ack_after_s)
    alarms: list[tuple[str, float, float]] = []  # (code, raised_s, cleared_s)
    raised: dict[str, tuple[str, float]] = {}
    for ev in res.events:
        if ev.condition not in _CODES:
            continue
        t = float(ev.raised_s) if ev.raised_s is not None else float(ev.onset_s)
        if ev.lifecycle is AlarmLifecycle.RAISED:
            raised[ev.alarm_id] = (ev.condition.value, t)
        elif ev.lifecycle is AlarmLifecycle.CLEARED and ev.alarm_id in raised:
            code, r = raised.pop(ev.alarm_id)
            cleared = ev.cleared_s if ev.cleared_s is not None else res.duration_s
            alarms.append((code, r, float(cleared)))
    alarms += [(code, r, res.duration_s) for code, r in raised.values()]
    rows = [(a, b) for code in ("VT", "VF") for a, b in res.episodes.get(code, [])]
    ref = reference_episodes(path)
    episodes: list[Episode] = []
    for kind, a, b, n in ref:
        if not _counts(kind, a, b, n):
            continue
        row = [max(0.0, s - a) for s, e in rows if s <= a + DEADLINE_S and e > a]
        hits = [(max(0.0, r - a), c) for c, r, cl in alarms if r <= a + DEADLINE_S and cl > a]
        first = min(hits) if hits else None
        episodes.append(
            Episode(
                f"{db}/{path.name}",
                kind,
                round(a, 2),
                round(b - a, 2),
                min(row) if row else None,
                None if first is None else round(first[0], 2),
                None if first is None else first[1],
            )
        )
    false = tuple(
        (c, round(r, 1))
        for c, r, _ in alarms
        if not any(a - PRE_GRACE_S <= r <= b + DEADLINE_S for _, a, b, _ in ref)
    )
    return RecordRun(f"{db}/{path.name}", res.duration_s / 3600.0, tuple(episodes), false)


def _run_from_json(d: dict[str, Any]) -> RecordRun:
    return RecordRun(
        d["key"],
        d["hours"],
        tuple(Episode(**e) for e in d["episodes"]),
        tuple((c, t) for c, t in d["false_alarms"]),
    )


def evaluate_agent(
    data_dir: Path,
    base: ModelBundle,
    records: Sequence[tuple[str, str]],
    fold_params: Mapping[str, VtParams] | None = None,
    progress: Callable[[str], None] = logger.info,
    journal: Path | None = None,
) -> list[RecordRun]:
    """Run :func:`run_record` over ``records`` (``(db, name)``), fold parameters if given.

    With ``journal`` (JSON lines), each record's result is appended as soon as it is known
    and records already there are not run again (an interrupted run resumes).
    """
    done: dict[str, RecordRun] = {}
    if journal is not None and journal.exists():
        for line in journal.read_text(encoding="utf-8").splitlines():
            run = _run_from_json(json.loads(line))
            done[run.key] = run
    out: list[RecordRun] = []
    for db, name in records:
        key = f"{db}/{name}"
        if key in done:
            out.append(done[key])
            continue
        models = base
        if fold_params is not None and key in fold_params:
            models = dataclasses.replace(base, vt=fold_params[key])
        run = run_record(data_dir / db / name, db, models)
        progress(f"{key}: {len(run.episodes)} episodes, {len(run.false_alarms)} false")
        if journal is not None:
            with journal.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(dataclasses.asdict(run), default=float) + "\n")
        out.append(run)
    return out


def summarise(runs: Sequence[RecordRun]) -> dict[str, Any]:
    """Per kind: episodes, row / alarm within 10 s, delays; false alarms per hour."""
    out: dict[str, Any] = {}
    for kind in ("VF", "VT"):
        eps = [e for r in runs for e in r.episodes if e.kind == kind]
        rows = [e.row_delay_s for e in eps if e.row_delay_s is not None]
        al = [e.alarm_delay_s for e in eps if e.alarm_delay_s is not None]
        out[kind] = {
            "episodes": len(eps),
            "row_within_10_s": len(rows),
            "row_delay_median_s": round(float(np.median(rows)), 1) if rows else None,
            "row_delay_max_s": round(max(rows), 1) if rows else None,
            "alarm_within_10_s": len(al),
            "alarm_delay_median_s": round(float(np.median(al)), 1) if al else None,
            "alarm_delay_max_s": round(max(al), 1) if al else None,
            "missed": [
                f"{e.record}@{e.start_s:.0f}s({e.duration_s:.0f}s)"
                for e in eps
                if e.alarm_delay_s is None
            ],
        }
    hours = sum(r.hours for r in runs)
    false = [f for r in runs for f in r.false_alarms]
    out["false"] = {
        "hours": round(hours, 2),
        "vtach": sum(1 for c, _ in false if c == "vtach"),
        "vfib": sum(1 for c, _ in false if c == "vfib"),
        "per_hour": round(len(false) / hours, 3) if hours else None,
    }
    return out


def fold_params(data_dir: Path, cache: Path | None = None) -> dict[str, VtParams]:
    """Leave-one-record-out VT parameters per ``db/name`` (cached as JSON when given)."""
    from tools.vf.vt import cross_validate, params_from_json, params_json, vt_records, vt_windows

    if cache is not None and cache.exists():
        raw: dict[str, dict[str, Any]] = json.loads(cache.read_text(encoding="utf-8"))
        return {key: params_from_json(p) for key, p in raw.items()}
    base = VtParams()
    windows = [vt_windows(data_dir, db, name, base) for db, name in vt_records(data_dir)]
    _, folds = cross_validate(windows, base)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({k: params_json(p) for k, p in folds.items()}))
    return folds


HELD_OUT_VFDB: Final = "vfdb-held-out"
"""The vfdb records of a full download outside :data:`tools.vf.dataset.VFDB_AT_HAND` (429,
430, 602-615): scored like the cross-validated sets, with the shipped parameters."""


def shipped_set_records(data_dir: Path, name: str) -> tuple[str, list[str]]:
    """Return the folder and the records of a set scored with the shipped parameters.

    ``svdb``: its 40 records at hand; ``nstdb``: all; :data:`HELD_OUT_VFDB`: vfdb's records
    outside :data:`tools.vf.dataset.VFDB_AT_HAND` (none with the data beside the project).
    """
    db = "vfdb" if name == HELD_OUT_VFDB else name
    if not (data_dir / db).is_dir():
        return db, []
    if db == "svdb":
        from tools.beats.dataset import svdb_records

        return db, list(svdb_records(data_dir))
    if name == HELD_OUT_VFDB:
        from tools.vf.dataset import vfdb_held_out_records

        return db, vfdb_held_out_records(data_dir)
    return db, (data_dir / db / "RECORDS").read_text().split()


def evaluate_ventricular(
    data_dir: Path,
    models: ModelBundle,
    progress: Callable[[str], None] = logger.info,
    work: Path | None = None,
    held_out: Sequence[str] = ("nstdb", "svdb", HELD_OUT_VFDB),
) -> dict[str, Any]:
    """VT and VF/VFL through the agent: cross-validated on vfdb + mitdb, held out on the rest.

    vfdb 418-428 and every mitdb record run with their leave-one-record-out VT parameters
    (:func:`tools.vf.vt.cross_validate`; the VF detector's parameters are the shipped ones,
    whose own cross-validation is in ``docs/vf_detector.md``). nstdb and svdb (never used in
    tuning) count false alarms only, with the shipped parameters (or, where the fold file holds
    them, an nstdb record's parameters tuned without the noise and mitdb records it is built
    from: ``vt-tune --noise-negatives``). vfdb's other 11 records, when a full download holds
    them (:data:`HELD_OUT_VFDB`), are scored like the cross-validated ones with the shipped
    parameters; a held-out set without records is left out of the report.
    """
    from tools.vf.vt import vt_records

    records = vt_records(data_dir)
    folds = fold_params(data_dir, None if work is None else work / "vt_folds.json")
    cv = evaluate_agent(
        data_dir, models, records, folds, progress, None if work is None else work / "cv.jsonl"
    )
    held: dict[str, list[RecordRun]] = {}
    for name in held_out:
        db, names = shipped_set_records(data_dir, name)
        if not names and name == HELD_OUT_VFDB:
            continue
        journal = None if work is None else work / f"{name}.jsonl"
        # the shipped parameters, unless the folds hold a record's own (vt-tune
        # --noise-negatives: nstdb tuned without the records it is built from)
        held[name] = evaluate_agent(
            data_dir, models, [(db, n) for n in names], folds, progress, journal
        )
    return {
        "ack_after_s": ACK_AFTER_S,
        "cv": {
            "vfdb+mitdb": summarise(cv),
            "vfdb": summarise([r for r in cv if r.key.startswith("vfdb")]),
            "mitdb": summarise([r for r in cv if r.key.startswith("mitdb")]),
        },
        "shipped": {db: summarise(runs) for db, runs in held.items()},
        "episodes": [dataclasses.asdict(e) for r in cv for e in r.episodes],
        "false_alarms": {
            r.key: list(r.false_alarms)
            for r in cv + [r for runs in held.values() for r in runs]
            if r.false_alarms
        },
    }


def ventricular_markdown(rep: dict[str, Any]) -> str:
    """Render the VT / VF section of ``reports/rhythm.md``."""
    lines = [
        "## Ventricular rhythms through the agent (`bedside analyze --ack-after "
        f"{rep['ack_after_s']:g}`)",
        "",
        "VT and VF/VFL episodes (>= 4 s, or VT >= 6 beats above 100 bpm where beats are"
        " annotated), scored on the agent's own rhythm rows (`VT`, `VF`) and `vtach` / `vfib`"
        " alarms; vfdb 418-428 + mitdb cross-validated leave-one-record-out (VT detector),"
        " nstdb and svdb with the shipped parameters (never tuned on). Definitions:"
        " `tools/vf/agent_eval.py`.",
        "",
        "| set | kind | episodes | row <= 10 s | row delay med / max s | alarm <= 10 s |"
        " alarm delay med / max s |",
        "|---|---|---|---|---|---|---|",
    ]

    def pct(k: int, n: int) -> str:
        return f"{k}/{n} ({100.0 * k / n:.0f} %)" if n else "-"

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    scored = [(f"{n} (CV)", s) for n, s in rep["cv"].items()]
    scored += [
        (f"{n} (shipped)", s)
        for n, s in rep["shipped"].items()
        if s["VF"]["episodes"] or s["VT"]["episodes"]
    ]
    for name, s in scored:
        for kind in ("VF", "VT"):
            k = s[kind]
            lines.append(
                f"| {name} | {kind} | {k['episodes']} |"
                f" {pct(k['row_within_10_s'], k['episodes'])} |"
                f" {fmt(k['row_delay_median_s'])} / {fmt(k['row_delay_max_s'])} |"
                f" {pct(k['alarm_within_10_s'], k['episodes'])} |"
                f" {fmt(k['alarm_delay_median_s'])} / {fmt(k['alarm_delay_max_s'])} |"
            )
    lines += [
        "",
        "False `vtach` + `vfib` alarms (raised outside every annotated VT/VF episode, 2 s"
        " before to 10 s after):",
        "",
        "| set | hours | false vtach | false vfib | per hour |",
        "|---|---|---|---|---|",
    ]
    rows = [(f"{n} (CV)", s) for n, s in rep["cv"].items()]
    rows += [
        (f"{n} (shipped, {HELD_OUT_NOTE.get(n, 'held out')})", s) for n, s in rep["shipped"].items()
    ]
    for name, s in rows:
        f = s["false"]
        lines.append(f"| {name} | {f['hours']} | {f['vtach']} | {f['vfib']} | {f['per_hour']} |")
    missed = [m for s in rep["cv"].values() for kind in ("VF", "VT") for m in s[kind]["missed"]]
    lines += [
        "",
        "Missed (no alarm within 10 s), CV: " + (", ".join(sorted(set(missed))) or "none"),
    ]
    return "\n".join(lines) + "\n"
