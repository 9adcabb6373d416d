"""Beat dataset: svdb records, patient-wise folds and noisy copies (tools.beats)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb

from tools.beats.augment import N_KEEP_EVERY, load_noise, noisy_copy
from tools.beats.dataset import (
    DS1,
    DS2,
    LABELS,
    NEGATED_TAG,
    SECOND_LEAD_N_KEEP_EVERY,
    SECOND_LEAD_TAG,
    BeatSet,
    align_to_detected_peaks,
    build_dataset,
    build_record,
    is_negated,
    negate,
    patient_of,
    read_lead_uv,
    second_lead_dataset,
    svdb_records,
)
from tools.beats.train import DS1_FOLDS, FOLDS, SVDB_FOLDS, TrainConfig, training_beats
from tools.ec57 import BEAT_SYMBOLS


def test_folds_are_patient_wise_and_never_touch_ds2() -> None:
    ds1 = [r for f in DS1_FOLDS for r in f]
    svdb = [r for f in SVDB_FOLDS for r in f]
    assert sorted(ds1) == sorted(DS1)  # every DS1 record in exactly one fold
    assert len(svdb) == len(set(svdb)) == 40
    assert all(int(r) % 2 == 0 and 800 <= int(r) <= 894 for r in svdb)  # the even half only
    assert not set(ds1 + svdb) & set(DS2)
    assert [len(f) for f in FOLDS] == [16, 16, 15, 15]


def test_patient_of_strips_the_augmentation_tag() -> None:
    records = np.array(["119", "119~em12", "800~ma7"])
    assert patient_of(records).tolist() == ["119", "119", "800"]


def test_only_the_reversed_lead_copies_are_negated() -> None:
    records = np.array(["119", "119~em12", "119~neg", "800~neg", "800~ma7"])
    assert is_negated(records).tolist() == [False, False, True, True, False]
    assert patient_of(records).tolist() == ["119"] * 3 + ["800"] * 2
    x = np.array([1.0, -2.5, 0.0], dtype=np.float32)
    assert negate(x, 360.0).tolist() == [-1.0, 2.5, 0.0]


@pytest.mark.data
def test_reversed_lead_copy_has_the_same_beats_turned_over(data_dir: Path) -> None:
    """svdb 800 turned over: the same 1,881 beats and RR features, each window negated.

    The R-peaks it is aligned to come from the same detector (a rectified band), so nothing
    but the sign of the windows moves: median and SD scaling commute with turning over.
    """
    up = build_dataset(data_dir / "svdb", ["800"])
    down = build_dataset(data_dir / "svdb", ["800"], transform=negate, tag=NEGATED_TAG)
    assert down.counts() == up.counts() == {"N": 1844, "S": 30, "V": 6, "F": 1, "Q": 0}
    assert set(down.records.tolist()) == {"800~neg"}
    assert np.array_equal(down.labels, up.labels)
    assert np.array_equal(down.rr, up.rr)
    assert np.allclose(down.windows, -up.windows, atol=1e-4)


@pytest.mark.data
def test_svdb_record_800_at_its_own_128_hz(data_dir: Path) -> None:
    """svdb 800: 1,881 labelled beats with RR features and a window (N 1844, S 30, V 6, F 1)."""
    assert "800" in svdb_records(data_dir)
    beats = build_record(data_dir / "svdb" / "800", align_to_detector=True)
    assert beats.counts() == {"N": 1844, "S": 30, "V": 6, "F": 1, "Q": 0}
    assert beats.windows.shape == (1881, 96, 2)
    assert set(beats.records.tolist()) == {"800"}
    assert np.all(np.isfinite(beats.windows))


@pytest.mark.data
def test_noisy_copy_keeps_every_ectopic_beat_and_a_quarter_of_n(data_dir: Path) -> None:
    clean = build_record(data_dir / "svdb" / "800", align_to_detector=True)
    noisy = noisy_copy(data_dir / "svdb" / "800", load_noise(data_dir / "nstdb"))
    counts = noisy.counts()
    assert {c: counts[c] for c in "SVF"} == {c: clean.counts()[c] for c in "SVF"}
    assert abs(counts["N"] - clean.counts()["N"] / N_KEEP_EVERY) < 30
    assert set(patient_of(noisy.records).tolist()) == {"800"}
    assert all(r.startswith("800~") for r in noisy.records.tolist())
    # same beats, different signal: the S beats' windows changed but are still correlated
    s = LABELS.index("S")
    w_clean = clean.windows[clean.labels == s][:, :, 0]
    w_noisy = noisy.windows[noisy.labels == s][:, :, 0]
    r = [np.corrcoef(a, b)[0, 1] for a, b in zip(w_clean, w_noisy, strict=True)]
    assert 0.2 < float(np.median(r)) < 0.999


@pytest.mark.data
def test_second_lead_copy_is_the_other_lead_with_every_ectopic_beat(data_dir: Path) -> None:
    """mitdb 114 (MLII is its channel 1) and svdb 800: the copy reads the other lead.

    Same ectopic beats as the record (each sits on that lead's own R-peak), a quarter of its N
    beats, named ``<record>~lead2`` and held out with the record's patient.
    """
    mlii, _ = read_lead_uv(data_dir / "mitdb" / "114")
    v5, fs_hz = read_lead_uv(data_dir / "mitdb" / "114", second=True)
    header = wfdb.rdheader(str(data_dir / "mitdb" / "114"))
    assert header.sig_name == ["V5", "MLII"]
    v5_direct = wfdb.rdrecord(str(data_dir / "mitdb" / "114"), channels=[0]).p_signal[:, 0]
    assert fs_hz == 360.0
    assert np.allclose(v5, v5_direct * 1000.0, atol=1e-3)
    assert not np.allclose(v5, mlii)

    clean = build_record(data_dir / "svdb" / "800", align_to_detector=True)
    copy = second_lead_dataset([(data_dir / "svdb", ("800",))])
    counts = copy.counts()
    assert {c: counts[c] for c in "SV"} == {c: clean.counts()[c] for c in "SV"}
    assert abs(counts["N"] - clean.counts()["N"] / SECOND_LEAD_N_KEEP_EVERY) < 30
    assert set(copy.records.tolist()) == {f"800~{SECOND_LEAD_TAG}"}
    assert set(patient_of(copy.records).tolist()) == {"800"}
    assert np.all(np.isfinite(copy.windows))


@pytest.mark.data
def test_svdb_beats_are_moved_onto_the_agents_r_peaks(data_dir: Path) -> None:
    """svdb 880's annotations sit ~31 ms before the R-peak the agent's detector finds."""
    record = data_dir / "svdb" / "880"
    x_uv, fs_hz = read_lead_uv(record)
    ann = wfdb.rdann(str(record), "atr")
    samples = np.asarray(
        [s for s, y in zip(ann.sample, ann.symbol, strict=True) if y in BEAT_SYMBOLS]
    )
    aligned = align_to_detected_peaks(x_uv, fs_hz, samples)
    shift_ms = (aligned - samples) / fs_hz * 1000.0
    assert aligned.shape == samples.shape
    assert np.all(np.diff(aligned) > 0)
    assert 23.0 < float(np.median(shift_ms)) < 40.0
    assert float(np.mean(np.abs(shift_ms) <= 150.0)) > 0.99


def test_reversed_lead_copies_are_trained_on_only_when_asked() -> None:
    """``training_beats``: the shipped config leaves the reversed copies out (scored only)."""
    records = np.array(["101", "101~neg", "101~neg", "101~em12", "101~neg", "101~neg"])
    n = records.size
    data = BeatSet(
        np.zeros((n, 96, 2), np.float32),
        np.zeros((n, 9), np.float32),
        np.arange(n, dtype=np.int64) % 2,
        records,
        np.arange(n, dtype=np.int64),
    )
    off = training_beats(data, TrainConfig())
    assert off.records.tolist() == ["101", "101~em12"]
    on = training_beats(data, TrainConfig(polarity_augment=True))
    assert on.records.tolist() == records.tolist()
    half = training_beats(data, TrainConfig(polarity_augment=True, polarity_keep_every=2))
    assert half.samples.tolist() == [0, 1, 3, 4]  # every other reversed beat, the rest kept


def test_a_saved_set_replaces_the_cache_whole_and_leaves_nothing_beside_it(
    tmp_path: Path,
) -> None:
    """``BeatSet.save`` writes beside the path and renames: a reader never sees half a file."""
    rng = np.random.default_rng(7)

    def beats(n: int) -> BeatSet:
        return BeatSet(
            rng.normal(size=(n, 96, 2)).astype(np.float32),
            rng.normal(size=(n, 9)).astype(np.float32),
            rng.integers(0, 5, n),
            np.array([f"8{i:02d}" for i in range(n)]),
            np.arange(n, dtype=np.int64) * 100,
        )

    path = tmp_path / "svdb_zscore_key.npz"
    beats(50).save(path)
    second = beats(3)
    second.save(path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    back = BeatSet.load(path)
    assert back.windows.shape == (3, 96, 2)
    np.testing.assert_array_equal(back.windows, second.windows)
    assert back.records.tolist() == ["800", "801", "802"]
