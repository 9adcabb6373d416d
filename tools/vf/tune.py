"""Tuning of the VF detector: logistic regression plus vote threshold and k-of-n confirmation.

``tune_params(windows)`` is the whole tuning procedure, a pure function of the training
records' windows:

1. training windows: VF if at least ``POS_MIN_FRAC`` of the window is annotated VF/VFL,
   non-VF if none of it is VF or VT (NOISE, asystole and every other rhythm included as
   negatives; VT windows and windows straddling a VF border are left out);
2. features standardised with the training mean and standard deviation; an L2-regularised
   logistic regression (IRLS) with the two classes weighted equally;
3. the vote threshold and the confirmation counts ``(k_on, n_on)`` chosen from small grids by
   replaying the detector on every training record and minimising :func:`tuning_cost`.

Cross-validation applies it leave-one-record-out (patient-wise: one vfdb or mitdb record is
one patient; MIT-BIH DS2 is never loaded), so each record is scored by parameters tuned
without it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
from numpy.typing import NDArray

from agent.rhythm.vf import MIN_STD_UV, VfParams, vf_window_probability
from tools.vf.dataset import WindowSet
from tools.vf.scoring import RecordScore, score_changes, simulate_votes

logger = logging.getLogger(__name__)

__all__ = [
    "K_OF_N_GRID",
    "THRESHOLD_GRID",
    "fit_logistic",
    "record_votes",
    "tune_params",
    "tuning_cost",
]

POS_MIN_FRAC: Final = 0.8
"""A training window is VF when at least 80 % of it is annotated VF/VFL."""
L2: Final = 1.0
"""Ridge penalty on the standardised coefficients (intercept unpenalised): with ~80 000
windows it only matters for nearly collinear features (TCSC/PSR, A2/FSMN)."""
NOISE_WEIGHT: Final = 1.0
"""Weight of a non-VF window annotated NOISE relative to other non-VF windows. 5 and 20 were
tried (leave-one-record-out, 6 s windows): false alarms did not fall (vfdb 419 NOISE looks
like its flutter) and DS1/nstdb got worse, so NOISE windows count like any other."""
THRESHOLD_GRID: Final = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
"""Vote thresholds tried (window VF probability)."""
K_OF_N_GRID: Final = ((2, 2), (2, 3), (3, 3), (3, 4), (4, 4), (4, 5), (5, 5))
"""Confirmation counts tried: ``k_on`` VF votes among the last ``n_on`` windows."""
N_OFF: Final = 3
"""Non-VF windows in a row that end the VF state (not tuned: the vfib alarm is latched, the
offset only matters for counting a new onset)."""
SUSTAINED_S: Final = 10.0
"""Episodes at least this long must be alarmed within ``ALARM_DEADLINE_S``."""
ALARM_DEADLINE_S: Final = 10.0
"""Alarm deadline after a VF onset (the issue's target; bedside monitors alarm VF within
10 s, cf. IEC 60601-2-27:2011 201.7.9.2.9.101 b) 4) alarm-time disclosure)."""
SHORT_MIN_S: Final = 4.0
"""Shorter VF bursts (vfdb 418/419 have dozens of 1-3 s flutter runs) are not counted when
tuning: a window-based detector cannot and a monitor should not alarm on them."""
MISS_SUSTAINED_COST: Final = 10.0
"""Cost of a sustained episode not alarmed within the deadline, in false alarms."""
MISS_SHORT_COST: Final = 2.0
"""Cost of a 4-10 s episode never alarmed, in false alarms."""
DELAY_COST_PER_S: Final = 0.05
"""Cost per second of delay on sustained episodes (tie-breaker), in false alarms."""


def fit_logistic(
    x: NDArray[np.float64], y: NDArray[np.bool_], weight: NDArray[np.float64], l2: float = L2
) -> tuple[NDArray[np.float64], float]:
    """Weighted L2 logistic regression by iteratively reweighted least squares.

    Parameters
    ----------
    x : NDArray[np.float64]
        Standardised features, shape ``(n_windows, n_features)``.
    y : NDArray[np.bool_]
        Labels, shape ``(n_windows,)``.
    weight : NDArray[np.float64]
        Sample weights, shape ``(n_windows,)``.
    l2 : float
        Ridge penalty on the coefficients (not the intercept).

    Returns
    -------
    tuple[NDArray[np.float64], float]
        Coefficients ``(n_features,)`` and intercept.
    """
    a = np.hstack([x, np.ones((x.shape[0], 1))])
    beta = np.zeros(a.shape[1])
    pen = np.full(a.shape[1], l2)
    pen[-1] = 0.0
    t = y.astype(np.float64)
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ beta, -50, 50)))
        g = a.T @ (weight * (p - t)) + pen * beta
        h = (a * (weight * p * (1 - p))[:, None]).T @ a + np.diag(pen)
        step = np.linalg.solve(h, g)
        beta -= step
        if float(np.max(np.abs(step))) < 1e-8:
            break
    return beta[:-1], float(beta[-1])


def record_votes(ws: WindowSet, params: VfParams) -> NDArray[np.float64]:
    """VF probability of each window as the detector computes it (amplitude gate applied)."""
    prob = vf_window_probability(ws.features, params)
    return np.where(ws.features[:, -1] >= np.log10(MIN_STD_UV), prob, 0.0)


def tuning_cost(scores: Sequence[RecordScore]) -> float:
    """Cost minimised by the grid search, in units of one false VF alarm.

    ``MISS_SUSTAINED_COST`` per VF episode of at least ``SUSTAINED_S`` not alarmed within
    ``ALARM_DEADLINE_S``, ``MISS_SHORT_COST`` per 4-10 s episode never alarmed, 1 per false
    VF alarm, and ``DELAY_COST_PER_S`` per second of delay on sustained episodes.
    """
    cost = 0.0
    for sc in scores:
        cost += sc.false_vf_alarms
        for ep in sc.episodes:
            if ep.kind != "VF" or ep.duration_s < SHORT_MIN_S:
                continue
            if ep.duration_s >= SUSTAINED_S:
                if ep.delay_s is None or ep.delay_s > ALARM_DEADLINE_S:
                    cost += MISS_SUSTAINED_COST
                else:
                    cost += DELAY_COST_PER_S * ep.delay_s
            elif not ep.detected:
                cost += MISS_SHORT_COST
    return cost


@dataclass(frozen=True, slots=True)
class _Split:
    x: NDArray[np.float64]
    y: NDArray[np.bool_]
    noise: NDArray[np.bool_]


def _training_windows(windows: Sequence[WindowSet]) -> _Split:
    xs, ys, ns = [], [], []
    for ws in windows:
        pos = ws.vf_frac >= POS_MIN_FRAC
        neg = (ws.vf_frac == 0.0) & (ws.vt_frac == 0.0)
        keep = pos | neg
        xs.append(ws.features[keep])
        ys.append(pos[keep])
        ns.append(ws.noise_frac[keep] > 0.0)
    return _Split(np.concatenate(xs), np.concatenate(ys), np.concatenate(ns))


def tune_params(windows: Sequence[WindowSet], base: VfParams) -> VfParams:
    """Tune the classifier and confirmation on the given records.

    Parameters
    ----------
    windows : Sequence[WindowSet]
        Windows of the training records, computed with ``base.window_s`` / ``base.hop_s``.
    base : VfParams
        Supplies the window geometry; everything else is tuned.

    Returns
    -------
    VfParams
        Tuned parameters.

    Raises
    ------
    ValueError
        If the training windows hold no VF window or no non-VF window.
    """
    split = _training_windows(windows)
    n_pos = int(split.y.sum())
    if n_pos == 0 or n_pos == split.y.size:
        msg = "tuning needs both VF and non-VF windows"
        raise ValueError(msg)
    mean = split.x.mean(axis=0)
    scale = split.x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (split.x - mean) / scale
    neg_w = np.where(split.noise, NOISE_WEIGHT, 1.0)
    neg_w = neg_w / neg_w[~split.y].sum()
    weight = np.where(split.y, 0.5 / n_pos, 0.5 * neg_w) * split.y.size
    coef, intercept = fit_logistic(z, split.y, weight)
    params = replace(
        base,
        feature_mean=tuple(float(v) for v in mean),
        feature_scale=tuple(float(v) for v in scale),
        coef=tuple(float(v) for v in coef),
        intercept=intercept,
        n_off=N_OFF,
    )
    probs = [record_votes(ws, params) for ws in windows]
    best: tuple[float, float, int, int] = (math.inf, THRESHOLD_GRID[0], *K_OF_N_GRID[0])
    for thr in THRESHOLD_GRID:
        for k_on, n_on in K_OF_N_GRID:
            scores = [
                score_changes(
                    ws.record,
                    simulate_votes(
                        pr >= thr,
                        ws.end_idx,
                        round(base.window_s * ws.record.fs_hz),
                        k_on,
                        n_on,
                        N_OFF,
                    ),
                    base.window_s,
                )
                for ws, pr in zip(windows, probs, strict=True)
            ]
            cost = tuning_cost(scores)
            if cost < best[0]:
                best = (cost, thr, k_on, n_on)
    _, thr, k_on, n_on = best
    logger.info("tuned: threshold %.2f, %d of %d, cost %.2f", thr, k_on, n_on, best[0])
    return replace(params, threshold=thr, k_on=k_on, n_on=n_on)
