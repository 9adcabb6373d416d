"""RR series with per-beat AF labels from PhysioNet records, and model windows from them.

Sources:

- afdb (MIT-BIH Atrial Fibrillation Database): beat times from the ``.qrs`` files (automatic
  detector, unaudited, as every afdb study uses them), rhythm from the ``.atr`` ``aux_note``
  (``(AFIB``, ``(AFL``, ``(J``, ``(N``). The ``.dat`` signals are not distributed here; records
  00735 and 03665 have no signal at all and are excluded (:data:`AFDB_EXCLUDED`), leaving the
  23 records every afdb study uses.
- mitdb: beat times from the reference ``.atr`` beat labels (or the agent's own R-peaks, see
  :mod:`tools.af.evaluate`), rhythm from its ``+`` annotations.

Labels: AF **and atrial flutter** are the positive class (``(AFIB``, ``(AFL``), everything else
negative. This is the usual afdb convention for RR-based detectors (Petrėnas 2015 among them):
flutter with variable conduction is as irregular as AF and is treated the same clinically
(anticoagulation, rate control); flutter with fixed conduction is regular and undetectable
from RR. AFL is 0.2 % of afdb beats. Beats before a record's first rhythm annotation have no
label (-1) and are neither trained on nor scored.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np
import wfdb
from numpy.typing import NDArray

from agent.rhythm.af_features import (
    AF_CENTER_IDX,
    AF_N_FEATURES,
    AF_SEQ_LEN,
    RR_MAX_MS,
    RR_MIN_MS,
    af_window_features,
    rr_clean,
)
from tools.ec57 import BEAT_SYMBOLS

AF_RHYTHMS: Final[frozenset[str]] = frozenset(["(AFIB", "(AFL"])
"""Rhythm ``aux_note`` values labelled AF (see the module docstring)."""

AFDB_EXCLUDED: Final[frozenset[str]] = frozenset(["00735", "03665"])
"""afdb records without a signal (header length 0): not in any afdb study's 23 records."""

MITDB_AF_RECORDS: Final[tuple[str, ...]] = ("201", "202", "203", "210", "219", "221", "222")
"""mitdb records that contain AF or AFL episodes (a check set; never trained or tuned on)."""


@dataclass(frozen=True, slots=True)
class RrRecord:
    """One record's RR series and labels.

    Attributes
    ----------
    name : str
        Record name.
    rr_ms : NDArray[np.float64]
        RR intervals, ms, shape ``(n_rr,)``; interval i ends at beat i+1 of the record.
    t_s : NDArray[np.float64]
        Time of the R-peak ending each interval, s from the record start, shape ``(n_rr,)``.
    label : NDArray[np.int8]
        1 AF/AFL, 0 other rhythm, -1 unlabelled, at the R-peak ending each interval.
    afib_only : NDArray[np.bool_]
        True where the rhythm is ``(AFIB`` (not AFL), for AF-only sensitivity.
    duration_s : float
        Record duration, s.
    af_intervals : list[tuple[float, float]]
        Annotated AF/AFL episodes ``(start_s, end_s)``.
    """

    name: str
    rr_ms: NDArray[np.float64]
    t_s: NDArray[np.float64]
    label: NDArray[np.int8]
    afib_only: NDArray[np.bool_]
    duration_s: float
    af_intervals: list[tuple[float, float]]


def cinc_labels(reference_csv: Path) -> dict[str, str]:
    """Return recording name -> label (``N``, ``A``, ``O``, ``~``) of a CinC 2017 REFERENCE.csv.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    """
    with reference_csv.open(encoding="utf-8", newline="") as fh:
        return {r[0]: r[1] for r in csv.reader(fh) if r and r[0] != "data_source"}


CINC_AT_HAND: Final = ("A05001", "A08528")
"""First and last of the CinC 2017 training recordings the project trains and tunes on
(``../shared/data/README.md``). ``A00001``-``A05000`` are an independent test set: a full
PhysioNet download holds them too, and nothing here may train or tune on them."""


def cinc_at_hand(name: str) -> bool:
    """Whether a CinC 2017 recording name lies in :data:`CINC_AT_HAND` (names sort by number)."""
    first, last = CINC_AT_HAND
    return first <= name <= last


def cinc_training_labels(reference_csv: Path) -> dict[str, str]:
    """:func:`cinc_labels` restricted to the recordings of :data:`CINC_AT_HAND`.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    """
    return {n: lab for n, lab in cinc_labels(reference_csv).items() if cinc_at_hand(n)}


def afdb_records(afdb_dir: Path) -> list[str]:
    """Return the 23 usable afdb record names, sorted.

    Raises
    ------
    FileNotFoundError
        If the folder holds no ``.hea`` files.
    """
    names = sorted(p.stem for p in afdb_dir.glob("*.hea") if p.stem not in AFDB_EXCLUDED)
    if not names:
        msg = f"no afdb records (.hea) under {afdb_dir}"
        raise FileNotFoundError(msg)
    return names


def _rhythm_at(
    beat_samples: NDArray[np.int64], rhythm_samples: NDArray[np.int64], rhythm_notes: list[str]
) -> tuple[NDArray[np.int8], NDArray[np.bool_]]:
    label = np.full(beat_samples.shape, -1, dtype=np.int8)
    afib = np.zeros(beat_samples.shape, dtype=bool)
    if rhythm_samples.size == 0:
        return label, afib
    idx = np.searchsorted(rhythm_samples, beat_samples, side="right") - 1
    known = idx >= 0
    notes = np.array(rhythm_notes, dtype=object)
    current = notes[np.clip(idx, 0, None)]
    is_af = np.array([n in AF_RHYTHMS for n in current], dtype=bool)
    label[known] = is_af[known].astype(np.int8)
    afib[known] = np.array([n == "(AFIB" for n in current], dtype=bool)[known]
    return label, afib


def _af_intervals(
    rhythm_samples: NDArray[np.int64], notes: list[str], fs_hz: float, duration_s: float
) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    start: float | None = None
    for s, n in zip(rhythm_samples.tolist(), notes, strict=True):
        t = s / fs_hz
        af = n in AF_RHYTHMS
        if af and start is None:
            start = t
        elif not af and start is not None:
            out.append((start, t))
            start = None
    if start is not None:
        out.append((start, duration_s))
    return out


def load_rr_record(
    record_path: Path,
    *,
    beats: Literal["qrs", "atr"] = "qrs",
    beat_samples: NDArray[np.int64] | None = None,
) -> RrRecord:
    """Load a record's RR intervals and per-interval AF labels.

    Parameters
    ----------
    record_path
        WFDB record path without extension.
    beats
        ``qrs`` (afdb's beat file) or ``atr`` (the reference beat labels, mitdb).
    beat_samples
        R-peak sample indices at the record's rate, shape ``(n_beats,)``, to use instead
        (the agent's own detections); ``beats`` is then ignored.

    Raises
    ------
    FileNotFoundError
        If the header or annotation files are missing.
    """
    path = str(record_path)
    header = wfdb.rdheader(path)
    fs_hz = float(header.fs)
    duration_s = float(header.sig_len or 0) / fs_hz
    atr = wfdb.rdann(path, "atr")
    symbols = list(atr.symbol)
    notes = [str(a).rstrip("\x00") for a in (atr.aux_note or [""] * len(symbols))]
    samples = np.asarray(atr.sample, dtype=np.int64)
    rmask = np.array([s == "+" and n.startswith("(") for s, n in zip(symbols, notes, strict=True)])
    r_samples = samples[rmask] if rmask.size else samples[:0]
    r_notes = [n for n, m in zip(notes, rmask.tolist(), strict=True) if m]
    if beat_samples is not None:
        bs = np.sort(np.asarray(beat_samples, dtype=np.int64))
    elif beats == "qrs":
        bs = np.asarray(wfdb.rdann(path, "qrs").sample, dtype=np.int64)
    else:
        bmask = np.array([s in BEAT_SYMBOLS for s in symbols], dtype=bool)
        bs = samples[bmask]
    if duration_s <= 0.0 and bs.size:
        duration_s = float(bs[-1]) / fs_hz
    label, afib = _rhythm_at(bs[1:], r_samples, r_notes)
    return RrRecord(
        name=Path(path).name,
        rr_ms=np.diff(bs).astype(np.float64) * 1000.0 / fs_hz,
        t_s=bs[1:].astype(np.float64) / fs_hz,
        label=label,
        afib_only=afib,
        duration_s=duration_s,
        af_intervals=_af_intervals(r_samples, r_notes, fs_hz, duration_s),
    )


def record_rr_windows(
    rec: RrRecord, *, stride: int = 1
) -> tuple[NDArray[np.float64], NDArray[np.int8], NDArray[np.int64]]:
    """Windows of cleaned RR intervals of one record, cleaned exactly as the agent cleans them.

    Parameters
    ----------
    rec
        The record.
    stride
        Keep every ``stride``-th window of each gap-free segment, starting with the first
        full one (with ``stride = AF_HOP_BEATS`` these are exactly the agent's windows).

    Returns
    -------
    rr : NDArray[np.float64]
        Cleaned RR intervals, ms, shape ``(n_windows, AF_SEQ_LEN)``.
    y : NDArray[np.int8]
        Label of each window's centre interval (1 AF, 0 not, -1 unlabelled), ``(n_windows,)``.
    src : NDArray[np.int64]
        Index in ``rec.rr_ms`` of each window's centre interval, ``(n_windows,)``.
    """
    wins: list[NDArray[np.float64]] = []
    ys: list[NDArray[np.int8]] = []
    srcs: list[NDArray[np.int64]] = []
    for rr, _t, idx in rr_clean(rec.rr_ms, rec.t_s):
        if rr.size < AF_SEQ_LEN:
            continue
        wins.append(np.lib.stride_tricks.sliding_window_view(rr, AF_SEQ_LEN)[::stride])
        centre = idx[AF_CENTER_IDX:][: len(idx) - AF_SEQ_LEN + 1][::stride]
        ys.append(rec.label[centre])
        srcs.append(centre)
    if not wins:
        return np.zeros((0, AF_SEQ_LEN)), np.zeros(0, np.int8), np.zeros(0, np.int64)
    return np.concatenate(wins), np.concatenate(ys), np.concatenate(srcs)


def record_windows(
    rec: RrRecord, *, stride: int = 1
) -> tuple[NDArray[np.float32], NDArray[np.int8], NDArray[np.int64]]:
    """Model input windows of one record (:func:`record_rr_windows` → features).

    Returns
    -------
    x : NDArray[np.float32]
        Shape ``(n_windows, AF_SEQ_LEN, AF_N_FEATURES)``.
    y, src
        As in :func:`record_rr_windows`.
    """
    rr, y, src = record_rr_windows(rec, stride=stride)
    if len(rr) == 0:
        return np.zeros((0, AF_SEQ_LEN, AF_N_FEATURES), np.float32), y, src
    return af_window_features(rr), y, src


ECTOPIC_COUPLING: Final = (0.5, 0.8)
"""Range of the premature interval as a fraction of the underlying RR (PVCs and PACs
typically arrive at 50-80 % of the sinus cycle)."""


def ectopy_augment(
    rr_windows: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.float64]:
    """Insert premature beats into non-AF RR windows (training augmentation, label unchanged).

    afdb's non-AF stretches hold little ectopy, while the wards (and mitdb) are full of it;
    irregular RR from isolated premature beats, bigeminy and trigeminy is the classic false
    positive of RR-based AF detectors (Petrėnas 2015, section 4). Each window gets one pattern:
    isolated premature beats at a random rate of 3-25 % (60 % of windows), bigeminy (20 %) or
    trigeminy (20 %). A premature beat shortens its interval to a coupling of
    :data:`ECTOPIC_COUPLING` and lengthens the next: fully compensatory (PVC-like, the two
    sum to two cycles) or partly (PAC-like, reset of the sinus node).

    Parameters
    ----------
    rr_windows
        Cleaned non-AF RR windows, ms, shape ``(n_windows, AF_SEQ_LEN)``.
    rng
        Random generator (seeded by the caller).

    Returns
    -------
    NDArray[np.float64]
        Augmented copies, same shape, intervals clipped to the plausible range.
    """
    out = np.array(rr_windows, dtype=np.float64, copy=True)
    n, length = out.shape
    pattern: list[int] = np.asarray(rng.choice(3, size=n, p=[0.6, 0.2, 0.2])).tolist()
    for w in range(n):
        if pattern[w] == 0:
            hits = rng.random(length - 1) < rng.uniform(0.03, 0.25)
            pos = [i for i in range(length - 1) if hits[i]]
        else:
            period = 2 if pattern[w] == 1 else 3
            pos = list(range(int(rng.integers(period)), length - 1, period))
        last = -2
        for i in pos:
            if i == last + 1:
                continue
            c = rng.uniform(*ECTOPIC_COUPLING)
            saved = out[w, i] * (1.0 - c)
            comp = 1.0 if rng.random() < 0.5 else rng.uniform(0.0, 1.0)
            out[w, i] *= c
            out[w, i + 1] += saved * comp
            last = i
    return np.clip(out, RR_MIN_MS, RR_MAX_MS)


SINUS_ARRHYTHMIA_AMPLITUDE: Final = (0.03, 0.20)
"""Range of the respiratory modulation of RR, as a fraction of the RR interval (one-sided
amplitude). Resting respiratory sinus arrhythmia in healthy adults spans tens to a few hundred
ms of RR (Task Force of the ESC and NASPE 1996, HF power; Hirsch & Bishop 1981: RSA amplitude
grows with tidal volume and falls with breathing rate); slow deep breathing and sleep in the
young reach the top of this range."""

SINUS_ARRHYTHMIA_PERIOD_BEATS: Final = (2.5, 12.0)
"""Range of one breath in beats: breathing at 6-25 /min against heart rates of 50-110 bpm."""


def sinus_arrhythmia_augment(
    rr_windows: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.float64]:
    """Modulate non-AF RR windows with respiratory sinus arrhythmia (augmentation, label 0).

    afdb's non-AF stretches come from older patients with little heart-rate variability; a
    healthy wearer at rest or asleep has respiratory sinus arrhythmia: RR lengthens and
    shortens smoothly with every breath. The RR model trained on afdb alone called a smooth
    ±10 % modulation with a 5-beat period AF with P 0.98 (``python -m tools.af.sinus_check``;
    ``tests/agent/rhythm/test_af_detector.py::test_strong_sinus_arrhythmia_is_not_af``),
    which is how a healthy wearer gets false AF alarms. RSA is periodic and smooth; AF is
    irregularly irregular (no periodicity, successive differences uncorrelated), so the model
    can learn the difference once it sees RSA.

    Each window is multiplied by ``1 + a(t) sin(phase(t))``: the amplitude ``a`` drawn from
    :data:`SINUS_ARRHYTHMIA_AMPLITUDE`, the breath length from
    :data:`SINUS_ARRHYTHMIA_PERIOD_BEATS`, both varying from breath to breath (±25 % amplitude,
    ±15 % period, as breathing does), plus 0-1.5 % beat-to-beat jitter.

    Parameters
    ----------
    rr_windows
        Cleaned non-AF RR windows, ms, shape ``(n_windows, AF_SEQ_LEN)``.
    rng
        Random generator (seeded by the caller).

    Returns
    -------
    NDArray[np.float64]
        Modulated copies, same shape, clipped to [``RR_MIN_MS``, ``RR_MAX_MS``].
    """
    out = np.array(rr_windows, dtype=np.float64, copy=True)
    n, length = out.shape
    lo, hi = SINUS_ARRHYTHMIA_PERIOD_BEATS
    for w in range(n):
        amp = rng.uniform(*SINUS_ARRHYTHMIA_AMPLITUDE)
        period = np.exp(rng.uniform(np.log(lo), np.log(hi)))
        step = 2.0 * np.pi / (period * rng.uniform(0.85, 1.15, size=length))
        phase = rng.uniform(0.0, 2.0 * np.pi) + np.cumsum(step)
        breath = phase / (2.0 * np.pi)  # breath count: the amplitude drifts from breath to breath
        a = amp * (1.0 + 0.25 * np.sin(2.0 * np.pi * breath / rng.uniform(3.0, 8.0)))
        jitter = rng.normal(0.0, rng.uniform(0.0, 0.015), size=length)
        out[w] *= 1.0 + a * np.sin(phase) + jitter
    return np.clip(out, RR_MIN_MS, RR_MAX_MS)
