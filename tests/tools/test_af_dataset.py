"""afdb RR series, labels, windows (the agent's own windows) and ectopy augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.rhythm.af_features import AF_HOP_BEATS, AF_N_FEATURES, AF_SEQ_LEN, RR_MIN_MS
from tools.af.dataset import (
    afdb_records,
    ectopy_augment,
    load_rr_record,
    record_rr_windows,
    record_windows,
)


def test_afdb_has_23_usable_records(data_dir: Path) -> None:
    names = afdb_records(data_dir / "afdb")
    assert len(names) == 23
    assert "00735" not in names
    assert "03665" not in names


def test_afdb_04126_labels_and_windows(data_dir: Path) -> None:
    rec = load_rr_record(data_dir / "afdb" / "04126")
    assert rec.rr_ms.size == 42859  # .qrs beats - 1
    assert rec.duration_s == pytest.approx(36823.04, abs=0.01)
    assert rec.af_intervals[2] == pytest.approx((1011.144, 1291.632), abs=0.001)
    inside = (rec.t_s > 1020.0) & (rec.t_s < 1280.0)
    assert np.all(rec.label[inside] == 1)
    assert np.all(rec.label[(rec.t_s > 1300.0) & (rec.t_s < 2900.0)] == 0)
    x, y, src = record_windows(rec, stride=AF_HOP_BEATS)
    assert x.shape == (len(y), AF_SEQ_LEN, AF_N_FEATURES)
    assert np.array_equal(y, rec.label[src])
    # about one window per 4 beats, minus the first 31 beats of each gap-free segment
    assert abs(len(y) - (rec.rr_ms.size - 31) / AF_HOP_BEATS) < 20
    rr, _y, _src = record_rr_windows(rec, stride=AF_HOP_BEATS)
    assert rr.shape == (len(y), AF_SEQ_LEN)
    assert float(rr.min()) >= RR_MIN_MS


def test_ectopy_augment_inserts_premature_beats_and_compensation() -> None:
    rng = np.random.default_rng(5)
    base = np.full((400, AF_SEQ_LEN), 800.0)
    out = ectopy_augment(base, rng)
    assert out.shape == base.shape
    assert np.array_equal(base, np.full((400, AF_SEQ_LEN), 800.0))  # input untouched
    short = out < 800.0 * 0.8 + 1e-9
    assert short.any(axis=1).mean() > 0.9  # nearly every window got ectopy
    assert float(out.min()) >= 800.0 * 0.5 - 1e-9
    # the interval after a premature beat is longer (compensatory pause, full or partial)
    rows, cols = np.nonzero(short[:, :-1])
    assert np.all(out[rows, cols + 1] >= 800.0)
    # total time never grows: a pause at most makes up for the premature beat
    assert np.all(out.sum(axis=1) <= base.sum(axis=1) + 1e-6)
