"""AAMI EC57 class scoring (tools.beats.score)."""

from __future__ import annotations

import numpy as np
import pytest

from tools.beats.score import (
    ClassScores,
    confusion_from_labels,
    per_patient_sensitivity,
    score_classes,
)

FS = 360.0


def test_perfect_classification() -> None:
    ref = np.array([100, 500, 900, 1300])
    s = score_classes(ref, ["N", "V", "N", "S"], ref + 3, ["N", "V", "N", "S"], FS)
    assert s.se_pct("V") == s.ppv_pct("V") == 100.0
    assert s.accuracy_pct == 100.0
    assert s.n_reference == 4


def test_misclassification_counts_against_both_classes() -> None:
    ref = np.array([100, 500, 900, 1300])
    s = score_classes(ref, ["N", "V", "V", "N"], ref, ["N", "V", "N", "V"], FS)
    assert s.se_pct("V") == pytest.approx(50.0)  # one of two V called V
    assert s.ppv_pct("V") == pytest.approx(50.0)  # one of two V calls is a V
    assert s.se_pct("N") == pytest.approx(50.0)
    assert s.accuracy_pct == pytest.approx(50.0)


def test_missed_reference_beat_is_a_false_negative_of_its_class() -> None:
    ref = np.array([100, 500, 900])
    s = score_classes(ref, ["N", "V", "N"], np.array([100, 900]), ["N", "N"], FS)
    assert s.se_pct("V") == 0.0
    assert np.isnan(s.ppv_pct("V"))  # nothing was called V
    assert s.confusion[2, 5] == 1  # V row, "no beat" column
    assert s.accuracy_pct == pytest.approx(200 / 3)


def test_extra_detection_is_a_false_positive_of_its_class() -> None:
    ref = np.array([100, 900])
    s = score_classes(ref, ["V", "N"], np.array([100, 500, 900]), ["V", "V", "N"], FS)
    assert s.se_pct("V") == 100.0
    assert s.ppv_pct("V") == pytest.approx(50.0)
    assert s.confusion[5, 2] == 1  # "no beat" row, V column
    assert s.accuracy_pct == 100.0  # accuracy is over reference beats


def test_match_window_is_150_ms() -> None:
    ref = np.array([1000])
    inside = score_classes(ref, ["V"], np.array([1000 + 54]), ["V"], FS)  # 150 ms
    outside = score_classes(ref, ["V"], np.array([1000 + 55]), ["V"], FS)
    assert inside.se_pct("V") == 100.0
    assert outside.se_pct("V") == 0.0
    assert outside.ppv_pct("V") == 0.0


def test_closest_detection_wins() -> None:
    ref = np.array([1000])
    s = score_classes(ref, ["V"], np.array([960, 1005]), ["N", "V"], FS)
    assert s.tp("V") == 1
    assert s.confusion[5, 0] == 1  # the farther detection (an N) is the extra one


def test_indices_and_letters_agree_and_markdown() -> None:
    ref = np.array([0, 1, 2, 3, 2])
    det = np.array([0, 2, 2, 3, 1])
    a = confusion_from_labels(ref, det)
    b = score_classes(np.arange(5) * 400, ref, np.arange(5) * 400, det, FS)
    np.testing.assert_array_equal(a.confusion, b.confusion)
    md = (a + b).to_markdown()
    assert "| V | 4 |" in md
    assert "Accuracy 60.00 %" in md
    assert a.as_dict()["accuracy_pct"] == 60.0


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="unknown AAMI"):
        score_classes(np.array([1]), ["X"], np.array([1]), ["N"], FS)
    with pytest.raises(ValueError, match="same length"):
        score_classes(np.array([1, 2]), ["N"], np.array([1]), ["N"], FS)
    with pytest.raises(ValueError, match="positive"):
        score_classes(np.array([1]), ["N"], np.array([1]), ["N"], 0.0)


def test_per_patient_sensitivity_weighs_every_patient_alike() -> None:
    """A patient with many S beats dominates the pooled Se, not the mean over patients.

    Patient 232 has 100 S beats, 90 found; 202 has 30, none found; 100 has 5 (too few to
    count): pooled 95 / 135 = 70.4 %, mean over the two counted patients (90 + 0) / 2 = 45 %.
    """
    s, n = 1, 0
    ref = np.array([s] * 100 + [s] * 30 + [s] * 5 + [n] * 10)
    det = np.array([s] * 90 + [n] * 10 + [n] * 30 + [s] * 5 + [s] * 10)
    patients = np.array(["232"] * 100 + ["202"] * 30 + ["100"] * 5 + ["232"] * 10)
    out = per_patient_sensitivity(ref, det, patients, "S")
    assert out["se_pct"] == {"202": 0.0, "232": 90.0}
    assert out["mean_se_pct"] == 45.0
    assert out["min_se_pct"] == 0.0
    assert out["n_patients"] == 2
    pooled = confusion_from_labels(ref, det).se_pct("S")
    assert pooled == pytest.approx(100 * 95 / 135, abs=0.01)
    none = per_patient_sensitivity(ref, det, patients, "V")
    assert none["mean_se_pct"] is None
    assert none["n_patients"] == 0
    with pytest.raises(ValueError, match="X"):
        per_patient_sensitivity(ref, det, patients, "X")


def test_ec57_ppv_leaves_out_what_bxb_does_not_count() -> None:
    # rows reference N S V F Q O, columns detected N S V F Q O (tools.beats.dataset.LABELS + O)
    m = np.zeros((6, 6), dtype=np.int64)
    m[2, 2] = 90  # V called V
    m[0, 2] = 4  # N called V: a VEB false positive in both countings
    m[1, 2] = 1  # S called V: likewise
    m[5, 2] = 1  # an extra detection called V: likewise
    m[3, 2] = 3  # F called V: not against VEB +P in bxb (VFP = Nv + Sv + Ov)
    m[4, 2] = 1  # Q called V: likewise
    m[1, 1] = 40  # S called S
    m[0, 1] = 8  # N called S, V called S, F called S, an extra S: SVEB false positives
    m[2, 1] = 1
    m[3, 1] = 1
    m[5, 1] = 1
    m[4, 1] = 2  # Q called S: not against SVEB +P (SFP = Ns + Vs + Fs + Os)
    s = ClassScores(m)
    assert s.ppv_pct("V") == pytest.approx(100 * 90 / 100)
    assert s.ec57_ppv_pct("V") == pytest.approx(100 * 90 / 96)
    assert s.ppv_pct("S") == pytest.approx(100 * 40 / 53)
    assert s.ec57_ppv_pct("S") == pytest.approx(100 * 40 / 51)
    assert s.se_pct("V") == pytest.approx(100 * 90 / 91)  # one V called S: Se as before
    assert s.as_dict()["ec57_ppv_pct"] == {"V": round(100 * 90 / 96, 2), "S": round(4000 / 51, 2)}
    assert "V +P 93.75 %, S +P 78.43 %" in s.to_markdown()
    with pytest.raises(ValueError, match="V and S only"):
        s.ec57_ppv_pct("N")
