"""Tuning of the waveform AF path (:mod:`agent.rhythm.af_wave`) on CinC 2017, patient-wise.

Each CinC 2017 recording is one patient (the challenge gives no patient ids; a recording is
the unit of the labels). Beats come from the agent's own streaming R-peak detector
(:class:`agent.dsp.rpeaks.StreamingRPeakDetector`, default settings, 50 Hz mains). Every
``AF_WAVE_HOP_BEATS`` beats a window of ``AF_WAVE_BEATS`` beats gets the features of
:func:`agent.rhythm.af_wave.af_wave_features`; its label is the recording's (``A`` = AF;
``N``, ``O`` and ``~`` = not AF: "other rhythm" and noise are exactly what must not be
called AF).

Data loading (cached under ``out/``) and the record-level decision helpers. The window model
(an int8 MLP) is trained and cross-validated by :mod:`tools.af.wave_mlp`; a recording is
called AF when ``k_on`` consecutive windows reach ``p_on``.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np
import wfdb
from numpy.typing import NDArray

from agent.dsp.rpeaks import StreamingRPeakDetector
from agent.rhythm.af_wave import (
    AF_WAVE_BEATS,
    AF_WAVE_CARD,
    AF_WAVE_HOP_BEATS,
    N_AF_WAVE_FEATURES,
    POST_S,
    af_wave_features,
    window_start,
)

logger = logging.getLogger(__name__)

CACHE: Final = Path("out/af_wave_cache_v3.npz")


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
    post = round(POST_S * fs_hz) + 1
    for end in range(AF_WAVE_BEATS, r.size + 1, AF_WAVE_HOP_BEATS):
        w = r[end - AF_WAVE_BEATS : end]
        first = window_start(int(w[0]), fs_hz)
        if first is None or int(w[-1]) + post > x_uv.size:
            continue
        out.append(af_wave_features(w, x_uv[first : int(w[-1]) + post], first, fs_hz))
        spans.append((int(w[0]), int(w[-1])))
    feats = np.asarray(out, dtype=np.float64).reshape(-1, N_AF_WAVE_FEATURES)
    return feats, np.asarray(spans, dtype=np.int64).reshape(-1, 2)


AF_CODES: Final = frozenset({"AFIB", "AFL"})
MITDB_CACHE: Final = Path("out/af_wave_mitdb_v3.npz")


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


def shipped_cross_validation(card_path: Path = AF_WAVE_CARD) -> dict[str, object]:
    """Return the shipped window model's cross-validated figures (int8), from its card.

    The figures are computed by ``./run.sh train af-wave`` (:mod:`tools.af.wave_mlp`, nested
    5-fold CV by recording, TensorFlow needed); this reader lets the main venv
    (``python -m tools.evaluate rhythm``) report them without retraining.

    Raises
    ------
    FileNotFoundError
        If the card is missing.
    KeyError
        If the card has no ``metrics.cross_validated_int8``.
    """
    card = json.loads(card_path.read_text(encoding="utf-8"))
    return dict(card["metrics"]["cross_validated_int8"])
