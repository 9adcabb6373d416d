"""The out-of-fold alarm sets: every DS1 and svdb record has exactly one beat fold model, the
one whose training never saw it, and the fold models kept in the repository are those cards."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.card import load_card
from tools.beats.dataset import DS1, DS2
from tools.beats.train import FOLDS
from tools.evaluate.alarms import BEAT_FOLDS, SETS, beat_fold_card


def test_every_training_record_has_the_fold_that_held_it_out() -> None:
    svdb = [r for fold in FOLDS for r in fold if r.startswith("8")]
    assert len(svdb) == 40
    for record in (*DS1, *svdb):
        card = load_card(beat_fold_card(record))
        assert record in card.training["held_out"]
    assert {beat_fold_card(r) for r in (*DS1, *svdb)} == {
        BEAT_FOLDS / f"fold{k}" / "beat_cnn.json" for k in range(len(FOLDS))
    }


def test_a_record_outside_the_folds_is_refused() -> None:
    with pytest.raises(KeyError, match="100"):
        beat_fold_card(DS2[0])


def test_a_missing_fold_model_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"tools\.beats cv"):
        beat_fold_card("101", tmp_path)


def test_out_of_fold_sets_are_the_in_sample_sets_relabelled() -> None:
    for name in ("mitdb-ds1", "svdb", "nstdb"):
        base, cv = SETS[name], SETS[f"{name}-cv"]
        assert (cv.db, cv.records, cv.paced) == (base.db, base.records, base.paced)
        assert cv.out_of_fold
        assert not base.out_of_fold
