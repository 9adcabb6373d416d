"""Beat examples from mitdb and svdb: windows, RR features and AAMI labels, patient-wise splits.

Every example is made by :func:`agent.inference.beat_features.beat_window` and
:class:`agent.inference.beat_features.RrFeatureTracker`, the functions the agent runs live, so
training and inference see identical inputs. RR features are computed over every annotated
beat of the record in order (what a perfect R-peak detector would give); labels come from the
beat symbols mapped to AAMI EC57 classes.

References
----------
de Chazal P, O'Dwyer M, Reilly RB. IEEE Trans Biomed Eng 2004;51(7):1196-1206.
doi:10.1109/TBME.2004.827359 (DS1/DS2 inter-patient split, paced records excluded).
ANSI/AAMI EC57:2012, Table 1 (MIT-BIH beat labels → AAMI classes).
Greenwald SD, Patil RS, Mark RG. Computers in Cardiology 1990:461-464 (svdb: 78 half-hour
records, 128 Hz, every beat labelled with MIT-BIH symbols; one record is one patient).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final

import numpy as np
import wfdb
from numpy.typing import NDArray
from scipy import signal

from agent.inference.beat_features import (
    DEFAULT_SCALING,
    N_RR_FEATURES,
    N_WINDOW_CHANNELS,
    WINDOW_LEN,
    BeatTemplateTracker,
    RrFeatureTracker,
    Scaling,
    beat_window,
    segment_bounds,
)
from tools.ec57 import BEAT_SYMBOLS

logger = logging.getLogger(__name__)

LABELS: Final = ("N", "S", "V", "F", "Q")
"""AAMI EC57 classes, in the model's output order."""

AAMI_CLASS_OF_SYMBOL: Final[dict[str, str]] = {
    **dict.fromkeys("NLRej", "N"),  # normal, bundle branch block, atrial / nodal escape
    **dict.fromkeys("AaJS", "S"),  # atrial, aberrated atrial, nodal, supraventricular premature
    **dict.fromkeys("VE", "V"),  # premature ventricular contraction, ventricular escape
    "F": "F",  # fusion of ventricular and normal
    **dict.fromkeys("/fQ", "Q"),  # paced, fusion of paced and normal, unclassifiable
}
"""MIT-BIH beat symbol → AAMI class (EC57 Table 1; de Chazal 2004 Table I)."""

DS1: Final[tuple[str, ...]] = (
    "101",
    "106",
    "108",
    "109",
    "112",
    "114",
    "115",
    "116",
    "118",
    "119",
    "122",
    "124",
    "201",
    "203",
    "205",
    "207",
    "208",
    "209",
    "215",
    "220",
    "223",
    "230",
)
"""de Chazal 2004 training set: train and validate here only."""

DS2: Final[tuple[str, ...]] = (
    "100",
    "103",
    "105",
    "111",
    "113",
    "117",
    "121",
    "123",
    "200",
    "202",
    "210",
    "212",
    "213",
    "214",
    "219",
    "221",
    "222",
    "228",
    "231",
    "232",
    "233",
    "234",
)
"""de Chazal 2004 test set: evaluated once, never used to train, tune or select."""

PACED: Final = ("102", "104", "107", "217")
"""Paced records, excluded from both sets (AAMI EC57 recommends excluding them)."""

LEAD: Final = "MLII"
"""Lead used for mitdb (channel 0, except record 114 where MLII is channel 1)."""

SVDB_LEAD: Final = "ECG1"
"""Lead used for svdb: channel 0 (svdb names its leads ECG1 / ECG2; ECG1 is a limb lead)."""

SVDB: Final = "svdb"
"""Folder of the svdb records under the data directory."""


SVDB_AT_HAND: Final[tuple[str, ...]] = (
    *("800", "802", "804", "806", "808", "810", "812", "820", "822", "824", "826", "828"),
    *("840", "842", "844", "846", "848", "850", "852", "854", "856", "858", "860", "862"),
    *("864", "866", "868", "870", "872", "874", "876", "878", "880", "882", "884", "886"),
    *("888", "890", "892", "894"),
)
"""The 40 even-numbered svdb records the project trains, tunes and cross-validates on
(``../shared/data/README.md``). The 38 odd-numbered ones are an independent test set: a full
PhysioNet download holds them too, and nothing here may train or tune on them."""


def svdb_records(data_dir: Path) -> tuple[str, ...]:
    """Return the records of :data:`SVDB_AT_HAND` present under ``data_dir / "svdb"``.

    Listed in the folder's ``RECORDS`` file and with a ``.hea`` header. Records of a full
    download outside :data:`SVDB_AT_HAND` are left out (:func:`svdb_held_out_records`).

    Raises
    ------
    FileNotFoundError
        If the folder or its ``RECORDS`` file is missing.
    """
    at_hand = set(SVDB_AT_HAND)
    return tuple(n for n in _svdb_present(data_dir) if n in at_hand)


def svdb_held_out_records(data_dir: Path) -> tuple[str, ...]:
    """Return the svdb records present that are **not** in :data:`SVDB_AT_HAND`.

    Empty with the data shipped beside the project; the odd-numbered half of svdb when the
    whole database was downloaded. Only ever analysed with the shipped models, never trained
    or tuned on.

    Raises
    ------
    FileNotFoundError
        If the folder or its ``RECORDS`` file is missing.
    """
    at_hand = set(SVDB_AT_HAND)
    return tuple(n for n in _svdb_present(data_dir) if n not in at_hand)


def _svdb_present(data_dir: Path) -> list[str]:
    names = (data_dir / SVDB / "RECORDS").read_text(encoding="utf-8").split()
    return [n for n in names if (data_dir / SVDB / f"{n}.hea").exists()]


@dataclass(frozen=True, slots=True)
class BeatSet:
    """Labelled beat examples.

    Attributes
    ----------
    windows : NDArray[np.float32]
        Shape ``(n_beats, WINDOW_LEN, N_WINDOW_CHANNELS)``: :func:`beat_window` at the model
        rate and the template from :class:`BeatTemplateTracker`.
    rr : NDArray[np.float32]
        Shape ``(n_beats, N_RR_FEATURES)``, :meth:`RrFeatures.as_array` of each beat.
    labels : NDArray[np.int64]
        Shape ``(n_beats,)``, index into :data:`LABELS`.
    records : NDArray[np.str_]
        Shape ``(n_beats,)``, the record of each beat.
    samples : NDArray[np.int64]
        Shape ``(n_beats,)``, R-peak annotation sample at the record's rate (360 Hz).
    """

    windows: NDArray[np.float32]
    rr: NDArray[np.float32]
    labels: NDArray[np.int64]
    records: NDArray[np.str_]
    samples: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.labels.size)

    def subset(self, mask: NDArray[np.bool_]) -> BeatSet:
        """Return the beats where ``mask`` (shape ``(n_beats,)``) is True."""
        return BeatSet(
            self.windows[mask],
            self.rr[mask],
            self.labels[mask],
            self.records[mask],
            self.samples[mask],
        )

    def of_records(self, names: list[str] | tuple[str, ...]) -> BeatSet:
        """Return the beats of the named records."""
        return self.subset(np.isin(self.records, list(names)))

    def counts(self) -> dict[str, int]:
        """Return the number of beats per AAMI class."""
        return {c: int((self.labels == i).sum()) for i, c in enumerate(LABELS)}

    def save(self, path: Path) -> None:
        """Write the set to an ``.npz`` file.

        Written beside ``path`` under a name of this process and renamed into place, so that
        two runs building the same cache at once (two ``tools.beats cv`` in parallel) never
        leave a torn file for a third to read.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.npz")
        np.savez_compressed(
            tmp,
            windows=self.windows,
            rr=self.rr,
            labels=self.labels,
            records=self.records,
            samples=self.samples,
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> BeatSet:
        """Read a set written by :meth:`save`."""
        with np.load(path) as z:
            return cls(z["windows"], z["rr"], z["labels"], z["records"], z["samples"])

    @classmethod
    def concat(cls, sets: list[BeatSet]) -> BeatSet:
        """Join sets end to end."""
        return cls(
            np.concatenate([s.windows for s in sets]).reshape(-1, WINDOW_LEN, N_WINDOW_CHANNELS),
            np.concatenate([s.rr for s in sets]).reshape(-1, N_RR_FEATURES),
            np.concatenate([s.labels for s in sets]),
            np.concatenate([s.records for s in sets]),
            np.concatenate([s.samples for s in sets]),
        )


def read_lead_uv(record_path: Path, *, second: bool = False) -> tuple[NDArray[np.float32], float]:
    """Read the MLII lead of a WFDB record (mitdb), or ECG1 where there is none (svdb).

    With ``second``, read the record's other lead instead (mitdb: V1, V2, V4 or V5; svdb:
    ECG2), for the second-lead training copies (:data:`SECOND_LEAD_TAG`).

    Returns
    -------
    tuple[NDArray[np.float32], float]
        The signal in µV, shape ``(n_samples,)``, and its rate in Hz.

    Raises
    ------
    ValueError
        If the record has neither an MLII nor an ECG1 lead, or (``second``) no other lead.
    FileNotFoundError
        If the record is missing.
    """
    header = wfdb.rdheader(str(record_path))
    lead = next((n for n in (LEAD, SVDB_LEAD) if n in header.sig_name), None)
    if lead is None:
        msg = f"record {record_path.name} has no {LEAD} or {SVDB_LEAD} lead ({header.sig_name})"
        raise ValueError(msg)
    if second:
        other = [n for n in header.sig_name if n != lead]
        if not other:
            msg = f"record {record_path.name} has no lead besides {lead} ({header.sig_name})"
            raise ValueError(msg)
        lead = other[0]
    rec = wfdb.rdrecord(str(record_path), channel_names=[lead])
    return (rec.p_signal[:, 0] * 1000.0).astype(np.float32), float(rec.fs)


SignalTransform = Callable[[NDArray[np.float32], float], NDArray[np.float32]]
"""``(x_uv, fs_hz) -> x_uv``: a change made to a record's signal before beats are cut (noise)."""

AUGMENTED_SUFFIX: Final = "~"
"""Separator of the tag of an augmented copy in ``BeatSet.records`` (``"119~em12"``): the
copy belongs to the same patient, so it is held out with its record in every fold."""


NEGATED_TAG: Final = "neg"
"""Tag of a record's copy with the ECG turned over (:func:`negate`): the same beats as a
reversed lead shows them (a strap worn upside down, swapped electrodes)."""


SECOND_LEAD_TAG: Final = "lead2"
"""Tag of a record's copy made from its other lead (mitdb V1/V2/V4/V5, svdb ECG2): the same
beats and labels as another electrode placement shows them, a training copy only (held out
with its record in every fold, never scored): the shapes of an unseen patient's beats, and of
a chest strap's lead, differ from MLII's far more than one lead's patients differ."""


def negate(x_uv: NDArray[np.float32], fs_hz: float) -> NDArray[np.float32]:
    """Turn the ECG over (``-x``): a :data:`SignalTransform` for the reversed-lead copies."""
    out: NDArray[np.float32] = -x_uv
    return out


def is_negated(records: NDArray[np.str_]) -> NDArray[np.bool_]:
    """Whether each beat comes from a reversed-lead copy (``"<record>~neg"``)."""
    return np.char.endswith(records.astype(str), AUGMENTED_SUFFIX + NEGATED_TAG)


def is_original(records: NDArray[np.str_]) -> NDArray[np.bool_]:
    """Whether each beat comes from a record itself, not from an augmented copy of it."""
    return np.char.find(records.astype(str), AUGMENTED_SUFFIX) < 0


def is_scored(records: NDArray[np.str_]) -> NDArray[np.bool_]:
    """Whether each beat is scored out of fold: a record's own, or its reversed-lead copy's.

    Noisy copies are training data only; the reversed-lead copies give the reversed-lead
    figures of a cross-validation.
    """
    return is_original(records) | is_negated(records)


def patient_of(records: NDArray[np.str_]) -> NDArray[np.str_]:
    """Return the record (patient) of each beat, the augmentation tag removed."""
    return np.char.partition(records.astype(str), AUGMENTED_SUFFIX)[:, 0]


ALIGN_WINDOW_S: Final = 0.15
"""A detected R-peak within this distance of an annotated beat is taken as its R-peak, s
(the EC57 beat-matching window)."""

ALIGN_CHUNK_S: Final = 1.0
"""Chunk length pushed to the detector when aligning, s (as the agent receives ECG)."""


def align_to_detected_peaks(
    x_uv: NDArray[np.float32], fs_hz: float, samples: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Move annotated beats onto the R-peaks the agent's detector finds.

    svdb's beat annotations sit a record-dependent 15-70 ms away from the R-peak (measured:
    median +31 ms in 880, -23 ms in 842, +16 ms in 800; mitdb's are within 0-6 ms), while the
    agent centres every window on its own detected R-peak
    (:class:`agent.dsp.rpeaks.StreamingRPeakDetector`). Training on annotation-centred windows
    would teach the model windows the agent never makes, so each annotated beat takes the
    nearest detected R-peak within :data:`ALIGN_WINDOW_S`; a beat the detector missed is
    shifted by the record's median offset.

    Parameters
    ----------
    x_uv
        The record's lead, µV, shape ``(n,)``.
    fs_hz
        Its rate, Hz.
    samples
        Annotated beat samples, shape ``(n_beats,)``, increasing.

    Returns
    -------
    NDArray[np.int64]
        The aligned samples, shape ``(n_beats,)``, strictly increasing (a beat that would not
        move past its predecessor keeps its annotation).
    """
    from agent.dsp.rpeaks import StreamingRPeakDetector

    detector = StreamingRPeakDetector(fs_hz, 60)  # svdb / mitdb: recorded in Boston, 60 Hz mains
    chunk = round(ALIGN_CHUNK_S * fs_hz)
    peaks: list[int] = []
    for start in range(0, x_uv.size, chunk):
        peaks.extend(p.r_peak_idx for p in detector.push(x_uv[start : start + chunk]).r_peaks)
    peaks.extend(p.r_peak_idx for p in detector.flush().r_peaks)
    if not peaks or samples.size == 0:
        return samples.astype(np.int64)
    det = np.asarray(peaks, dtype=np.int64)
    j = np.searchsorted(det, samples).clip(1, max(1, det.size - 1))
    left, right = det[np.maximum(j - 1, 0)], det[np.minimum(j, det.size - 1)]
    nearest = np.where(np.abs(right - samples) < np.abs(left - samples), right, left)
    found = np.abs(nearest - samples) <= ALIGN_WINDOW_S * fs_hz
    offset = int(np.median(nearest[found] - samples[found])) if found.any() else 0
    out = np.where(found, nearest, samples + offset).astype(np.int64)
    for k in range(1, out.size):  # keep beats in order and distinct
        if out[k] <= out[k - 1]:
            out[k] = max(samples[k], out[k - 1] + 1)
    return out


def build_record(
    record_path: Path,
    *,
    scaling: Scaling = DEFAULT_SCALING,
    resample_hz: float | None = None,
    transform: SignalTransform | None = None,
    tag: str = "",
    keep: Callable[[int, str], bool] | None = None,
    align_to_detector: bool = False,
    second_lead: bool = False,
) -> BeatSet:
    """Make the labelled examples of one record.

    Every annotated beat (:data:`tools.ec57.BEAT_SYMBOLS`) goes in order through one
    :class:`RrFeatureTracker` and, when it has RR features and a window, one
    :class:`BeatTemplateTracker`, as in the agent's
    :class:`agent.inference.beat_classifier.StreamingBeatClassifier`. An example is kept when
    its symbol has an AAMI class, its RR features exist (not the first beat) and
    :func:`beat_window` gives a window (not at the record's edges).

    Parameters
    ----------
    record_path
        Record path without extension.
    scaling
        Window scaling.
    resample_hz
        Resample the record first (``scipy.signal.resample_poly``, annotation samples scaled
        and rounded), e.g. 130 Hz to see the model on a wearable's rate; None keeps 360 Hz.
    transform
        Applied to the (resampled) signal before any beat is cut, e.g. added noise.
    tag
        Appended to the record name in ``records`` after :data:`AUGMENTED_SUFFIX` when not
        empty (an augmented copy).
    keep
        ``keep(k, aami_class)``: whether the k-th labelled beat becomes an example (all when
        None); every beat still feeds the RR and template trackers.
    align_to_detector
        Move every annotated beat to the agent's own R-peak (:func:`align_to_detected_peaks`)
        before anything else; for databases whose beat annotations are not on the R-peak
        (svdb).
    second_lead
        Cut the beats from the record's other lead (:func:`read_lead_uv`); pass
        ``align_to_detector`` too, so that each beat sits on the R-peak the agent's detector
        finds in that lead.

    Returns
    -------
    BeatSet
        The record's examples; ``samples`` are at the rate the beats were made at.
    """
    x_uv, fs_hz = read_lead_uv(record_path, second=second_lead)
    ann = wfdb.rdann(str(record_path), "atr")
    ratio = 1.0
    if resample_hz is not None and resample_hz != fs_hz:
        frac = Fraction(resample_hz / fs_hz).limit_denominator(1000)
        x_uv = signal.resample_poly(x_uv.astype(np.float64), frac.numerator, frac.denominator)
        x_uv = x_uv.astype(np.float32)
        ratio = frac.numerator / frac.denominator
        fs_hz *= ratio
    beats = [
        (round(int(s) * ratio), sym)
        for s, sym in zip(ann.sample, ann.symbol, strict=True)
        if sym in BEAT_SYMBOLS
    ]
    if align_to_detector:
        samples_at = align_to_detected_peaks(x_uv, fs_hz, np.array([b[0] for b in beats]))
        beats = [(int(s), b[1]) for s, b in zip(samples_at, beats, strict=True)]
    if transform is not None:
        x_uv = transform(x_uv, fs_hz)
    tracker = RrFeatureTracker()
    templates = BeatTemplateTracker()
    windows: list[NDArray[np.float32]] = []
    rrs: list[NDArray[np.float32]] = []
    labels: list[int] = []
    samples: list[int] = []
    for k in range(len(beats)):
        feats = tracker.push(beats[k][0] / fs_hz)
        if feats is None or k == 0:
            continue
        sample, symbol = beats[k - 1]
        start, stop = segment_bounds(sample, fs_hz)
        if start < 0 or stop > x_uv.size:
            continue
        window = beat_window(x_uv[start:stop], fs_hz, sample - start, scaling=scaling)
        if window is None:
            continue
        model_window = templates.push(window)
        aami = AAMI_CLASS_OF_SYMBOL.get(symbol)
        if aami is None or (keep is not None and not keep(k, aami)):
            continue
        windows.append(model_window)
        rrs.append(feats.as_array())
        labels.append(LABELS.index(aami))
        samples.append(sample)
    n = len(labels)
    return BeatSet(
        np.asarray(windows, dtype=np.float32).reshape(n, WINDOW_LEN, N_WINDOW_CHANNELS),
        np.asarray(rrs, dtype=np.float32).reshape(n, N_RR_FEATURES),
        np.asarray(labels, dtype=np.int64),
        np.full(n, record_path.name + (AUGMENTED_SUFFIX + tag if tag else "")),
        np.asarray(samples, dtype=np.int64),
    )


def build_dataset(
    db_dir: Path,
    records: list[str] | tuple[str, ...],
    *,
    scaling: Scaling = DEFAULT_SCALING,
    resample_hz: float | None = None,
    transform: SignalTransform | None = None,
    tag: str = "",
) -> BeatSet:
    """Make the examples of several records of one database folder (see :func:`build_record`).

    ``transform`` and ``tag`` are handed to every :func:`build_record` (an augmented copy of
    each record, e.g. :data:`NEGATED_TAG` with :func:`negate`).

    Raises
    ------
    ValueError
        If a paced record is asked for.
    """
    paced = sorted(set(records) & set(PACED))
    if paced:
        msg = f"paced records {paced} are excluded from the beat dataset (de Chazal 2004)"
        raise ValueError(msg)
    sets = []
    for name in records:
        s = build_record(
            db_dir / name,
            scaling=scaling,
            resample_hz=resample_hz,
            transform=transform,
            tag=tag,
            align_to_detector=db_dir.name == SVDB,
        )
        logger.info("record %s%s: %d beats %s", name, tag, len(s), s.counts())
        sets.append(s)
    return BeatSet.concat(sets)


SECOND_LEAD_N_KEEP_EVERY: Final = 4
"""One N beat in this many goes into a second-lead copy (every S, V, F and Q beat does), as in
the noisy copies (:mod:`tools.beats.augment`)."""


def second_lead_dataset(
    db_dirs_records: list[tuple[Path, tuple[str, ...]]], *, scaling: Scaling = DEFAULT_SCALING
) -> BeatSet:
    """Second-lead copies (:data:`SECOND_LEAD_TAG`) of records, ``[(database folder, names)]``.

    Each record's other lead goes through :func:`build_record` with its beats moved onto the
    R-peaks the agent's detector finds in that lead; every S, V, F and Q beat and one N beat
    in :data:`SECOND_LEAD_N_KEEP_EVERY` is kept (every beat still feeds the RR and template
    trackers). Records without a second lead are skipped with a log line.
    """

    def keep(k: int, aami: str) -> bool:
        return aami != "N" or k % SECOND_LEAD_N_KEEP_EVERY == 0

    sets = []
    for db_dir, records in db_dirs_records:
        for name in records:
            try:
                s = build_record(
                    db_dir / name,
                    scaling=scaling,
                    tag=SECOND_LEAD_TAG,
                    keep=keep,
                    align_to_detector=True,
                    second_lead=True,
                )
            except ValueError as exc:
                logger.warning("no second-lead copy of %s: %s", name, exc)
                continue
            logger.info("record %s~%s: %d beats %s", name, SECOND_LEAD_TAG, len(s), s.counts())
            sets.append(s)
    return BeatSet.concat(sets)
