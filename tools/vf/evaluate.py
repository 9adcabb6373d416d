"""Evaluation of the VF/VFL detector: episode sensitivity, alarm delay, false alarms per hour.

Two evaluations, both reported:

- **cross-validated**: every tuning record (vfdb, MIT-BIH DS1) is scored with parameters
  tuned leave-one-record-out without it (:func:`tools.vf.tune.tune_params`), replaying the
  detector's confirmation logic on its window votes;
- **shipped**: the streaming :class:`agent.rhythm.vf.VfDetector` with
  :data:`agent.rhythm.vf.VF_PARAMS_TUNED`, fed 1 s chunks, on the tuning records, on nstdb
  (noise stress, no VF) and on MIT-BIH DS2 (held out, never used for tuning); the tuning
  records are also replayed resampled to 130 Hz (a wearable's rate). CPU time of the
  detector is measured per second of signal.

Scoring definitions: :mod:`tools.vf.scoring`.

Length: the three evaluations share the episode scoring, the data loading and one report, so
they stay in one module.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
from scipy import signal

from agent.rhythm.vf import VF_PARAMS_TUNED, VfDetector, VfParams
from tools.vf.dataset import (
    DS2,
    NSTDB,
    RecordData,
    WindowSet,
    load_record,
    record_windows,
    tuning_records,
    vfdb_records,
)
from tools.vf.scoring import DetectorChange, RecordScore, score_changes, simulate_votes
from tools.vf.tune import record_votes, tune_params

logger = logging.getLogger(__name__)

__all__ = ["GroupSummary", "VfReport", "cross_validate", "evaluate_vf", "run_detector"]

SUSTAINED_S: Final = 10.0
"""Episodes at least this long are the headline (a window detector cannot alarm on a 2 s
burst, and a monitor should not)."""
DEADLINE_S: Final = 10.0
"""Alarm deadline after the onset, s."""
CHUNK_S: Final = 1.0
"""Chunk length fed to the streaming detector, s."""
WEARABLE_FS_HZ: Final = 130.0
"""Rate of the resampled replay (Polar H10 ECG)."""


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """Pooled figures over a group of records.

    Attributes
    ----------
    name : str
        Group name.
    records : int
        Records in the group.
    hours, non_vf_hours : float
        Total and non-VF signal, hours.
    vf_episodes, vf_detected : int
        All VF/VFL episodes and those detected (any delay).
    vf_sustained, vf_sustained_in_time : int
        Episodes of at least ``SUSTAINED_S`` and those alarmed within ``DEADLINE_S``.
    vf_4to10, vf_4to10_detected : int
        Episodes of 4-10 s and those detected.
    delay_median_s, delay_max_s : float | None
        Onset-to-alarm delay over detected sustained episodes, s.
    onset_error_median_s : float | None
        Median of (estimated onset - annotated onset) over sustained episodes, s.
    vt_episodes, vt_as_vf : int
        VT episodes and those during which the VF state was on.
    vt_sustained, vt_sustained_as_vf : int
        The same for VT episodes of at least ``SUSTAINED_S``.
    false_vf_alarms : int
        VF alarms outside every VF and VT episode.
    false_per_hour : float | None
        ``false_vf_alarms / non_vf_hours``.
    vf_alarms_in_vt : int
        VF alarms raised inside VT episodes.
    """

    name: str
    records: int
    hours: float
    non_vf_hours: float
    vf_episodes: int
    vf_detected: int
    vf_sustained: int
    vf_sustained_in_time: int
    vf_4to10: int
    vf_4to10_detected: int
    delay_median_s: float | None
    delay_max_s: float | None
    onset_error_median_s: float | None
    vt_episodes: int
    vt_as_vf: int
    vt_sustained: int
    vt_sustained_as_vf: int
    false_vf_alarms: int
    false_per_hour: float | None
    vf_alarms_in_vt: int

    @classmethod
    def of(cls, name: str, scores: Sequence[RecordScore]) -> GroupSummary:
        """Pool the scores of a group of records."""
        vf = [e for s in scores for e in s.episodes if e.kind == "VF"]
        vt = [e for s in scores for e in s.episodes if e.kind == "VT"]
        sus = [e for e in vf if e.duration_s >= SUSTAINED_S]
        mid = [e for e in vf if 4.0 <= e.duration_s < SUSTAINED_S]
        delays = [e.delay_s for e in sus if e.delay_s is not None]
        errs = [e.onset_error_s for e in sus if e.onset_error_s is not None]
        non_vf_h = sum(s.non_vf_h for s in scores)
        false_n = sum(s.false_vf_alarms for s in scores)
        return cls(
            name=name,
            records=len(scores),
            hours=sum(s.duration_h for s in scores),
            non_vf_hours=non_vf_h,
            vf_episodes=len(vf),
            vf_detected=sum(e.detected for e in vf),
            vf_sustained=len(sus),
            vf_sustained_in_time=sum(
                e.delay_s is not None and e.delay_s <= DEADLINE_S for e in sus
            ),
            vf_4to10=len(mid),
            vf_4to10_detected=sum(e.detected for e in mid),
            delay_median_s=statistics.median(delays) if delays else None,
            delay_max_s=max(delays) if delays else None,
            onset_error_median_s=statistics.median(errs) if errs else None,
            vt_episodes=len(vt),
            vt_as_vf=sum(e.detected for e in vt),
            vt_sustained=sum(e.duration_s >= SUSTAINED_S for e in vt),
            vt_sustained_as_vf=sum(e.detected for e in vt if e.duration_s >= SUSTAINED_S),
            false_vf_alarms=false_n,
            false_per_hour=false_n / non_vf_h if non_vf_h > 0 else None,
            vf_alarms_in_vt=sum(s.vf_alarms_in_vt for s in scores),
        )


@dataclass(slots=True)
class VfReport:
    """Everything measured by :func:`evaluate_vf`.

    Attributes
    ----------
    params : VfParams
        The shipped parameters evaluated.
    cv_summaries, shipped_summaries : list[GroupSummary]
        Pooled figures, cross-validated and with the shipped parameters.
    cv_records, shipped_records : list[RecordScore]
        Per-record scores.
    cpu_ms_per_s : dict[str, float]
        Detector CPU time per second of signal, ms, by stream rate (``"250 Hz"`` ...).
    notes : list[str]
        Caveats stated in the report.
    """

    params: VfParams
    cv_summaries: list[GroupSummary] = field(default_factory=list)
    shipped_summaries: list[GroupSummary] = field(default_factory=list)
    cv_records: list[RecordScore] = field(default_factory=list)
    shipped_records: list[RecordScore] = field(default_factory=list)
    cpu_ms_per_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """Serialise the report as JSON (every figure, per record and pooled)."""
        return json.dumps(asdict(self), indent=1, default=float)

    def to_markdown(self) -> str:
        """Render the report as Markdown tables."""
        lines = ["# VF/VFL detector evaluation", ""]
        p = self.params
        lines += [
            f"Window {p.window_s:g} s every {p.hop_s:g} s; vote threshold {p.threshold:g}; "
            f"VF after {p.k_on} of {p.n_on} VF windows, none after {p.n_off} non-VF windows.",
            "",
            f"Headline: VF/VFL episodes >= {SUSTAINED_S:g} s alarmed within "
            f"{DEADLINE_S:g} s of the annotated onset; delay = alarm time (end of the "
            "deciding window) - annotated onset; false VF alarms per hour of non-VF signal "
            "(alarms inside VT episodes counted apart).",
            "",
        ]
        for title, sums in (
            ("Cross-validated (leave-one-record-out)", self.cv_summaries),
            ("Shipped parameters", self.shipped_summaries),
        ):
            lines += [f"## {title}", "", *_summary_table(sums), ""]
        lines += ["## CPU", ""]
        lines += [f"- {k}: {v:.3f} ms per second of signal" for k, v in self.cpu_ms_per_s.items()]
        lines += ["", "## Per record", ""]
        lines += _record_table(self.cv_records, self.shipped_records)
        if self.notes:
            lines += ["", "## Notes", "", *[f"- {n}" for n in self.notes]]
        return "\n".join(lines) + "\n"


def _fmt(v: float | None, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def _pct(k: int, n: int) -> str:
    return f"{k}/{n} ({100.0 * k / n:.1f} %)" if n else "-"


def _summary_table(sums: Sequence[GroupSummary]) -> list[str]:
    out = [
        "| group | h (non-VF) | VF >=10 s in 10 s | VF 4-10 s | all VF | delay med / max s "
        "| false VF/h (n) | VF in VT | VT >=10 s as VF |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for g in sums:
        out.append(
            f"| {g.name} | {g.hours:.1f} ({g.non_vf_hours:.1f}) "
            f"| {_pct(g.vf_sustained_in_time, g.vf_sustained)} "
            f"| {_pct(g.vf_4to10_detected, g.vf_4to10)} | {_pct(g.vf_detected, g.vf_episodes)} "
            f"| {_fmt(g.delay_median_s)} / {_fmt(g.delay_max_s)} "
            f"| {_fmt(g.false_per_hour, '.2f')} ({g.false_vf_alarms}) | {g.vf_alarms_in_vt} "
            f"| {_pct(g.vt_sustained_as_vf, g.vt_sustained)} |"
        )
    return out


def _record_table(cv: Sequence[RecordScore], shipped: Sequence[RecordScore]) -> list[str]:
    cv_by = {s.key: s for s in cv}
    out = [
        "| record | set | VF eps (>=10 s) | detected in 10 s | delays s | false VF | VF in VT |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, scores in (("shipped", shipped), ("cv", cv)):
        for s in scores:
            if label == "cv" and s.key not in cv_by:
                continue
            sus = [e for e in s.episodes if e.kind == "VF" and e.duration_s >= SUSTAINED_S]
            hit = sum(e.delay_s is not None and e.delay_s <= DEADLINE_S for e in sus)
            delays = ", ".join(_fmt(e.delay_s) for e in sus)
            out.append(
                f"| {s.key} | {label} | {len(sus)} | {hit} | {delays} "
                f"| {s.false_vf_alarms} | {s.vf_alarms_in_vt} |"
            )
    return out


def run_detector(
    record: RecordData, params: VfParams, fs_hz: float | None = None
) -> tuple[list[DetectorChange], float]:
    """Stream a record through :class:`VfDetector` in ``CHUNK_S`` chunks.

    Parameters
    ----------
    record : RecordData
        The record.
    params : VfParams
        Detector parameters.
    fs_hz : float | None
        Resample the record to this rate first (None: its own rate). The returned indices
        are converted back to the record's rate so they can be scored against it.

    Returns
    -------
    tuple[list[DetectorChange], float]
        Changes (indices at the record's rate) and the detector's CPU time, s.
    """
    x = record.ecg_uv.astype(np.float32)
    fs = record.fs_hz
    if fs_hz is not None and fs_hz != fs:
        up, down = _ratio(fs_hz, fs)
        x = signal.resample_poly(record.ecg_uv, up, down).astype(np.float32)
        fs = fs_hz
    det = VfDetector(fs, params)
    step = round(CHUNK_S * fs)
    out: list[DetectorChange] = []
    scale = record.fs_hz / fs
    t0 = time.process_time()
    for i in range(0, x.size, step):
        for c in det.push(x[i : i + step]):
            out.append(
                DetectorChange(c.rhythm, round(c.onset_idx * scale), round(c.decided_idx * scale))
            )
    return out, time.process_time() - t0


def _ratio(fs_to: float, fs_from: float) -> tuple[int, int]:
    from fractions import Fraction

    frac = Fraction(fs_to / fs_from).limit_denominator(1000)
    return frac.numerator, frac.denominator


def cross_validate(windows: Sequence[WindowSet], base: VfParams) -> list[RecordScore]:
    """Score each record with parameters tuned without it (leave-one-record-out)."""
    scores: list[RecordScore] = []
    for i, ws in enumerate(windows):
        params = tune_params([w for j, w in enumerate(windows) if j != i], base)
        votes = record_votes(ws, params) >= params.threshold
        win_n = round(params.window_s * ws.record.fs_hz)
        changes = simulate_votes(votes, ws.end_idx, win_n, params.k_on, params.n_on, params.n_off)
        scores.append(score_changes(ws.record, changes, params.window_s))
    return scores


def _groups(scores: Sequence[RecordScore]) -> dict[str, list[RecordScore]]:
    groups: dict[str, list[RecordScore]] = {}
    ds2 = {f"mitdb/{n}" for n in DS2}
    for s in scores:
        if s.key.startswith("vfdb/"):
            name = "vfdb"
        elif s.key.startswith("nstdb/"):
            name = "nstdb (noise stress)"
        elif s.key in ds2:
            name = "mitdb DS2 (held out)"
        else:
            name = "mitdb DS1"
        groups.setdefault(name, []).append(s)
    return groups


def evaluate_vf(
    data_dir: Path,
    params: VfParams = VF_PARAMS_TUNED,
    *,
    cross_validated: bool = True,
    held_out: bool = True,
    wearable_rate: bool = True,
    progress: Callable[[str], None] | None = None,
) -> VfReport:
    """Evaluate the VF detector on the PhysioNet records under ``data_dir``.

    Parameters
    ----------
    data_dir : Path
        Folder with ``vfdb``, ``mitdb`` and ``nstdb``.
    params : VfParams, optional
        Shipped parameters to evaluate (default :data:`VF_PARAMS_TUNED`); their window
        geometry is also used for the cross-validation.
    cross_validated : bool, optional
        Run the leave-one-record-out evaluation (about a minute).
    held_out : bool, optional
        Also score nstdb and MIT-BIH DS2 with the shipped parameters.
    wearable_rate : bool, optional
        Also replay the tuning records resampled to 130 Hz.
    progress : Callable[[str], None] | None, optional
        Called with a short message per record.

    Returns
    -------
    VfReport
        The report.

    Raises
    ------
    FileNotFoundError
        If a record is missing.
    """
    say = progress or (lambda _msg: None)
    report = VfReport(params)
    tuning = [load_record(data_dir, db, n) for db, n in tuning_records(data_dir)]
    if cross_validated:
        windows = []
        for r in tuning:
            say(f"windows {r.key}")
            windows.append(record_windows(r, params))
        report.cv_records = cross_validate(windows, params)
        report.cv_summaries = _summaries(report.cv_records)
    others: list[tuple[str, str]] = []
    if held_out:
        others = [("nstdb", n) for n in NSTDB] + [("mitdb", n) for n in DS2]
    cpu: dict[float, list[float]] = {}
    tuning_keys = {r.key for r in tuning}
    wearable: list[RecordScore] = []
    for rec in [*tuning, *(load_record(data_dir, db, n) for db, n in others)]:
        say(f"stream {rec.key}")
        changes, cpu_s = run_detector(rec, params)
        cpu.setdefault(rec.fs_hz, []).extend([cpu_s, rec.duration_s])
        report.shipped_records.append(score_changes(rec, changes, params.window_s))
        if wearable_rate and rec.key in tuning_keys:
            changes, cpu_s = run_detector(rec, params, WEARABLE_FS_HZ)
            cpu.setdefault(WEARABLE_FS_HZ, []).extend([cpu_s, rec.duration_s])
            wearable.append(score_changes(rec, changes, params.window_s))
    report.shipped_summaries = _summaries(report.shipped_records)
    if wearable:
        report.shipped_summaries.append(GroupSummary.of("vfdb + DS1 resampled to 130 Hz", wearable))
    for fs, vals in sorted(cpu.items()):
        report.cpu_ms_per_s[f"{fs:g} Hz"] = 1000.0 * sum(vals[::2]) / sum(vals[1::2])
    vfdb_n = len(vfdb_records(data_dir))
    report.notes.append(
        f"vfdb: {vfdb_n} records present under {data_dir / 'vfdb'} (PhysioNet's vfdb has 22)."
    )
    return report


def _summaries(scores: Sequence[RecordScore]) -> list[GroupSummary]:
    groups = _groups(scores)
    out = [GroupSummary.of(name, group) for name, group in groups.items()]
    tuning = [s for name, g in groups.items() if name in ("vfdb", "mitdb DS1") for s in g]
    if tuning and len(out) > 1:
        out.append(GroupSummary.of("vfdb + DS1 (tuning set)", tuning))
    return out
