"""Synthetic sinus rhythm with respiratory sinus arrhythmia through an AF model: false AF.

``python -m tools.af.sinus_check [--card models/af_rr.json]`` feeds 160 half-hour RR series
(80 h) of sinus rhythm to :class:`agent.rhythm.af.AfDetector` and prints the AF episodes it
raises, by breathing swing. Each series: RR ``base`` of 650, 800, 1000 or 1100 ms; a smooth
breathing swing of ±0, 5, 10, 15 or 20 % of RR with a breath of 3, 4.5, 6 or 9 beats (±5 %),
random phase; a slow ±4 % drift over 80 beats; 1 % beat-to-beat jitter; and, in half the
series, 2 % missed or extra beats (a chest strap's detection glitches: a missed beat merges two
RR intervals, an extra one splits an interval at 30-70 %). Seeded, so the count is exact.

Every episode here is false: this is sinus rhythm. af_rr-1.0.0 (afdb only) raised 156,
af_rr-2.0.0 (trained with :func:`tools.af.dataset.sinus_arrhythmia_augment`) 3. The
generator is not the augmentation (different amplitude grid, drift and glitches), but both
come from the same idea of RSA, so this is a check of the failure mode, not an independent
test.

``--ectopy`` adds a second sweep, 72 h more: the hardest case of a healthy wearer asleep,
strong RSA (±10, 15, 20 %) *and* isolated premature beats (1, 3 or 5 % of beats) *and*, in
half the series, 2 % strap glitches, all in one series (training augments RSA and ectopy one at
a time, :func:`tools.af.dataset.sinus_arrhythmia_augment` and
:func:`tools.af.dataset.ectopy_augment`). Half the premature beats are PVC-like (coupling
55-80 % of the cycle, fully compensatory pause: the two intervals sum to two cycles), half
PAC-like (the sinus node is reset: the return cycle is 100-115 % of a cycle). Its own seed, so
the first sweep's count does not move.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from agent.rhythm.af import AF_CARD, AfDetector, AfModel

BASES_MS = (1100.0, 1000.0, 800.0, 650.0)
SWINGS = (0.0, 0.05, 0.10, 0.15, 0.20)
BREATHS_BEATS = (3.0, 4.5, 6.0, 9.0)
GLITCH_RATES = (0.0, 0.02)
SERIES_S = 1800.0
SEED = 3

ECTOPY_SWINGS = (0.10, 0.15, 0.20)
ECTOPY_RATES = (0.01, 0.03, 0.05)
ECTOPY_BREATHS_BEATS = (4.5, 6.0)
ECTOPY_SEED = 7
ECTOPIC_COUPLING = (0.55, 0.8)
"""Coupling interval of a premature beat, fraction of the sinus cycle (uniform)."""
PAC_RETURN = (1.0, 1.15)
"""Return cycle after a PAC (the sinus node reset), fraction of the sinus cycle (uniform)."""


def _glitches(
    rr: NDArray[np.float64], rate: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    out: list[float] = []
    k = 0
    while k < rr.size:
        u = rng.random()
        if u < rate / 2 and k + 1 < rr.size:  # missed beat
            out.append(float(rr[k] + rr[k + 1]))
            k += 2
        elif u < rate:  # extra beat
            f = rng.uniform(0.3, 0.7)
            out += [float(rr[k] * f), float(rr[k] * (1 - f))]
            k += 1
        else:
            out.append(float(rr[k]))
            k += 1
    return np.asarray(out)


def premature_beats(
    rr: NDArray[np.float64], rate: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Turn a fraction ``rate`` of sinus cycles into premature beats (half PVC-, half PAC-like).

    Parameters
    ----------
    rr
        Sinus RR intervals, ms, shape ``(n,)``.
    rate
        Probability that a cycle ends with a premature beat (0..1).
    rng
        Random generator (seeded by the caller).

    Returns
    -------
    NDArray[np.float64]
        RR intervals, ms: each premature beat replaces two cycles ``rr[k], rr[k+1]`` by its
        coupling interval ``c * rr[k]`` and the pause after it, ``(2 - c) * rr[k]`` (PVC: fully
        compensatory) or ``r * rr[k]`` (PAC: the sinus node reset), with ``c`` and ``r`` drawn
        from :data:`ECTOPIC_COUPLING` and :data:`PAC_RETURN`.
    """
    out: list[float] = []
    k = 0
    while k < rr.size:
        if k + 1 < rr.size and rng.random() < rate:
            c = rng.uniform(*ECTOPIC_COUPLING)
            pause = 2.0 - c if rng.random() < 0.5 else rng.uniform(*PAC_RETURN)
            out += [float(rr[k] * c), float(rr[k] * pause)]
            k += 2
        else:
            out.append(float(rr[k]))
            k += 1
    return np.asarray(out)


def _sinus(
    base: float, swing: float, breath: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Half an hour of sinus RR (ms): breathing swing, slow drift, 1 % jitter."""
    n = int(SERIES_S * 1000.0 / base)
    i = np.arange(n)
    phase = 2 * np.pi * i / breath * rng.uniform(0.95, 1.05) + rng.uniform(0, 6)
    drift = 0.04 * np.sin(2 * np.pi * i / 80)
    return np.asarray(base * (1 + swing * np.sin(phase) + drift + rng.normal(0, 0.01, n)))


def af_episodes(model: AfModel, rr_ms: NDArray[np.float64]) -> int:
    """AF episodes a fresh :class:`AfDetector` on ``model`` raises over one RR series (ms)."""
    det = AfDetector(model=model)
    t_s = np.cumsum(rr_ms) / 1000.0
    return sum(
        1 for r, t in zip(rr_ms, t_s, strict=True) for c in det.push(float(r), float(t)) if c.af
    )


def sweep(card: Path) -> list[tuple[float, float, float, float, int]]:
    """``(base_ms, swing, breath_beats, glitch_rate, episodes)`` for every series."""
    rng = np.random.default_rng(SEED)
    model = AfModel.load(card)  # read once; each series gets a fresh detector (interpreter)
    rows = []
    for base in BASES_MS:
        for swing in SWINGS:
            for breath in BREATHS_BEATS:
                for glitch in GLITCH_RATES:
                    rr = _sinus(base, swing, breath, rng)
                    if glitch:
                        rr = _glitches(rr, glitch, rng)
                    rows.append((base, swing, breath, glitch, af_episodes(model, rr)))
    return rows


def ectopy_sweep(card: Path) -> list[tuple[float, float, float, float, float, int]]:
    """Run the ``--ectopy`` sweep: RSA, premature beats and strap glitches together.

    Returns
    -------
    list[tuple]
        ``(base_ms, swing, breath_beats, ectopy_rate, glitch_rate, episodes)`` per series.
    """
    rng = np.random.default_rng(ECTOPY_SEED)
    model = AfModel.load(card)
    rows = []
    for swing in ECTOPY_SWINGS:
        for rate in ECTOPY_RATES:
            for base in BASES_MS:
                for breath in ECTOPY_BREATHS_BEATS:
                    for glitch in GLITCH_RATES:
                        rr = premature_beats(_sinus(base, swing, breath, rng), rate, rng)
                        if glitch:
                            rr = _glitches(rr, glitch, rng)
                        rows.append((base, swing, breath, rate, glitch, af_episodes(model, rr)))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Print the episodes by swing and glitch rate; exit 0."""
    ap = argparse.ArgumentParser(prog="python -m tools.af.sinus_check", description=__doc__)
    ap.add_argument("--card", type=Path, default=AF_CARD, help="AF model card")
    ap.add_argument(
        "--ectopy",
        action="store_true",
        help="then 72 h of strong RSA with premature beats and strap glitches together",
    )
    args = ap.parse_args(argv)
    rows = sweep(args.card)
    hours = len(rows) * SERIES_S / 3600.0
    print(f"{args.card}: {sum(r[4] for r in rows)} AF episodes in {hours:.0f} h of sinus rhythm")
    for swing in SWINGS:
        for glitch in GLITCH_RATES:
            sel = [r[4] for r in rows if r[1] == swing and r[3] == glitch]
            print(f"  swing ±{swing:.0%}, glitches {glitch:.0%}: {sum(sel)} in {len(sel)} series")
    if args.ectopy:
        erows = ectopy_sweep(args.card)
        hours = len(erows) * SERIES_S / 3600.0
        total = sum(r[5] for r in erows)
        print(f"with premature beats: {total} AF episodes in {hours:.0f} h of sinus rhythm")
        for swing in ECTOPY_SWINGS:
            for rate in ECTOPY_RATES:
                sel = [r[5] for r in erows if r[1] == swing and r[3] == rate]
                print(
                    f"  swing ±{swing:.0%}, premature beats {rate:.0%}: {sum(sel)} in"
                    f" {len(sel)} series"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
