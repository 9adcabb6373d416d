"""Tuning of the waveform VT detector (:mod:`agent.rhythm.ventricular`), patient-wise.

``vt_tune(windows)`` is the whole procedure, a pure function of the training records'
windows:

1. training windows: *ventricular* when at least ``POS_MIN_FRAC`` of the window is annotated
   VT, VF or VFL; *other* when none of it is (NOISE, asystole, SVTA, AF, bigeminy ... all
   count as other); windows straddling a border are left out;
2. features standardised on the training set; L2 logistic regression (IRLS,
   :func:`tools.vf.tune.fit_logistic`), both classes weighted equally;
3. vote threshold and ``k_on`` of ``n_on``, then (with those fixed) the mean-frequency noise
   gate (``max_mean_freq_hz``), chosen on small grids by replaying the detector
   (:func:`tools.vf.scoring.simulate_votes`) on every training record and minimising
   ``MISS_COST`` per ventricular episode (VT or VF, at least ``MIN_EPISODE_S``) not decided
   within ``DEADLINE_S`` plus one per false decision (outside every VT/VF episode);
4. the VF-filter-leakage gate ``max_vf_leak`` = :data:`MAX_VF_LEAK`, fixed: chosen once by
   :func:`leak_gate_study` on the out-of-fold results (session 21).

Records are patients: cross-validation is leave-one-record-out over vfdb 418-428 and all 48
mitdb records (each record scored by parameters tuned without it). Window features are cached
in ``CACHE`` (an ``.npz`` per record) because they do not depend on the tuned parameters.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

from agent.rhythm.ventricular import (
    MEAN_FREQ_IDX,
    N_VT_FEATURES,
    VF_LEAK_IDX,
    VtParams,
    vt_window_features,
)
from agent.rhythm.vf import MARGIN_S, MIN_STD_UV
from tools.vf.dataset import (
    NOISE_CODES,
    VF_CODES,
    VT_CODES,
    RecordData,
    load_record,
    vfdb_records,
)
from tools.vf.scoring import DetectorChange, simulate_votes
from tools.vf.tune import fit_logistic

logger = logging.getLogger(__name__)

POS_MIN_FRAC: Final = 0.75
"""A training window is ventricular when at least this much of it is annotated VT/VF/VFL."""
THRESHOLD_GRID: Final = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)
K_OF_N_GRID: Final = ((2, 2), (2, 3), (3, 3), (3, 4), (4, 4), (4, 5), (5, 5))
MEAN_FREQ_GATE_GRID_HZ: Final = (5.5, 6.0, 6.5, math.inf)
"""Noise-gate grid: windows above this mean frequency do not vote (``math.inf``: no gate)."""
VF_LEAK_GATE_GRID: Final = (math.inf, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5)
"""Candidates of the VF-filter-leakage noise gate (:func:`leak_gate_study`)."""
MAX_VF_LEAK: Final = 0.65
"""The leakage gate every tuning gives its parameters (``VtParams.max_vf_leak``), chosen in
session 21 by :func:`leak_gate_study`: of :data:`VF_LEAK_GATE_GRID`, the one with the lowest
leave-one-record-out cost plus false decisions on the nstdb noise records."""
N_OFF: Final = 3
MIN_EPISODE_S: Final = 4.0
"""Ventricular episodes shorter than this do not count in tuning (the issue's VT episode is
>= 6 beats above 100 bpm *or* >= 4 s; the short beat runs are the beat classifier's)."""
DEADLINE_S: Final = 10.0
"""Decision deadline after a VT/VF onset (the issue's target)."""
MISS_COST: Final = 10.0
"""Cost of an episode not decided within the deadline, in false decisions."""
CACHE: Final = Path("out/vt_cache")
NOISE_RECORDS: Final = ("bw", "em", "ma")
"""nstdb's pure noise records (baseline wander, electrode motion, muscle artifact; Moody GB,
Muldrow WK, Mark RG, Comput Cardiol 1984;11:381-384). Tuning uses them as negatives: every
window is *other*, and every decision on them is a false one."""
NOISE_HELD_OUT: Final = {
    "bw": ("bw",),
    "em": ("em", "118", "119"),
    "ma": ("ma",),
}
"""For scoring nstdb without having tuned on it: the records left out of the tuning that scores
records built from each noise record (nstdb 118e*/119e* are mitdb 118/119 plus ``em``)."""


@dataclass(frozen=True, slots=True)
class VtWindows:
    """Window features and labels of one record.

    Attributes
    ----------
    record : RecordData
        The record (without its samples' copy; ``ecg_uv`` kept for rate and length).
    end_idx : NDArray[np.int64]
        One past the last sample of each window.
    features : NDArray[np.float64]
        Shape ``(n_windows, N_VT_FEATURES)``.
    vent_frac, noise_frac : NDArray[np.float64]
        Fraction of each window annotated VT/VF/VFL, NOISE.
    """

    record: RecordData
    end_idx: NDArray[np.int64]
    features: NDArray[np.float64]
    vent_frac: NDArray[np.float64]
    noise_frac: NDArray[np.float64]


def _fraction(mask: NDArray[np.bool_], end_idx: NDArray[np.int64], n: int) -> NDArray[np.float64]:
    csum = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    return np.asarray((csum[end_idx] - csum[end_idx - n]) / n, dtype=np.float64)


def _noise_record(data_dir: Path, name: str) -> RecordData:
    """Read channel 0 of an nstdb noise record (``bw``, ``em``, ``ma``: no ECG, no labels)."""
    import wfdb

    rec = wfdb.rdrecord(str(data_dir / "nstdb" / name), channels=[0])
    x = np.nan_to_num(np.asarray(rec.p_signal[:, 0], dtype=np.float64)) * 1000.0  # mV -> µV
    return RecordData("nstdb", name, float(rec.fs), x, (), (), ())


def vt_windows(data_dir: Path, db: str, name: str, base: VtParams) -> VtWindows:
    """Features of every window the streaming detector would judge (cached per record).

    The nstdb noise records (:data:`NOISE_RECORDS`) are read without annotations: every
    window is *other*.
    """
    if db == "nstdb" and name in NOISE_RECORDS:
        rec = _noise_record(data_dir, name)
    else:
        rec = load_record(data_dir, db, name)
    fs = rec.fs_hz
    hop_n = max(1, round(base.hop_s * fs))
    win_n = round(base.window_s * fs)
    need_n = round((base.window_s + MARGIN_S) * fs)
    first = -(-need_n // hop_n) * hop_n
    ends = np.arange(first, rec.ecg_uv.size + 1, hop_n, dtype=np.int64)
    cache = CACHE / f"{db}_{name}_{base.window_s:g}_{base.hop_s:g}.npz"
    if cache.exists():
        feats = np.load(cache)["features"]
    else:
        feats = np.empty((ends.size, N_VT_FEATURES))
        for i, e in enumerate(ends):
            raw = rec.ecg_uv[e - need_n : e]
            feats[i] = vt_window_features(np.nan_to_num(raw), fs, base.window_s)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, features=feats)
    vent = rec.mask(VF_CODES | VT_CODES)
    return VtWindows(
        rec,
        ends,
        feats,
        _fraction(vent, ends, win_n),
        _fraction(rec.mask(NOISE_CODES), ends, win_n),
    )


def window_probability(ws: VtWindows, params: VtParams) -> NDArray[np.float64]:
    """P(ventricular) of each window as the detector computes it (amplitude and noise gates)."""
    z = (ws.features - np.asarray(params.feature_mean)) / np.asarray(params.feature_scale)
    prob = 1.0 / (1.0 + np.exp(-np.clip(z @ np.asarray(params.coef) + params.intercept, -50, 50)))
    ok = (
        (ws.features[:, 8] >= math.log10(MIN_STD_UV))
        & (ws.features[:, MEAN_FREQ_IDX] <= params.max_mean_freq_hz)
        & (ws.features[:, VF_LEAK_IDX] <= params.max_vf_leak)
    )
    return np.where(ok, prob, 0.0)


@dataclass(frozen=True, slots=True)
class VtScore:
    """How the window detector met one record's ventricular episodes.

    Attributes
    ----------
    key : str
        ``db/name``.
    hours : float
        Record length, h.
    episodes : tuple[tuple[str, float, float, float | None], ...]
        ``(kind, start_s, duration_s, delay_s or None)`` of every VT / VF episode of at least
        ``MIN_EPISODE_S`` (delay: first decision inside the episode or up to one window after).
    false_decisions : int
        VT decisions outside every VT/VF episode (plus one window).
    """

    key: str
    hours: float
    episodes: tuple[tuple[str, float, float, float | None], ...]
    false_decisions: int


def score_vt(rec: RecordData, changes: Sequence[DetectorChange], window_s: float) -> VtScore:
    """Score detector changes against the VT/VF episodes of a record."""
    fs = rec.fs_hz
    lag = round(window_s * fs)
    on_times = [c.decided_idx for c in changes if c.rhythm == "VF"]
    on_iv: list[tuple[int, int]] = []
    cur: int | None = None
    for c in changes:
        if c.rhythm == "VF" and cur is None:
            cur = c.decided_idx
        elif c.rhythm != "VF" and cur is not None:
            on_iv.append((cur, c.decided_idx))
            cur = None
    if cur is not None:
        on_iv.append((cur, rec.ecg_uv.size + lag + 1))
    eps: list[tuple[str, int, int]] = [("VF", a, b) for a, b in rec.vf_episodes]
    eps += [("VT", a, b) for a, b in rec.vt_episodes]
    out: list[tuple[str, float, float, float | None]] = []
    for kind, a, b in eps:
        if (b - a) / fs < MIN_EPISODE_S:
            continue
        hits = [max(on, a) for on, off in on_iv if on < b + lag and off > a]
        out.append((kind, a / fs, (b - a) / fs, (min(hits) - a) / fs if hits else None))
    false_n = sum(1 for t in on_times if not any(a <= t < b + lag for _, a, b in eps))
    return VtScore(rec.key, rec.ecg_uv.size / fs / 3600, tuple(out), false_n)


def _replay(ws: VtWindows, prob: NDArray[np.float64], params: VtParams) -> VtScore:
    changes = simulate_votes(
        prob >= params.threshold,
        ws.end_idx,
        round(params.window_s * ws.record.fs_hz),
        params.k_on,
        params.n_on,
        params.n_off,
    )
    return score_vt(ws.record, changes, params.window_s)


def cost(scores: Sequence[VtScore]) -> float:
    """``MISS_COST`` per episode not decided within ``DEADLINE_S`` + 1 per false decision."""
    total = 0.0
    for s in scores:
        total += s.false_decisions
        total += sum(MISS_COST for ep in s.episodes if ep[3] is None or ep[3] > DEADLINE_S)
    return total


def vt_tune(
    windows: Sequence[VtWindows],
    base: VtParams,
    gates: Sequence[float] = MEAN_FREQ_GATE_GRID_HZ,
    leak_gate: float = MAX_VF_LEAK,
) -> VtParams:
    """Fit the logistic model and choose threshold, k-of-n and noise gate on ``windows``.

    ``gates`` is the grid of ``max_mean_freq_hz`` (``(math.inf,)``: the version-1 detector,
    no noise gate). ``leak_gate`` is given to the result as ``max_vf_leak`` after every
    choice (a fixed gate, :data:`MAX_VF_LEAK`; ``math.inf``: none, the version-2 detector).

    Raises
    ------
    ValueError
        If the windows hold no ventricular or no other window.
    """
    xs, ys = [], []
    for ws in windows:
        pos = ws.vent_frac >= POS_MIN_FRAC
        keep = pos | (ws.vent_frac == 0.0)
        xs.append(ws.features[keep])
        ys.append(pos[keep])
    x, y = np.concatenate(xs), np.concatenate(ys)
    n_pos = int(y.sum())
    if n_pos in (0, y.size):
        msg = "tuning needs ventricular and other windows"
        raise ValueError(msg)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    weight = np.where(y, 0.5 / n_pos, 0.5 / (y.size - n_pos)) * y.size
    coef, intercept = fit_logistic((x - mean) / scale, y, weight)
    params = replace(
        base,
        feature_mean=tuple(float(v) for v in mean),
        feature_scale=tuple(float(v) for v in scale),
        coef=tuple(float(v) for v in coef),
        intercept=intercept,
        n_off=N_OFF,
    )
    # 3a. threshold and k-of-n without the noise gate (the version-1 procedure)
    probs = [window_probability(ws, params) for ws in windows]
    best = (math.inf, params)
    for thr in THRESHOLD_GRID:
        for k_on, n_on in K_OF_N_GRID:
            p = replace(params, threshold=thr, k_on=k_on, n_on=n_on)
            c = cost([_replay(ws, pr, p) for ws, pr in zip(windows, probs, strict=True)])
            if c < best[0]:
                best = (c, p)
    # 3b. then the gate, votes only taken away: the highest gate of the lowest cost (none on
    # a tie). Tuning gate and threshold jointly lowered the threshold to 0.5 and multiplied
    # the false decisions on held-out noise (nstdb em, svdb); see reports/rhythm.md.
    for gate in sorted(gates, reverse=True):
        p = replace(best[1], max_mean_freq_hz=gate)
        c = cost([_replay(ws, window_probability(ws, p), p) for ws in windows])
        if c < best[0]:
            best = (c, p)
    logger.info(
        "VT tuned: threshold %.3f, %d of %d, mean-frequency gate %g Hz, cost %.1f",
        best[1].threshold,
        best[1].k_on,
        best[1].n_on,
        best[1].max_mean_freq_hz,
        best[0],
    )
    return replace(best[1], max_vf_leak=leak_gate)


def nstdb_folds(
    windows: Sequence[VtWindows],
    noise: Sequence[VtWindows],
    base: VtParams,
    nstdb_names: Sequence[str],
) -> dict[str, VtParams]:
    """Parameters for each nstdb record, tuned without the records it is built from.

    nstdb ``118e*``/``119e*`` and ``em`` are scored by parameters tuned without ``em`` and
    without mitdb 118 and 119; ``bw`` and ``ma`` without themselves (:data:`NOISE_HELD_OUT`).
    """
    out: dict[str, VtParams] = {}
    cache: dict[str, VtParams] = {}
    for name in nstdb_names:
        src = name if name in NOISE_RECORDS else "em"
        if src not in cache:
            drop = set(NOISE_HELD_OUT[src])
            train = [w for w in windows if not (w.record.db == "mitdb" and w.record.name in drop)]
            train += [w for w in noise if w.record.name not in drop]
            cache[src] = vt_tune(train, base)
        out[f"nstdb/{name}"] = cache[src]
    return out


def vt_records(data_dir: Path) -> list[tuple[str, str]]:
    """``(db, name)`` of vfdb (the records at hand, :func:`vfdb_records`) and every mitdb record."""
    vf = vfdb_records(data_dir)
    mit = (data_dir / "mitdb" / "RECORDS").read_text().split()
    return [("vfdb", n) for n in vf] + [("mitdb", n) for n in mit]


def cross_validate(
    windows: Sequence[VtWindows],
    base: VtParams,
    gates: Sequence[float] = MEAN_FREQ_GATE_GRID_HZ,
    noise: Sequence[VtWindows] = (),
    leak_gate: float = MAX_VF_LEAK,
) -> tuple[list[VtScore], dict[str, VtParams]]:
    """Leave-one-record-out: each record scored by parameters tuned without it.

    ``noise`` (the nstdb noise records' windows) is added to every fold's training set and
    never scored here. ``leak_gate``: as :func:`vt_tune`'s.
    """
    scores: list[VtScore] = []
    fold: dict[str, VtParams] = {}
    for i, ws in enumerate(windows):
        train = [w for j, w in enumerate(windows) if j != i] + list(noise)
        params = vt_tune(train, base, gates, leak_gate)
        fold[ws.record.key] = params
        scores.append(_replay(ws, window_probability(ws, params), params))
        logger.info("CV %s: %s", ws.record.key, scores[-1])
    return scores, fold


def leak_gate_study(
    data_dir: Path, base: VtParams, grid: Sequence[float] = VF_LEAK_GATE_GRID
) -> tuple[float, list[dict[str, object]]]:
    """Choose the VF-filter-leakage gate (``max_vf_leak``) out of fold; return it and a table.

    Procedure (session 21, written down before it was run): every tuning record (vfdb
    418-428, the 48 mitdb records) is replayed with the parameters tuned without it
    (:func:`cross_validate` without a leakage gate) and the gate applied on top; nstdb's
    noise records (``bw``, ``em``, ``ma``: no ECG, every decision false) with the
    parameters tuned on all tuning records. The gate with the lowest :func:`cost` of the
    tuning records plus the noise records' false decisions is chosen (on a tie the higher
    gate, which takes fewer votes away). The table adds, for information, the false
    decisions on nstdb's 12 test records (mitdb 118 / 119 plus ``em``: not independent of the
    choice) and on the svdb records at hand (held out; none when svdb is absent).

    Returns
    -------
    gate, rows
        The chosen gate and one row per candidate: VT / VF episodes decided within
        ``DEADLINE_S``, false decisions, costs.
    """
    tune = [vt_windows(data_dir, db, name, base) for db, name in vt_records(data_dir)]
    noise = [vt_windows(data_dir, "nstdb", name, base) for name in NOISE_RECORDS]
    nstdb = [
        vt_windows(data_dir, "nstdb", f"{r}e{snr}", base)
        for snr in ("24", "18", "12", "06", "00", "_6")
        for r in (118, 119)
    ]
    from tools.beats.dataset import svdb_records

    try:  # the records at hand only: a full download's other half stays unread
        svdb = [vt_windows(data_dir, "svdb", name, base) for name in svdb_records(data_dir)]
    except FileNotFoundError:
        svdb = []
    _scores, fold = cross_validate(tune, base, leak_gate=math.inf)
    on_all = vt_tune(tune, base, leak_gate=math.inf)
    rows: list[dict[str, object]] = []
    best: tuple[float, float] | None = None
    for gate in sorted(grid, reverse=True):

        def replay(ws: VtWindows, params: VtParams, gate: float = gate) -> VtScore:
            p = replace(params, max_vf_leak=gate)
            return _replay(ws, window_probability(ws, p), p)

        cv = [replay(ws, fold[ws.record.key]) for ws in tune]
        noise_false = [replay(ws, on_all).false_decisions for ws in noise]
        total = cost(cv) + sum(noise_false)
        s = summary(cv)
        rows.append(
            {
                "max_vf_leak": None if math.isinf(gate) else gate,
                "cv": s,
                "cv_cost": cost(cv),
                "noise_false": dict(zip(NOISE_RECORDS, noise_false, strict=True)),
                "total_cost": total,
                "nstdb_false": sum(replay(ws, on_all).false_decisions for ws in nstdb),
                "svdb_false": sum(replay(ws, on_all).false_decisions for ws in svdb),
            }
        )
        if best is None or total < best[0]:
            best = (total, gate)
    assert best is not None  # noqa: S101  (the grid is never empty)
    return best[1], rows


def summary(scores: Sequence[VtScore]) -> dict[str, object]:
    """Episode sensitivity within the deadline, delays and false decisions per hour."""
    out: dict[str, object] = {}
    for kind in ("VF", "VT"):
        eps = [e for s in scores for e in s.episodes if e[0] == kind]
        ok = [e[3] for e in eps if e[3] is not None and e[3] <= DEADLINE_S]
        out[kind] = {
            "episodes": len(eps),
            "within_10_s": len(ok),
            "delay_median_s": float(np.median(ok)) if ok else None,
            "delay_max_s": max(ok) if ok else None,
        }
    hours = sum(s.hours for s in scores)
    false_n = sum(s.false_decisions for s in scores)
    out["false"] = {"n": false_n, "hours": round(hours, 2), "per_hour": round(false_n / hours, 3)}
    return out


def params_json(p: VtParams) -> dict[str, object]:
    """Parameters as a JSON-able dict (an infinite noise gate, i.e. none, as null)."""
    d = dataclasses.asdict(p)
    for gate in ("max_mean_freq_hz", "max_vf_leak"):
        if not math.isfinite(d[gate]):
            d[gate] = None
    return d


def params_from_json(d: dict[str, object]) -> VtParams:
    """Inverse of :func:`params_json` (lists back to tuples, null gate back to ``math.inf``)."""
    fields: dict[str, object] = {f: tuple(v) if isinstance(v, list) else v for f, v in d.items()}
    for gate in ("max_mean_freq_hz", "max_vf_leak"):
        if fields.get(gate, 0.0) is None:
            fields[gate] = math.inf
    return VtParams(**fields)  # type: ignore[arg-type]


def write_card(path: Path, params: VtParams, cv: dict[str, object], latency_ms: float) -> None:
    """Write the card of the shipped VT parameters (no model file: a logistic model)."""
    import json

    from agent.rhythm.ventricular import (
        FLUTTER_MAX_KURTOSIS,
        FLUTTER_MAX_SUBHARMONIC,
        FLUTTER_MIN_ACF_PEAK,
        FLUTTER_MIN_PEAK_HZ,
        FLUTTER_VOTES,
        VT_DETECTOR_NAME,
        VT_DETECTOR_VERSION,
        VT_FEATURE_NAMES,
    )

    card = {
        "name": VT_DETECTOR_NAME,
        "version": f"{VT_DETECTOR_NAME}-{VT_DETECTOR_VERSION}",
        "task": "P(ventricular tachyarrhythmia: VT, VF or VFL) of a 4 s ECG window, every 1 s",
        "kind": "logistic regression over published window features; no model file",
        "code": "agent/rhythm/ventricular.py (VT_PARAMS_TUNED must equal params below)",
        "size_bytes": 8 * (3 * len(VT_FEATURE_NAMES) + 1),
        "inputs": list(VT_FEATURE_NAMES),
        "fs_hz": "any 100-1000 Hz stream, resampled to 125 Hz",
        "params": params_json(params),
        "flutter_votes": {
            "rule": "a window also votes when kurtosis < max_kurtosis, peak_hz >= min_peak_hz,"
            " the subharmonic ratio (the larger amplitude at a half or a third of the peak"
            " frequency over the peak's,"
            " agent.rhythm.ventricular.subharmonic_ratio) < max_subharmonic and acf_peak >="
            " min_acf_peak (whatever the logistic model and its noise gates say); `votes` such"
            " windows in a row turn the VT state on, as many without one turn that path off",
            "max_kurtosis": FLUTTER_MAX_KURTOSIS,
            "min_peak_hz": FLUTTER_MIN_PEAK_HZ,
            "max_subharmonic": FLUTTER_MAX_SUBHARMONIC,
            "min_acf_peak": FLUTTER_MIN_ACF_PEAK,
            "votes": FLUTTER_VOTES,
            "chosen": "fixed, not tuned by vt-tune: from a small grid on window counts of vfdb"
            " + mitdb (vfdb 421 included, so its gain is in sample) and nstdb's noise records;"
            " docs/vf_detector.md, session 35; max_subharmonic from 0.3 / 0.35 / 0.4 / 0.5 on"
            " window counts of vfdb's ventricular episodes and 11 CinC 2017 strips, the third"
            " added on 4 of those strips, session 36",
        },
        "training": {
            "data": "vfdb 418-428 (all present) + all 48 mitdb records, channel 0",
            "labels": "window >= 75 % annotated VT/VF/VFL vs 0 %; others left out",
            "protocol": "leave-one-record-out (records are patients); threshold, k-of-n and"
            " the mean-frequency noise gate chosen by replaying the detector (cost: 10 per VT/VF"
            " episode >= 4 s not decided within 10 s, 1 per false decision); the VF-leakage"
            " gate max_vf_leak fixed by python -m tools.vf vt-leak-gate (the same cost out of"
            " fold plus the decisions on nstdb's noise records bw, em, ma); svdb never used",
            "command": "./run.sh train vt  (python -m tools.vf vt-tune)",
        },
        "metrics_cross_validated": cv,
        "latency_ms_per_window_x86_core": round(latency_ms, 3),
    }
    path.write_text(json.dumps(card, indent=1, default=float) + "\n", encoding="utf-8")


def window_latency_ms(data_dir: Path, n: int = 200) -> float:
    """CPU time of one window's features + probability, ms (vfdb 418 at 250 Hz)."""
    import time

    from agent.rhythm.ventricular import VT_PARAMS_TUNED, vt_window_probability

    rec = load_record(data_dir, "vfdb", "418")
    need = round(5.0 * rec.fs_hz)
    hop = round(rec.fs_hz)
    t0 = time.process_time()
    for i in range(n):
        e = need + i * hop
        vt_window_probability(
            vt_window_features(rec.ecg_uv[e - need : e], rec.fs_hz, 4.0), VT_PARAMS_TUNED
        )
    return (time.process_time() - t0) / n * 1000.0
