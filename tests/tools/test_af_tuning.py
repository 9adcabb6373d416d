"""The AF episode hysteresis: the tuner's choice (``tools.af.build.tune_episodes``) and the
fixed rule every shipped card carries (``EPISODE_FIXED``)."""

from __future__ import annotations

import numpy as np

from agent.rhythm.af import AF_CARD
from models.card import load_card
from tools.af.build import EPISODE_FIXED, tune_episodes
from tools.af.dataset import RrRecord
from tools.af.evaluate import FOLDS_DIR, DetectorRun, fold_cards

AF_S = (1200.0, 2400.0)


def _record(name: str, *, af: bool) -> tuple[RrRecord, DetectorRun]:
    # one hour at 60 bpm; with af, 20 min of AF in the middle that the model is sure of;
    # without, sinus rhythm where it says AF for 3 windows in a row every 80 beats
    t = np.arange(1.0, 3601.0)
    label = ((t > AF_S[0]) & (t <= AF_S[1]) & af).astype(np.int8)
    intervals = [AF_S] if af else []
    rec = RrRecord(name, np.full(t.size, 1000.0), t, label, label.astype(bool), 3600.0, intervals)
    win_t = t[31::4]  # one window every 4 beats once 32 are in
    centre = win_t - 16.0
    if af:
        p = np.where((centre >= AF_S[0]) & (centre < AF_S[1]), 0.99, 0.01)
    else:
        p = np.where(np.arange(win_t.size) % 20 < 3, 0.95, 0.05)
    run = DetectorRun(
        p_af=p.astype(np.float32),
        centre_start_s=centre,
        t_s=win_t,
        segment=np.zeros(win_t.size, np.int64),
    )
    return rec, run


def test_tuner_avoids_candidates_that_raise_false_episodes() -> None:
    runs = {"a": _record("a", af=True), "b": _record("b", af=True)}
    folds = {"a": 0, "b": 1}
    _, final, _ = tune_episodes(runs, folds)
    # AF alone cannot tell the candidates apart: the first of the grid wins, and it
    # confirms AF after 2 windows, so a burst of 3 windows at P 0.95 would be an episode
    assert final.n_on == 2
    runs["c"] = _record("c", af=False)
    folds["c"] = 1
    per_fold, final, table = tune_episodes(runs, folds)
    assert final.n_on > 3 or final.p_on > 0.95
    assert per_fold[0].n_on > 3 or per_fold[0].p_on > 0.95  # chosen on b and c
    best = max(table, key=lambda row: row["objective"])
    assert best["params"] == final
    assert best["false_alarms_per_hour"] == 0.0


def test_every_af_card_carries_the_fixed_hysteresis() -> None:
    # ./run.sh train af writes EPISODE_FIXED into the shipped card and every fold card
    # (the agent's out-of-fold figures go through the fold cards)
    fixed = EPISODE_FIXED.as_card()
    cards = [AF_CARD, *fold_cards(FOLDS_DIR)]
    assert len(cards) == 6
    for card in cards:
        assert load_card(card).preprocessing["episode"] == fixed, card.name
