"""Window dataset for the VF/VFL detector: records, rhythm labels and window features.

Records are read with wfdb (channel 0 only, physical units converted to µV, the record's own
sampling rate). Rhythm intervals come from the ``aux_note`` of the reference ``.atr``
annotations (``(VF``, ``(VFIB``, ``(VFL``, ``(VT``, ``(NOISE``, ``(ASYS``, ``(N`` ...): each
rhythm label holds until the next one or the end of the record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import wfdb
from numpy.typing import NDArray

from agent.rhythm.vf import MARGIN_S, N_FEATURES, VfParams, vf_window_features
from tools.beats.dataset import DS1, DS2  # de Chazal 2004: DS1 tunes, DS2 is held out

logger = logging.getLogger(__name__)

__all__ = [
    "DS1",
    "DS2",
    "NSTDB",
    "VF_CODES",
    "VT_CODES",
    "RecordData",
    "RhythmInterval",
    "WindowSet",
    "load_record",
    "record_windows",
    "tuning_records",
]

VF_CODES: Final = frozenset({"VF", "VFL", "VFIB"})
"""Rhythm codes counted as ventricular fibrillation / flutter (vfdb writes ``VFIB`` for
some VF episodes and ``VF`` for others; mitdb uses ``VFL``)."""
VT_CODES: Final = frozenset({"VT"})
"""Rhythm codes counted as ventricular tachycardia."""
NOISE_CODES: Final = frozenset({"NOISE"})
"""Rhythm code of stretches annotated unreadable."""

NSTDB: Final = (
    "118e_6",
    "118e00",
    "118e06",
    "118e12",
    "118e18",
    "118e24",
    "119e_6",
    "119e00",
    "119e06",
    "119e12",
    "119e18",
    "119e24",
)
"""MIT-BIH Noise Stress Test records (noise added to 118 and 119; no VF in them)."""


@dataclass(frozen=True, slots=True)
class RhythmInterval:
    """One annotated rhythm stretch of a record.

    Attributes
    ----------
    code : str
        PhysioNet rhythm code without the parenthesis (``VF``, ``VFL``, ``VT``, ``N``, ...).
    start_idx, end_idx : int
        First and one-past-last sample of the stretch, at the record's rate.
    """

    code: str
    start_idx: int
    end_idx: int


@dataclass(frozen=True, slots=True)
class RecordData:
    """Channel 0 of one record and its rhythm intervals.

    Attributes
    ----------
    db, name : str
        Database folder name (``vfdb``, ``mitdb``, ``nstdb``) and record name.
    fs_hz : float
        Sampling rate, Hz.
    ecg_uv : NDArray[np.float64]
        Channel 0 in µV, shape ``(n_samples,)``.
    rhythms : tuple[RhythmInterval, ...]
        Rhythm stretches in time order, covering the record from the first rhythm label.
    vf_episodes, vt_episodes : tuple[tuple[int, int], ...]
        Maximal ``[start_idx, end_idx)`` stretches annotated VF/VFL (adjacent labels
        merged) and VT.
    """

    db: str
    name: str
    fs_hz: float
    ecg_uv: NDArray[np.float64]
    rhythms: tuple[RhythmInterval, ...]
    vf_episodes: tuple[tuple[int, int], ...]
    vt_episodes: tuple[tuple[int, int], ...]

    @property
    def key(self) -> str:
        """``db/name``: unique across databases."""
        return f"{self.db}/{self.name}"

    @property
    def duration_s(self) -> float:
        """Length of the record, s."""
        return self.ecg_uv.size / self.fs_hz

    def mask(self, codes: frozenset[str]) -> NDArray[np.bool_]:
        """Boolean mask over samples, True inside stretches whose code is in ``codes``."""
        out = np.zeros(self.ecg_uv.size, dtype=bool)
        for r in self.rhythms:
            if r.code in codes:
                out[r.start_idx : r.end_idx] = True
        return out


_UNIT_TO_UV: Final = {"mV": 1000.0, "uV": 1.0, "µV": 1.0, "V": 1e6}


def load_record(data_dir: Path, db: str, name: str) -> RecordData:
    """Read channel 0 and the rhythm intervals of one record.

    Parameters
    ----------
    data_dir : Path
        Folder holding ``mitdb``, ``vfdb``, ``nstdb``.
    db, name : str
        Database folder and record name.

    Returns
    -------
    RecordData
        The record. nstdb records carry no rhythm labels of VF (none has any).

    Raises
    ------
    FileNotFoundError
        If the record is missing.
    ValueError
        If channel 0 has a unit other than V, mV or µV.
    """
    path = data_dir / db / name
    if not path.with_suffix(".hea").exists():
        msg = f"record not found: {path}.hea"
        raise FileNotFoundError(msg)
    rec = wfdb.rdrecord(str(path), channels=[0])
    unit = str(rec.units[0])
    if unit not in _UNIT_TO_UV:
        msg = f"{path}: unsupported unit {unit!r} on channel 0"
        raise ValueError(msg)
    x = np.asarray(rec.p_signal[:, 0], dtype=np.float64) * _UNIT_TO_UV[unit]
    ann = wfdb.rdann(str(path), "atr")
    rhythms: list[RhythmInterval] = []
    cur: str | None = None
    start = 0
    for s, aux in zip(ann.sample, ann.aux_note, strict=True):
        note = str(aux).strip("\x00").strip()
        if not note.startswith("("):
            continue
        if cur is not None:
            rhythms.append(RhythmInterval(cur, start, int(s)))
        cur, start = note[1:], int(s)
    if cur is not None:
        rhythms.append(RhythmInterval(cur, start, x.size))
    return RecordData(
        db,
        name,
        float(rec.fs),
        x,
        tuple(rhythms),
        _stretches(rhythms, VF_CODES, x.size),
        _stretches(rhythms, VT_CODES, x.size),
    )


def _stretches(
    rhythms: list[RhythmInterval], codes: frozenset[str], n: int
) -> tuple[tuple[int, int], ...]:
    mask = np.zeros(n + 2, dtype=np.int8)
    for r in rhythms:
        if r.code in codes:
            mask[r.start_idx + 1 : r.end_idx + 1] = 1
    edges = np.flatnonzero(np.diff(mask))
    return tuple((int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True))


VFDB_AT_HAND: Final = tuple(str(n) for n in range(418, 429))
"""The 11 vfdb records the project trains, tunes and cross-validates on (418-428,
``../shared/data/README.md``). PhysioNet's other 11 (429, 430, 602-615) are an independent
test set: a full download holds them too, and nothing here may train or tune on them."""


def vfdb_records(data_dir: Path) -> list[str]:
    """Return the records of :data:`VFDB_AT_HAND` listed in ``data_dir/vfdb/RECORDS``.

    Raises
    ------
    FileNotFoundError
        If the ``RECORDS`` file is missing.
    """
    return [n for n in _vfdb_listed(data_dir) if n in VFDB_AT_HAND]


def vfdb_held_out_records(data_dir: Path) -> list[str]:
    """Return the records listed in ``data_dir/vfdb/RECORDS`` outside :data:`VFDB_AT_HAND`.

    Empty with the data beside the project; 429, 430 and 602-615 with a full download. Only
    ever analysed with the shipped parameters, never trained or tuned on.

    Raises
    ------
    FileNotFoundError
        If the ``RECORDS`` file is missing.
    """
    return [n for n in _vfdb_listed(data_dir) if n not in VFDB_AT_HAND]


def _vfdb_listed(data_dir: Path) -> list[str]:
    return (data_dir / "vfdb" / "RECORDS").read_text().split()


def tuning_records(data_dir: Path) -> list[tuple[str, str]]:
    """``(db, name)`` of every record tuning may use: vfdb (:func:`vfdb_records`), mitdb DS1."""
    return [("vfdb", n) for n in vfdb_records(data_dir)] + [("mitdb", n) for n in DS1]


@dataclass(frozen=True, slots=True)
class WindowSet:
    """Features and labels of the analysis windows of one record.

    Attributes
    ----------
    record : RecordData
        The record.
    end_idx : NDArray[np.int64]
        One-past-last sample of each window at the record's rate, shape ``(n_windows,)``.
    features : NDArray[np.float64]
        Window features (``agent.rhythm.vf.FEATURE_NAMES``), shape ``(n_windows, n_features)``.
    vf_frac, vt_frac, noise_frac : NDArray[np.float64]
        Fraction of each window annotated VF/VFL, VT, NOISE, shape ``(n_windows,)``.
    """

    record: RecordData
    end_idx: NDArray[np.int64]
    features: NDArray[np.float64]
    vf_frac: NDArray[np.float64]
    vt_frac: NDArray[np.float64]
    noise_frac: NDArray[np.float64]


def _window_fraction(
    mask: NDArray[np.bool_], end_idx: NDArray[np.int64], n: int
) -> NDArray[np.float64]:
    csum = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    return np.asarray((csum[end_idx] - csum[end_idx - n]) / n, dtype=np.float64)


def record_windows(record: RecordData, params: VfParams) -> WindowSet:
    """Compute the features of every window the streaming detector would judge.

    Windows end at every multiple of the hop (``round(hop_s * fs)`` samples) from the first
    one with ``window_s + MARGIN_S`` of signal before it, exactly as
    :class:`agent.rhythm.vf.VfDetector` schedules them.

    Parameters
    ----------
    record : RecordData
        The record.
    params : VfParams
        Window length and hop.

    Returns
    -------
    WindowSet
        Features and labels.
    """
    fs = record.fs_hz
    hop_n = max(1, round(params.hop_s * fs))
    win_n = round(params.window_s * fs)
    need_n = round((params.window_s + MARGIN_S) * fs)
    first = -(-need_n // hop_n) * hop_n
    ends = np.arange(first, record.ecg_uv.size + 1, hop_n, dtype=np.int64)
    feats = np.empty((ends.size, N_FEATURES), dtype=np.float64)
    for i, e in enumerate(ends):
        feats[i] = vf_window_features(record.ecg_uv[e - need_n : e], fs, params.window_s)
    return WindowSet(
        record,
        ends,
        feats,
        _window_fraction(record.mask(VF_CODES), ends, win_n),
        _window_fraction(record.mask(VT_CODES), ends, win_n),
        _window_fraction(record.mask(NOISE_CODES), ends, win_n),
    )
