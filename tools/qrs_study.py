"""Measure the streaming R-peak detector on PhysioNet records (EC57 gross Se / +P, CPU time).

Usage::

    .venv/bin/python -m tools.qrs_study --set must
    .venv/bin/python -m tools.qrs_study --set all --fs 130
    .venv/bin/python -m tools.qrs_study --db nstdb 118e06 119e06 118e12 119e12

    .venv/bin/python -m tools.qrs_study --set ds1 --const THRESHOLD_COEF=0.25

Records are read from ``$BEDSIDE_DATA_DIR`` (default ``../shared/data``), channel 0, whole
records, converted from mV to µV and pushed in ``--chunk-s`` chunks. With ``--fs`` the signal
is resampled with ``scipy.signal.resample_poly`` and the detections scaled back to the
record's rate before scoring. ``--const NAME=VALUE`` changes one detector constant for the run
(any field of :class:`agent.dsp.rpeaks.RPeakTuning`, named as the module constant): the
detector is built with that tuning, and the module is never patched.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import numpy as np
import wfdb
from numpy.typing import NDArray
from scipy import signal

from agent.dsp.rpeaks import DEFAULT_TUNING, DEFAULT_WINDOW_S, RPeakTuning, StreamingRPeakDetector
from tools.ec57 import MatchResult, gross, load_reference_beats, score_record

DS1: Final = tuple(
    str(r)
    for r in (
        101,
        106,
        108,
        109,
        112,
        114,
        115,
        116,
        118,
        119,
        122,
        124,
        201,
        203,
        205,
        207,
        208,
        209,
        215,
        220,
        223,
        230,
    )
)
"""de Chazal et al. 2004 training half of mitdb (doi:10.1109/TBME.2004.827359)."""
DS2: Final = tuple(
    str(r)
    for r in (
        100,
        103,
        105,
        111,
        113,
        117,
        121,
        123,
        200,
        202,
        210,
        212,
        213,
        214,
        219,
        221,
        222,
        228,
        231,
        232,
        233,
        234,
    )
)
"""de Chazal et al. 2004 test half of mitdb."""
MUST: Final = [str(r) for r in range(100, 110)] + [str(r) for r in range(200, 210) if r != 204]
"""The project's acceptance set: 100-109 and 200-209 (204 and 206 do not exist)."""
SETS: Final = {
    "ds1": list(DS1),
    "ds2": list(DS2),
    "must": [r for r in MUST if r != "206"],
    "all": sorted((*DS1, *DS2, "102", "104", "107", "217")),
}


def data_dir() -> Path:
    """Return ``$BEDSIDE_DATA_DIR`` or ``../shared/data`` beside the checkout."""
    env = os.environ.get("BEDSIDE_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass(frozen=True, slots=True)
class Job:
    """One record to run, with everything the worker process needs (picklable).

    Attributes
    ----------
    db, record : str
        Database folder under the data directory and record name.
    fs_hz : float | None
        Resample to this rate, Hz; None keeps the record's.
    chunk_s : float
        Push size, s.
    window_s, hop_s : float
        Window and hop of the detector under study, s.
    tuning : RPeakTuning
        The detector's constants (default: the shipped ones).
    nk_method : str | None
        When set, run the windowed NeuroKit2 baseline with that method instead.
    """

    db: str
    record: str
    fs_hz: float | None
    chunk_s: float
    window_s: float = DEFAULT_WINDOW_S
    hop_s: float = 2.0
    tuning: RPeakTuning = DEFAULT_TUNING
    nk_method: str | None = None


def tuning_from_args(consts: Sequence[str]) -> RPeakTuning:
    """Build the tuning from ``NAME=VALUE`` items (constant names of :mod:`agent.dsp.rpeaks`).

    Raises
    ------
    ValueError
        If an item has no ``=``, names no tuning constant, or its value is not a Python literal.
    """
    known = {f.name for f in dataclasses.fields(RPeakTuning)}
    changes: dict[str, Any] = {}  # literal_eval values, checked by the detector's use
    for item in consts:
        name, sep, value = item.partition("=")
        field = name.strip().lower()
        if not sep or field not in known:
            msg = f"no tuning constant {name!r} (one of: {', '.join(sorted(known)).upper()})"
            raise ValueError(msg)
        changes[field] = ast.literal_eval(value.strip())
    return dataclasses.replace(DEFAULT_TUNING, **changes)


def detect(
    x_uv: NDArray[np.float32],
    fs_hz: float,
    chunk_s: float,
    *,
    window_s: float = DEFAULT_WINDOW_S,
    hop_s: float = 2.0,
    tuning: RPeakTuning = DEFAULT_TUNING,
) -> NDArray[np.int64]:
    """Run the streaming detector over a whole signal; return R-peak indices at ``fs_hz``."""
    det = StreamingRPeakDetector(fs_hz, 60, window_s=window_s, hop_s=hop_s, tuning=tuning)
    chunk_n = max(1, round(chunk_s * fs_hz))
    out: list[int] = []
    for i in range(0, x_uv.size, chunk_n):
        out.extend(p.r_peak_idx for p in det.push(x_uv[i : i + chunk_n]).r_peaks)
    out.extend(p.r_peak_idx for p in det.flush().r_peaks)
    return np.asarray(out, dtype=np.int64)


def detect_nk_windowed(x_uv: NDArray[np.float32], fs_hz: float, method: str) -> NDArray[np.int64]:
    """Baseline: NeuroKit2 ``ecg_clean`` + ``ecg_findpeaks(method)`` on the same windows.

    Each 10 s window (hop 2 s) keeps the peaks in its decision region ``[end - 2.5 s,
    end - 0.5 s)``; a peak within 200 ms of the previous kept one is a duplicate.
    """
    import neurokit2 as nk

    win, hop, look = round(10 * fs_hz), round(2 * fs_hz), round(0.5 * fs_hz)
    refr = round(0.2 * fs_hz)
    out: list[int] = []
    decided = 0
    ends = [*range(hop, x_uv.size, hop), x_uv.size]
    for end in ends:
        start = max(0, end - win)
        region_end = end if end == x_uv.size else end - look
        clean = nk.ecg_clean(x_uv[start:end], sampling_rate=fs_hz, method="neurokit", powerline=60)
        found = nk.ecg_findpeaks(clean, sampling_rate=fs_hz, method=method)["ECG_R_Peaks"]
        for p in np.asarray(found, dtype=np.int64) + start:
            if decided - refr // 2 <= p < region_end and (not out or p >= out[-1] + refr):
                out.append(int(p))
        decided = region_end
    return np.asarray(out, dtype=np.int64)


def run_record(job: Job) -> tuple[str, MatchResult, float]:
    """Detect and score one record; return its name, match result and detector CPU s."""
    name, fs_target = job.record, job.fs_hz
    path = data_dir() / job.db / name
    rec = wfdb.rdrecord(str(path), channels=[0])
    x = (rec.p_signal[:, 0] * 1000.0).astype(np.float32)
    fs = float(rec.fs)
    if fs_target is not None and fs_target != fs:
        ratio = Fraction(fs_target / fs).limit_denominator(1000)
        x = signal.resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)
        fs = fs_target
    t0 = time.process_time()
    if job.nk_method is None:
        peaks = detect(
            x, fs, job.chunk_s, window_s=job.window_s, hop_s=job.hop_s, tuning=job.tuning
        )
    else:
        peaks = detect_nk_windowed(x, fs, job.nk_method)
    cpu_s = time.process_time() - t0
    ref = load_reference_beats(path)
    return name, score_record(ref, peaks, test_fs_hz=fs), cpu_s


def main() -> None:
    """Parse arguments, run the records in parallel, print per-record and gross figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("records", nargs="*")
    parser.add_argument("--set", choices=sorted(SETS), default=None)
    parser.add_argument("--db", default="mitdb")
    parser.add_argument("--fs", type=float, default=None, help="resample to this rate, Hz")
    parser.add_argument("--chunk-s", type=float, default=60.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--const",
        action="append",
        default=[],
        help="change a detector constant (agent.dsp.rpeaks.RPeakTuning): NAME=VALUE",
    )
    parser.add_argument("--window-s", type=float, default=DEFAULT_WINDOW_S)
    parser.add_argument("--hop-s", type=float, default=2.0)
    parser.add_argument(
        "--nk-method", default=None, help="baseline: windowed NeuroKit2 ecg_findpeaks method"
    )
    ns = parser.parse_args()
    try:
        tuning = tuning_from_args(ns.const)
    except (ValueError, SyntaxError) as bad:
        parser.error(str(bad))
    records = list(ns.records) or SETS[ns.set or "must"]
    jobs = [
        Job(
            ns.db,
            r,
            ns.fs,
            ns.chunk_s,
            window_s=ns.window_s,
            hop_s=ns.hop_s,
            tuning=tuning,
            nk_method=ns.nk_method or None,
        )
        for r in records
    ]
    with ProcessPoolExecutor(ns.jobs) as pool:
        results = list(pool.map(run_record, jobs))
    print(f"{'rec':>7} {'TP':>6} {'FN':>5} {'FP':>5} {'Se%':>7} {'+P%':>7} {'cpu_s':>6}")
    for name, res, cpu in results:
        print(
            f"{name:>7} {res.tp:6d} {res.fn:5d} {res.fp:5d} {res.se_pct:7.2f} {res.ppv_pct:7.2f}"
            f" {cpu:6.2f}"
        )
    total = gross(r for _, r, _ in results)
    cpu_mean = float(np.mean([c for _, _, c in results]))
    err = total.timing_errors_ms
    print(
        f"{'gross':>7} {total.tp:6d} {total.fn:5d} {total.fp:5d} {total.se_pct:7.2f}"
        f" {total.ppv_pct:7.2f} {cpu_mean:6.2f}  timing median {np.median(err):.1f} ms,"
        f" |err| p95 {np.percentile(np.abs(err), 95):.1f} ms"
    )


if __name__ == "__main__":
    main()
