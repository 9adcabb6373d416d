"""Tuning of the waveform AF path (:mod:`agent.rhythm.af_wave`) on CinC 2017, patient-wise.

Each CinC 2017 recording is one patient (the challenge gives no patient ids; a recording is
the unit of the labels). Beats come from the agent's own streaming R-peak detector
(:class:`agent.dsp.rpeaks.StreamingRPeakDetector`, default settings, 50 Hz mains). Every
``AF_WAVE_HOP_BEATS`` beats a window of ``AF_WAVE_BEATS`` beats gets the features of
:func:`agent.rhythm.af_wave.af_wave_features`; its label is the recording's (``A`` = AF;
``N``, ``O`` and ``~`` = not AF: "other rhythm" and noise are exactly what must not be
called AF).

``wave_tune``: standardise, L2 logistic regression (both classes weighted equally), then
``p_on`` and ``k_on`` chosen on a grid to maximise the record-level F1 of AF (a recording is
called AF when ``k_on`` consecutive windows reach ``p_on``). Cross-validation: 5 folds by
recording (seeded); each recording scored by the fold model that never saw it.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal

import numpy as np
import wfdb
from numpy.typing import NDArray

from agent.dsp.rpeaks import StreamingRPeakDetector
from agent.rhythm.af_wave import (
    AF_WAVE_BEATS,
    AF_WAVE_HOP_BEATS,
    MARGIN_S,
    N_AF_WAVE_FEATURES,
    POST_S,
    PRE_S,
    AfWaveParams,
    af_wave_features,
    af_wave_probability,
)
from tools.vf.tune import fit_logistic

logger = logging.getLogger(__name__)

P_ON_GRID: Final = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)
K_ON_GRID: Final = (1, 2, 3, 4, 5)
N_FOLDS: Final = 5
SEED: Final = 2017
CACHE: Final = Path("out/af_wave_cache.npz")


@dataclass(frozen=True, slots=True)
class RecordWindows:
    """Windows of one recording: name, label (AF or not), features ``(n, 7)``."""

    name: str
    af: bool
    label: str
    features: NDArray[np.float64]
    window_af: NDArray[np.bool_] | None = None


def record_features(
    x_uv: NDArray[np.float64], fs_hz: float, powerline_hz: Literal[50, 60] = 50
) -> NDArray[np.float64]:
    """Window features of one recording, beats from the agent's R-peak detector."""
    return record_windows(x_uv, fs_hz, powerline_hz)[0]


def record_windows(
    x_uv: NDArray[np.float64], fs_hz: float, powerline_hz: Literal[50, 60] = 50
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Window features and each window's first / last R-peak index, shape ``(n, 2)``."""
    det = StreamingRPeakDetector(fs_hz, powerline_hz)
    peaks = [p.r_peak_idx for p in det.push(x_uv.astype(np.float32)).r_peaks]
    peaks += [p.r_peak_idx for p in det.flush().r_peaks]
    r = np.asarray(sorted(set(peaks)), dtype=np.int64)
    out = []
    spans = []
    pre = round((PRE_S + MARGIN_S) * fs_hz)
    post = round(POST_S * fs_hz) + 1
    for end in range(AF_WAVE_BEATS, r.size + 1, AF_WAVE_HOP_BEATS):
        w = r[end - AF_WAVE_BEATS : end]
        first = int(w[0]) - pre
        if first < 0 or int(w[-1]) + post > x_uv.size:
            continue
        out.append(af_wave_features(w, x_uv[first : int(w[-1]) + post], first, fs_hz))
        spans.append((int(w[0]), int(w[-1])))
    feats = np.asarray(out, dtype=np.float64).reshape(-1, N_AF_WAVE_FEATURES)
    return feats, np.asarray(spans, dtype=np.int64).reshape(-1, 2)


AF_CODES: Final = frozenset({"AFIB", "AFL"})
MITDB_CACHE: Final = Path("out/af_wave_mitdb.npz")


def load_mitdb(data_dir: Path) -> list[RecordWindows]:
    """Windows of every mitdb record (channel 0), labelled per window.

    A window is AF when at least half of its span is annotated ``(AFIB`` / ``(AFL``.
    ``RecordWindows.af`` is True for records with any AF; per-window labels are in
    ``window_af``.
    """
    names = (data_dir / "mitdb" / "RECORDS").read_text().split()
    if MITDB_CACHE.exists():
        z = np.load(MITDB_CACHE, allow_pickle=False)
        if list(z["names"]) == names:
            splits = np.cumsum(z["counts"])[:-1]
            parts = np.split(z["features"], splits)
            labs = np.split(z["labels"], splits)
            return [
                RecordWindows(n, bool(lab.any()), "mitdb", f, lab)
                for n, f, lab in zip(names, parts, labs, strict=True)
            ]
    out = []
    for name in names:
        path = data_dir / "mitdb" / name
        rec = wfdb.rdrecord(str(path), channels=[0])
        x = np.asarray(rec.p_signal[:, 0], dtype=np.float64) * 1000.0
        feats, spans = record_windows(x, float(rec.fs), 60)
        ann = wfdb.rdann(str(path), "atr")
        mask = np.zeros(x.size + 1, dtype=bool)
        cur, start = None, 0
        for smp, aux in zip(ann.sample, ann.aux_note, strict=True):
            note = str(aux).strip("\x00").strip()
            if note.startswith("("):
                if cur in AF_CODES:
                    mask[start:smp] = True
                cur, start = note[1:], int(smp)
        if cur in AF_CODES:
            mask[start:] = True
        csum = np.concatenate([[0], np.cumsum(mask)])
        frac = (csum[spans[:, 1]] - csum[spans[:, 0]]) / np.maximum(spans[:, 1] - spans[:, 0], 1)
        labels = frac >= 0.5
        out.append(RecordWindows(name, bool(labels.any()), "mitdb", feats, labels))
        logger.info("mitdb %s: %d windows, %d AF", name, labels.size, int(labels.sum()))
    np.savez_compressed(
        MITDB_CACHE,
        names=np.asarray(names),
        counts=np.asarray([r.features.shape[0] for r in out]),
        features=np.concatenate([r.features for r in out]),
        labels=np.concatenate([r.window_af for r in out]),
    )
    return out


def load_cinc(data_dir: Path) -> list[RecordWindows]:
    """Features of every CinC 2017 recording present (cached in ``CACHE``)."""
    folder = data_dir / "cinc2017"
    with (folder / "REFERENCE.csv").open(encoding="utf-8") as fh:
        rows = [(r[0], r[1]) for r in csv.reader(fh) if r and r[0] != "data_source"]
    rows = [(n, lab) for n, lab in rows if (folder / f"{n}.hea").exists()]
    if CACHE.exists():
        z = np.load(CACHE, allow_pickle=False)
        names = list(z["names"])
        if names == [n for n, _ in rows]:
            splits = np.cumsum(z["counts"])[:-1]
            feats = np.split(z["features"], splits)
            return [
                RecordWindows(n, lab == "A", lab, f)
                for (n, lab), f in zip(rows, feats, strict=True)
            ]
    out = []
    for i, (name, lab) in enumerate(rows):
        rec = wfdb.rdrecord(str(folder / name))
        x = np.asarray(rec.p_signal[:, 0], dtype=np.float64) * 1000.0  # mV -> µV
        out.append(RecordWindows(name, lab == "A", lab, record_features(x, float(rec.fs))))
        if i % 250 == 0:
            logger.info("cinc2017 %d/%d", i, len(rows))
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        CACHE,
        names=np.asarray([r.name for r in out]),
        counts=np.asarray([r.features.shape[0] for r in out]),
        features=np.concatenate([r.features for r in out]),
    )
    return out


def record_call(prob: NDArray[np.float64], p_on: float, k_on: int) -> bool:
    """Whether ``k_on`` consecutive windows reach ``p_on`` (the detector's confirmation)."""
    run = 0
    for p in prob:
        run = run + 1 if p >= p_on else 0
        if run >= k_on:
            return True
    return False


def f1(called: Sequence[bool], truth: Sequence[bool]) -> tuple[float, int, int, int]:
    """F1 of the AF class and (tp, fp, fn)."""
    tp = sum(c and t for c, t in zip(called, truth, strict=True))
    fp = sum(c and not t for c, t in zip(called, truth, strict=True))
    fn = sum(t and not c for c, t in zip(called, truth, strict=True))
    return (2 * tp / max(2 * tp + fp + fn, 1), tp, fp, fn)


MAX_FALSE_PER_H: Final = 0.1
"""``p_on`` / ``k_on`` must keep confirmed AF calls outside AF on the training mitdb records
at or below this many per hour (the issue's afib false-alarm target)."""


def _labels(r: RecordWindows) -> NDArray[np.bool_]:
    return r.window_af if r.window_af is not None else np.full(r.features.shape[0], r.af)


def false_calls(prob: NDArray[np.float64], truth: NDArray[np.bool_], p_on: float, k_on: int) -> int:
    """Count confirmed calls (``k_on`` windows in a row >= ``p_on``) on non-AF windows."""
    n, run, on = 0, 0, False
    for p, t in zip(prob, truth, strict=True):
        run = run + 1 if p >= p_on else 0
        if run >= k_on and not on:
            on = True
            n += int(not t)
        elif run == 0:
            on = False
    return n


def wave_tune(
    records: Sequence[RecordWindows], mitdb: Sequence[RecordWindows] = ()
) -> AfWaveParams:
    """Fit the window model and choose ``p_on`` / ``k_on`` for the best record F1.

    ``records`` (CinC 2017) give the F1; ``mitdb`` records (windows labelled from the rhythm
    annotations) are training windows too, and bound the false calls per hour
    (``MAX_FALSE_PER_H``; mitdb windows come every 4 beats, about 3 s).

    Raises
    ------
    ValueError
        If there are no AF or no non-AF windows.
    """
    x = np.concatenate([r.features for r in [*records, *mitdb]])
    y = np.concatenate([_labels(r) for r in [*records, *mitdb]])
    n_pos = int(y.sum())
    if n_pos in (0, y.size):
        msg = "tuning needs AF and non-AF windows"
        raise ValueError(msg)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    weight = np.where(y, 0.5 / n_pos, 0.5 / (y.size - n_pos)) * y.size
    coef, intercept = fit_logistic((x - mean) / scale, y, weight)
    params = AfWaveParams(
        feature_mean=tuple(float(v) for v in mean),
        feature_scale=tuple(float(v) for v in scale),
        coef=tuple(float(v) for v in coef),
        intercept=intercept,
    )
    probs = [af_wave_probability(r.features, params) for r in records]
    truth = [r.af for r in records]
    mprobs = [np.atleast_1d(af_wave_probability(r.features, params)) for r in mitdb]
    hours = sum(r.features.shape[0] for r in mitdb) * 3.0 / 3600.0
    best = (-math.inf, params)
    for p_on in P_ON_GRID:
        for k_on in K_ON_GRID:
            n_false = sum(
                false_calls(p, _labels(r), p_on, k_on) for p, r in zip(mprobs, mitdb, strict=True)
            )
            if mitdb and n_false > MAX_FALSE_PER_H * hours:
                continue
            called = [record_call(p, p_on, k_on) for p in probs]
            score = f1(called, truth)[0]
            if score > best[0]:
                best = (score, replace(params, p_on=p_on, k_on=k_on, p_off=min(0.5, p_on)))
    logger.info("AF wave tuned: p_on %.2f k_on %d, F1 %.3f", best[1].p_on, best[1].k_on, best[0])
    return best[1]


def cross_validate(
    records: Sequence[RecordWindows], mitdb: Sequence[RecordWindows] = ()
) -> dict[str, object]:
    """5-fold by recording: record-level AF F1, per-label call rates, mitdb false calls/h."""
    rng = np.random.default_rng(SEED)
    fold = rng.integers(0, N_FOLDS, size=len(records))
    mfold = rng.integers(0, N_FOLDS, size=len(mitdb))
    called = [False] * len(records)
    m_false, m_hours, m_af_found, m_af = 0, 0.0, 0, 0
    for k in range(N_FOLDS):
        train = [r for r, f in zip(records, fold, strict=True) if f != k]
        mtrain = [r for r, f in zip(mitdb, mfold, strict=True) if f != k]
        params = wave_tune(train, mtrain)
        for i, (r, f) in enumerate(zip(records, fold, strict=True)):
            if f == k:
                p = af_wave_probability(r.features, params)
                called[i] = record_call(np.atleast_1d(p), params.p_on, params.k_on)
        for r, f in zip(mitdb, mfold, strict=True):
            if f == k:
                p = np.atleast_1d(af_wave_probability(r.features, params))
                lab = _labels(r)
                m_false += false_calls(p, lab, params.p_on, params.k_on)
                m_hours += float((~lab).sum()) * 3.0 / 3600.0
                if r.af:
                    m_af += 1
                    m_af_found += record_call(p[lab], params.p_on, params.k_on)
    truth = [r.af for r in records]
    score, tp, fp, fn = f1(called, truth)
    by_label = {
        lab: f"{sum(c for c, r in zip(called, records, strict=True) if r.label == lab)}"
        f"/{sum(r.label == lab for r in records)}"
        for lab in ("A", "N", "O", "~")
    }
    return {
        "f1": round(score, 3),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "called_af_by_label": by_label,
        "mitdb_false_calls": m_false,
        "mitdb_non_af_hours_approx": round(m_hours, 1),
        "mitdb_af_records_found": f"{m_af_found}/{m_af}",
    }
