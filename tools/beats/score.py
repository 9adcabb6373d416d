"""AAMI EC57 beat-by-beat class scoring: per-class Se and +P, overall accuracy.

Two uses: the model card's metrics (reference R-peaks, so every beat is matched) and the
agent's own R-peaks against the annotations (then some beats are missed or extra).

Matching follows EC57 section 4.2 (as ``bxb``, its reference implementation): a detected beat
matches a reference beat within ``window_s`` (150 ms), one-to-one, closest pairs first (the
rule of :func:`tools.ec57.match_beats`). Counting, from the confusion matrix of matched pairs
plus bxb's "O" row and column (no beat):

- a reference beat of class c with no detection is a false negative of c (bxb ``Co``);
- a detected beat of class c with no reference beat is a false positive of c (bxb ``Oc``);
- Se(c) = TP / (TP + FN) and +P(c) = TP / (TP + FP), per class, gross over records;
- accuracy = correctly classified matched beats / (matched + unmatched reference beats).

All five classes are treated alike (the inter-patient literature's convention, de Chazal 2004),
so the figures are, if anything, conservative. Beside them, :meth:`ClassScores.ec57_ppv_pct`
gives VEB and SVEB +P as EC57's reference comparator ``bxb`` counts them: its VEB false
positives are ``Nv + Sv + Ov`` (a reference F or Q beat called V is not one: a fusion beat
holds ventricular activation) and its SVEB false positives ``Ns + Vs + Fs + Os`` (a Q beat
called S is not one); Se is the same in both countings. ``bxb``'s 5-minute learning period
(its default start) is not applied: every beat of a record counts.

References
----------
ANSI/AAMI EC57:2012, sections 3.1, 4.2 and Table 3. PhysioNet ``bxb``,
https://physionet.org/physiotools/wag/bxb-1.htm (WFDB ``app/bxb.c``, ``print_results``: the
VFP and SFP sums).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from tools.beats.dataset import LABELS
from tools.ec57 import MATCH_WINDOW_S

SCORED_CLASSES: Final = ("N", "S", "V", "F")
"""Classes reported (Q is too rare in MIT-BIH, 15 beats without paced records, to report)."""

EC57_PPV_EXEMPT: Final[dict[str, tuple[str, ...]]] = {"V": ("F", "Q"), "S": ("Q",)}
"""Reference classes that EC57's comparator ``bxb`` does not count as false positives of the
VEB (V) and SVEB (S) calls: ``VFP = Nv + Sv + Ov + Xv``, ``SFP = Ns + Vs + Fs + Os + Xs``
(WFDB ``app/bxb.c``; X, shutdown, does not occur here). EC57 defines +P for these two only."""


@dataclass(frozen=True, slots=True)
class ClassScores:
    """Beat-class scores.

    Attributes
    ----------
    confusion : NDArray[np.int64]
        Shape ``(6, 6)``: rows reference N S V F Q O, columns detected N S V F Q O, where O is
        "no beat" (row O: detections matching no reference beat; column O: missed reference
        beats); ``confusion[O, O]`` is 0.
    """

    confusion: NDArray[np.int64]

    @property
    def labels(self) -> tuple[str, ...]:
        """Row / column names."""
        return (*LABELS, "O")

    def tp(self, c: str) -> int:
        """Beats of reference class ``c`` called ``c``."""
        i = LABELS.index(c)
        return int(self.confusion[i, i])

    def se_pct(self, c: str) -> float:
        """Sensitivity of class ``c``, % (NaN when there is no reference beat of ``c``)."""
        i = LABELS.index(c)
        n = int(self.confusion[i, :].sum())
        return 100.0 * self.tp(c) / n if n else float("nan")

    def ppv_pct(self, c: str) -> float:
        """Positive predictivity of class ``c``, % (NaN when nothing was called ``c``)."""
        i = LABELS.index(c)
        n = int(self.confusion[:, i].sum())
        return 100.0 * self.tp(c) / n if n else float("nan")

    def ec57_ppv_pct(self, c: str) -> float:
        """Positive predictivity of ``c`` as EC57's comparator ``bxb`` counts it, %.

        The calls of ``c`` on reference beats of the classes in :data:`EC57_PPV_EXEMPT`
        are left out of the denominator (VEB: reference F and Q called V; SVEB: reference Q
        called S). NaN when nothing counted was called ``c``.

        Raises
        ------
        ValueError
            If ``c`` is not V or S (EC57 defines VEB and SVEB +P only).
        """
        if c not in EC57_PPV_EXEMPT:
            msg = f"EC57 defines +P for V and S only, not {c!r}"
            raise ValueError(msg)
        i = LABELS.index(c)
        exempt = sum(int(self.confusion[LABELS.index(x), i]) for x in EC57_PPV_EXEMPT[c])
        n = int(self.confusion[:, i].sum()) - exempt
        return 100.0 * self.tp(c) / n if n else float("nan")

    def f1_pct(self, c: str) -> float:
        """Harmonic mean of Se and +P of ``c``, % (0 when either is 0 or NaN)."""
        se, ppv = self.se_pct(c), self.ppv_pct(c)
        if not (se > 0 and ppv > 0):
            return 0.0
        return 2 * se * ppv / (se + ppv)

    @property
    def accuracy_pct(self) -> float:
        """Correctly classified reference beats / all reference beats, %."""
        k = len(LABELS)
        n = int(self.confusion[:k, :].sum())
        return 100.0 * float(np.trace(self.confusion[:k, :k])) / n if n else float("nan")

    @property
    def n_reference(self) -> int:
        """Number of reference beats."""
        return int(self.confusion[: len(LABELS), :].sum())

    def __add__(self, other: ClassScores) -> ClassScores:
        return ClassScores(self.confusion + other.confusion)

    def as_dict(self) -> dict[str, object]:
        """Return the scores as JSON-ready values (percentages rounded to 0.01)."""
        per_class = {
            c: {
                "se_pct": round(self.se_pct(c), 2),
                "ppv_pct": round(self.ppv_pct(c), 2),
                "n_reference": int(self.confusion[LABELS.index(c), :].sum()),
            }
            for c in SCORED_CLASSES
        }
        return {
            "accuracy_pct": round(self.accuracy_pct, 2),
            "n_reference": self.n_reference,
            "classes": per_class,
            "ec57_ppv_pct": {c: round(self.ec57_ppv_pct(c), 2) for c in EC57_PPV_EXEMPT},
            "confusion": {
                "rows_reference": list(self.labels),
                "columns_detected": list(self.labels),
                "counts": self.confusion.tolist(),
            },
        }

    def to_markdown(self) -> str:
        """Return a Markdown table: per-class Se / +P and counts, accuracy, confusion."""
        lines = ["| class | reference beats | Se % | +P % |", "|---|---|---|---|"]
        for c in SCORED_CLASSES:
            n = int(self.confusion[LABELS.index(c), :].sum())
            lines.append(f"| {c} | {n} | {self.se_pct(c):.2f} | {self.ppv_pct(c):.2f} |")
        lines.append(f"\nAccuracy {self.accuracy_pct:.2f} % over {self.n_reference} beats.")
        lines.append(
            f"As EC57's comparator bxb counts +P (reference F and Q beats called V, and Q beats "
            f"called S, not counted against it): V +P {self.ec57_ppv_pct('V'):.2f} %, S +P "
            f"{self.ec57_ppv_pct('S'):.2f} %.\n"
        )
        lines.append("| ref \\ detected | " + " | ".join(self.labels) + " |")
        lines.append("|---" * (len(self.labels) + 1) + "|")
        for name, row in zip(self.labels, self.confusion.tolist(), strict=True):
            lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
        return "\n".join(lines)


def confusion_from_labels(ref: NDArray[np.integer], det: NDArray[np.integer]) -> ClassScores:
    """Scores of already paired beats (class indices into :data:`LABELS`, shape ``(n,)``)."""
    k = len(LABELS)
    m = np.zeros((k + 1, k + 1), dtype=np.int64)
    np.add.at(m, (np.asarray(ref, dtype=np.int64), np.asarray(det, dtype=np.int64)), 1)
    return ClassScores(m)


MIN_PATIENT_BEATS: Final = 20
"""A patient counts in :func:`per_patient_sensitivity` with at least this many beats of the
class (fewer make a sensitivity of a handful of beats, 0 or 100 % by chance)."""


def per_patient_sensitivity(
    ref: NDArray[np.integer],
    det: NDArray[np.integer],
    patients: NDArray[np.str_],
    label: str,
    min_beats: int = MIN_PATIENT_BEATS,
) -> dict[str, object]:
    """Sensitivity of one class patient by patient, and its mean over patients.

    Pooled (gross) sensitivity weighs a patient by his beats: DS2's S sensitivity is three
    quarters record 232's (1,381 of 1,836 S beats), so a model can halve it while no fold
    shows a change (docs/beat_classifier.md, session 21). The mean over patients weighs each
    patient alike (EC57's "average statistics", 3.1, are the record-by-record mean).

    Parameters
    ----------
    ref, det
        Reference and detected class indices into :data:`LABELS` of paired beats, shape
        ``(n,)``.
    patients
        The patient (record) of each beat, shape ``(n,)``.
    label
        The class, one of :data:`LABELS`.
    min_beats
        Patients with fewer reference beats of the class are left out.

    Returns
    -------
    dict
        ``mean_se_pct`` (None when no patient counts), ``min_se_pct``, ``n_patients`` and
        ``se_pct`` per patient (sorted by name).

    Raises
    ------
    ValueError
        If ``label`` is not a class of :data:`LABELS`.
    """
    if label not in LABELS:
        msg = f"unknown beat class {label!r} (one of {', '.join(LABELS)})"
        raise ValueError(msg)
    c = LABELS.index(label)
    ref = np.asarray(ref)
    det = np.asarray(det)
    patients = np.asarray(patients)
    per: dict[str, float] = {}
    for patient in sorted(set(patients[ref == c].tolist())):
        mine = (patients == patient) & (ref == c)
        if int(mine.sum()) >= min_beats:
            per[patient] = round(100.0 * float((det[mine] == c).mean()), 2)
    values = list(per.values())
    return {
        "mean_se_pct": round(float(np.mean(values)), 2) if values else None,
        "min_se_pct": min(values) if values else None,
        "n_patients": len(values),
        "se_pct": per,
    }


def _pairs(
    ref: NDArray[np.int64], det: NDArray[np.int64], window_n: float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """One-to-one pairs within ``window_n`` samples, closest first (as ``match_beats``)."""
    lo = np.searchsorted(det, ref - window_n, side="left")
    hi = np.searchsorted(det, ref + window_n, side="right")
    counts = hi - lo
    pair_ref = np.repeat(np.arange(ref.size), counts)
    starts = np.repeat(lo, counts)
    offsets = np.arange(pair_ref.size) - np.repeat(np.cumsum(counts) - counts, counts)
    pair_det = starts + offsets
    dist = np.abs(det[pair_det] - ref[pair_ref])
    ref_used = np.zeros(ref.size, dtype=bool)
    det_used = np.zeros(det.size, dtype=bool)
    out_r: list[int] = []
    out_d: list[int] = []
    for j in np.lexsort((pair_ref, dist)).tolist():
        r, d = int(pair_ref[j]), int(pair_det[j])
        if ref_used[r] or det_used[d]:
            continue
        ref_used[r] = det_used[d] = True
        out_r.append(r)
        out_d.append(d)
    return np.asarray(out_r, dtype=np.int64), np.asarray(out_d, dtype=np.int64)


def score_classes(
    ref_samples: NDArray[np.integer],
    ref_classes: NDArray[np.integer] | list[str],
    det_samples: NDArray[np.integer],
    det_classes: NDArray[np.integer] | list[str],
    fs_hz: float,
    window_s: float = MATCH_WINDOW_S,
) -> ClassScores:
    """Score detected, classified beats against reference beats (AAMI EC57, module docstring).

    Parameters
    ----------
    ref_samples, det_samples
        Sample indices of the reference and detected beats at ``fs_hz``, shapes ``(n_ref,)``
        and ``(n_det,)``.
    ref_classes, det_classes
        Their AAMI classes, as letters (``"V"``) or indices into :data:`LABELS`, same lengths.
    fs_hz
        Sampling rate of both index arrays, Hz.
    window_s
        Matching window, s (150 ms in EC57).

    Returns
    -------
    ClassScores
        The 6 × 6 confusion matrix with "no beat" row and column.

    Raises
    ------
    ValueError
        If lengths differ, a class is unknown, or ``fs_hz`` / ``window_s`` is not positive.
    """
    if fs_hz <= 0 or window_s <= 0:
        msg = f"fs_hz and window_s must be positive, got {fs_hz} and {window_s}"
        raise ValueError(msg)
    ref_c = _class_indices(ref_classes)
    det_c = _class_indices(det_classes)
    ref_s = np.asarray(ref_samples, dtype=np.int64)
    det_s = np.asarray(det_samples, dtype=np.int64)
    if ref_s.size != ref_c.size or det_s.size != det_c.size:
        msg = "samples and classes must have the same length"
        raise ValueError(msg)
    r_order, d_order = np.argsort(ref_s, kind="stable"), np.argsort(det_s, kind="stable")
    ref_s, ref_c = ref_s[r_order], ref_c[r_order]
    det_s, det_c = det_s[d_order], det_c[d_order]
    pr, pd = _pairs(ref_s, det_s, window_s * fs_hz)
    k = len(LABELS)
    m = np.zeros((k + 1, k + 1), dtype=np.int64)
    np.add.at(m, (ref_c[pr], det_c[pd]), 1)
    missed = np.ones(ref_s.size, dtype=bool)
    missed[pr] = False
    extra = np.ones(det_s.size, dtype=bool)
    extra[pd] = False
    np.add.at(m, (ref_c[missed], np.full(int(missed.sum()), k)), 1)
    np.add.at(m, (np.full(int(extra.sum()), k), det_c[extra]), 1)
    return ClassScores(m)


def _class_indices(classes: NDArray[np.integer] | list[str]) -> NDArray[np.int64]:
    arr = np.asarray(classes)
    if arr.dtype.kind in "US":
        unknown = sorted(set(arr.tolist()) - set(LABELS))
        if unknown:
            msg = f"unknown AAMI classes {unknown}"
            raise ValueError(msg)
        return np.asarray([LABELS.index(str(c)) for c in arr.tolist()], dtype=np.int64)
    idx = arr.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= len(LABELS)):
        msg = f"class indices must be in [0, {len(LABELS)}), got {idx.min()}..{idx.max()}"
        raise ValueError(msg)
    return idx
