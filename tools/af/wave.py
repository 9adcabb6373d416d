"""Tuning of the waveform AF path (:mod:`agent.rhythm.af_wave`) on CinC 2017, patient-wise.

Each CinC 2017 recording is one patient (the challenge gives no patient ids; a recording is
the unit of the labels). The beats are the agent's own final beats (``bedside analyze``'s
pipeline, :func:`agent.analyze.analyze_record`: R-peak detector and beat classifier, default
settings) so that training, tuning and the live detector see the same windows. Every
``AF_WAVE_HOP_BEATS`` beats a window of ``AF_WAVE_BEATS`` beats gets the features of
:func:`agent.rhythm.af_wave.af_wave_features` and its count of ectopic beats (confident V,
for the ectopy veto); its label is the recording's (``A`` = AF; ``N``, ``O`` and ``~`` = not
AF: "other rhythm" and noise are exactly what must not be called AF).

Data loading (cached under ``out/``) and the record-level decision helpers. The window model
(an int8 MLP) is trained and cross-validated by :mod:`tools.af.wave_mlp`; a recording is
called AF when ``k_on`` consecutive windows reach ``p_on``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, TypeAlias

import numpy as np
import wfdb
from numpy.typing import NDArray

from agent.analyze import analyze_record_blocking
from agent.config import AgentConfig, DspConfig
from agent.core.consumers import is_ectopic
from agent.inference.bundle import ModelBundle, load_models
from agent.rhythm.af_wave import (
    AF_WAVE_BEATS,
    AF_WAVE_CARD,
    AF_WAVE_HOP_BEATS,
    N_AF_WAVE_FEATURES,
    POST_S,
    af_wave_features,
    window_start,
)
from tools.af.dataset import cinc_training_labels

logger = logging.getLogger(__name__)

CACHE: Final = Path("out/af_wave_cache_v4.npz")
MITDB_CACHE: Final = Path("out/af_wave_mitdb_v4.npz")
AF_CODES: Final = frozenset({"AFIB", "AFL"})


@dataclass(frozen=True, slots=True)
class RecordWindows:
    """Windows of one recording.

    Attributes
    ----------
    name, label : str
        Record name; its CinC label (``A``, ``N``, ``O``, ``~``) or ``"mitdb"``.
    af : bool
        Whether the recording has AF.
    features : NDArray[np.float64]
        Window features, shape ``(n, N_AF_WAVE_FEATURES)``.
    n_ectopic : NDArray[np.int64]
        Beats of each window the agent's classifier calls V with the ectopy rules' confidence
        (:func:`agent.core.consumers.is_ectopic`), shape ``(n,)``.
    window_af : NDArray[np.bool_] | None
        Per-window AF label (mitdb), or None (the recording's label, CinC).
    """

    name: str
    af: bool
    label: str
    features: NDArray[np.float64]
    n_ectopic: NDArray[np.int64]
    window_af: NDArray[np.bool_] | None = None


@dataclass(frozen=True, slots=True)
class AgentBeats:
    """What the agent's waveform AF path sees of one record.

    Attributes
    ----------
    r_idx : NDArray[np.int64]
        R-peak sample of every final beat, shape ``(n,)``.
    ectopic : NDArray[np.bool_]
        Confident V per beat, shape ``(n,)``.
    x_uv : NDArray[np.float64]
        The analysed channel, µV, shape ``(samples,)``.
    fs_hz : float
        Its sampling rate, Hz.
    """

    r_idx: NDArray[np.int64]
    ectopic: NDArray[np.bool_]
    x_uv: NDArray[np.float64]
    fs_hz: float


def agent_beats(record: Path, cfg: AgentConfig, models: ModelBundle) -> AgentBeats:
    """Run the agent (:func:`agent.analyze.analyze_record`, channel 0) over one WFDB record.

    The beats are the agent's final beats with its beat classifier's labels, i.e. exactly what
    :class:`agent.core.consumers.AfConsumer` feeds :class:`agent.rhythm.af_wave.FusedAfDetector`
    (the detector's restarts at unusable signal are not replayed).

    Raises
    ------
    RecordNotFoundError, RecordReadError
        If the record cannot be read (:func:`agent.analyze.analyze_record`).
    """
    res = analyze_record_blocking(record, cfg, models)
    min_conf = cfg.alarms.ectopy.min_confidence
    rec = wfdb.rdrecord(str(record), channels=[0])
    return AgentBeats(
        np.asarray([b.r_peak_idx for b in res.beats], dtype=np.int64),
        np.asarray([is_ectopic(b.aami_class, b.confidence, min_conf) for b in res.beats], bool),
        np.asarray(rec.p_signal[:, 0], dtype=np.float64) * 1000.0,  # mV -> µV
        float(rec.fs),
    )


def beat_windows(
    beats: AgentBeats, window_beats: int = AF_WAVE_BEATS
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Every ``AF_WAVE_HOP_BEATS`` beats, the window of the last ``window_beats`` beats.

    ``window_beats`` is the detector's :data:`~agent.rhythm.af_wave.AF_WAVE_BEATS` (17) unless
    an experiment asks for another length (``python -m tools.af.wave_mlp --cv-only
    --window-beats N``); the live detector judges 17.

    Returns
    -------
    tuple
        Features ``(n, N_AF_WAVE_FEATURES)``, each window's first / last R-peak sample
        ``(n, 2)`` and its count of ectopic beats ``(n,)``.
    """
    r, x, fs = beats.r_idx, beats.x_uv, beats.fs_hz
    out, spans, n_ect = [], [], []
    post = round(POST_S * fs) + 1
    for end in range(window_beats, r.size + 1, AF_WAVE_HOP_BEATS):
        w = r[end - window_beats : end]
        first = window_start(int(w[0]), fs)
        if first is None or int(w[-1]) + post > x.size:
            continue
        out.append(af_wave_features(w, x[first : int(w[-1]) + post], first, fs))
        spans.append((int(w[0]), int(w[-1])))
        n_ect.append(int(beats.ectopic[end - window_beats : end].sum()))
    feats = np.asarray(out, dtype=np.float64).reshape(-1, N_AF_WAVE_FEATURES)
    return (
        feats,
        np.asarray(spans, dtype=np.int64).reshape(-1, 2),
        np.asarray(n_ect, dtype=np.int64),
    )


def _agent(powerline_hz: Literal[50, 60]) -> tuple[AgentConfig, ModelBundle]:
    cfg = AgentConfig(dsp=DspConfig(powerline_hz=powerline_hz))
    return cfg, load_models(cfg.inference)


def _save(path: Path, recs: Sequence[RecordWindows]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        names=np.asarray([r.name for r in recs]),
        counts=np.asarray([r.features.shape[0] for r in recs]),
        features=np.concatenate([r.features for r in recs]),
        n_ectopic=np.concatenate([r.n_ectopic for r in recs]),
        labels=np.concatenate(
            [r.window_af if r.window_af is not None else np.zeros(0, bool) for r in recs]
        ),
    )


_Cached: TypeAlias = tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.bool_]]


def _load(path: Path, names: Sequence[str]) -> list[_Cached] | None:
    if not path.exists():
        return None
    z = np.load(path, allow_pickle=False)
    if list(z["names"]) != list(names):
        return None
    splits = np.cumsum(z["counts"])[:-1]
    labels = z["labels"]
    return list(
        zip(
            np.split(z["features"], splits),
            np.split(z["n_ectopic"], splits),
            np.split(labels, splits) if labels.size else [np.zeros(0, bool)] * len(names),
            strict=True,
        )
    )


def _cache(base: Path, window_beats: int) -> Path:
    """Return the cache file for windows of ``window_beats`` beats (``base`` for 17)."""
    if window_beats == AF_WAVE_BEATS:
        return base
    return base.with_name(f"{base.stem}_w{window_beats}{base.suffix}")


def load_mitdb(data_dir: Path, window_beats: int = AF_WAVE_BEATS) -> list[RecordWindows]:
    """Windows of every mitdb record (channel 0, 60 Hz mains), labelled per window.

    A window is AF when at least half of its span is annotated ``(AFIB`` / ``(AFL``.
    ``RecordWindows.af`` is True for records with any AF; per-window labels are in
    ``window_af``. Windows of ``window_beats`` beats (:func:`beat_windows`). Cached in
    ``MITDB_CACHE`` (another length beside it).
    """
    names = (data_dir / "mitdb" / "RECORDS").read_text().split()
    cache = _cache(MITDB_CACHE, window_beats)
    cached = _load(cache, names)
    if cached is not None:
        return [
            RecordWindows(n, bool(lab.any()), "mitdb", f, e, lab)
            for n, (f, e, lab) in zip(names, cached, strict=True)
        ]
    cfg, models = _agent(60)  # MIT-BIH was recorded in Boston
    out = []
    for name in names:
        path = data_dir / "mitdb" / name
        beats = agent_beats(path, cfg, models)
        feats, spans, n_ect = beat_windows(beats, window_beats)
        ann = wfdb.rdann(str(path), "atr")
        mask = np.zeros(beats.x_uv.size + 1, dtype=bool)
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
        out.append(RecordWindows(name, bool(labels.any()), "mitdb", feats, n_ect, labels))
        logger.info("mitdb %s: %d windows, %d AF", name, labels.size, int(labels.sum()))
    _save(cache, out)
    return out


def load_cinc(data_dir: Path, window_beats: int = AF_WAVE_BEATS) -> list[RecordWindows]:
    """Windows of the CinC 2017 recordings at hand (50 Hz mains), cached in ``CACHE``.

    Only :data:`tools.af.dataset.CINC_AT_HAND`: the rest of a full download is the
    independent test set. Windows of ``window_beats`` beats (another length cached beside
    ``CACHE``).
    """
    folder = data_dir / "cinc2017"
    labels = cinc_training_labels(folder / "REFERENCE.csv")
    rows = [(n, lab) for n, lab in labels.items() if (folder / f"{n}.hea").exists()]
    cache = _cache(CACHE, window_beats)
    cached = _load(cache, [n for n, _ in rows])
    if cached is not None:
        return [
            RecordWindows(n, lab == "A", lab, f, e)
            for (n, lab), (f, e, _) in zip(rows, cached, strict=True)
        ]
    cfg, models = _agent(50)
    out = []
    for i, (name, lab) in enumerate(rows):
        feats, _spans, n_ect = beat_windows(agent_beats(folder / name, cfg, models), window_beats)
        out.append(RecordWindows(name, lab == "A", lab, feats, n_ect))
        if i % 250 == 0:
            logger.info("cinc2017 %d/%d", i, len(rows))
    _save(cache, out)
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
