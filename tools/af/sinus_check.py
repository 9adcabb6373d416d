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
                    n = int(SERIES_S * 1000.0 / base)
                    i = np.arange(n)
                    phase = 2 * np.pi * i / breath * rng.uniform(0.95, 1.05) + rng.uniform(0, 6)
                    drift = 0.04 * np.sin(2 * np.pi * i / 80)
                    rr = base * (1 + swing * np.sin(phase) + drift + rng.normal(0, 0.01, n))
                    if glitch:
                        rr = _glitches(rr, glitch, rng)
                    rows.append((base, swing, breath, glitch, af_episodes(model, rr)))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Print the episodes by swing and glitch rate; exit 0."""
    ap = argparse.ArgumentParser(prog="python -m tools.af.sinus_check", description=__doc__)
    ap.add_argument("--card", type=Path, default=AF_CARD, help="AF model card")
    args = ap.parse_args(argv)
    rows = sweep(args.card)
    hours = len(rows) * SERIES_S / 3600.0
    print(f"{args.card}: {sum(r[4] for r in rows)} AF episodes in {hours:.0f} h of sinus rhythm")
    for swing in SWINGS:
        for glitch in GLITCH_RATES:
            sel = [r[4] for r in rows if r[1] == swing and r[3] == glitch]
            print(f"  swing ±{swing:.0%}, glitches {glitch:.0%}: {sum(sel)} in {len(sel)} series")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
