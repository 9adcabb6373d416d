"""Measure the EDR respiration-rate estimator on simulated ECG (and mitdb, without reference).

Run: ``nice -n 10 .venv/bin/python -m tools.edr_study [--mitdb DIR]``

Simulation: ECGSYN (``nk.ecg_simulate(method="ecgsyn")``) at 250 Hz, multiplied by
``1 + depth * r(t)`` where ``r`` is a unit sinusoid or ``nk.rsp_simulate`` (breathmetrics,
scaled to [-1, 1]), plus white noise; R peaks by the agent's StreamingRPeakDetector; estimates
every 4 s on 32 s windows from 40 s on. The reference rate of a window is the nominal rate
(sinusoid) or 60 / mean breath period of the simulated respiration inside the window.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

from agent.dsp.rpeaks import RPeak, StreamingRPeakDetector
from agent.vitals.edr import EdrMethod, EdrRespirationEstimator, qrs_peak_to_peak_uv

FS_HZ: Final = 250
DURATION_S: Final = 90

Amplitude = Literal["pp", "apex"]
"""QRS amplitude fed to the estimator: ``"pp"`` is :func:`qrs_peak_to_peak_uv` of the raw
ECG (what the agent uses), ``"apex"`` the detector's :attr:`RPeak.amplitude_uv`."""


def simulate(
    rate_per_min: float,
    *,
    hr_bpm: float,
    seed: int,
    depth: float = 0.1,
    noise_mv: float = 0.02,
    breathing: str = "sin",
) -> tuple[NDArray[np.float32], NDArray[np.float64] | None]:
    """Return (ECG µV at 250 Hz, breath peak times s or None for a sinusoid)."""
    import neurokit2 as nk

    ecg = np.asarray(
        nk.ecg_simulate(
            duration=DURATION_S,
            sampling_rate=FS_HZ,
            heart_rate=hr_bpm,
            method="ecgsyn",
            random_state=seed,
            noise=0,
        ),
        dtype=np.float64,
    )
    t = np.arange(ecg.size) / FS_HZ
    peaks_s = None
    if breathing == "sin":
        r = np.sin(2 * np.pi * rate_per_min / 60 * t + seed) if depth > 0 else np.zeros_like(t)
    else:
        rsp = np.asarray(
            nk.rsp_simulate(
                duration=DURATION_S,
                sampling_rate=FS_HZ,
                respiratory_rate=rate_per_min,
                random_state=seed,
            ),
            dtype=np.float64,
        )
        r = 2 * (rsp - rsp.min()) / np.ptp(rsp) - 1
        _, info = nk.rsp_peaks(rsp, sampling_rate=FS_HZ)
        peaks_s = np.asarray(info["RSP_Peaks"], dtype=np.float64) / FS_HZ
    rng = np.random.default_rng(seed)
    x = (ecg * (1 + depth * r) + noise_mv * rng.standard_normal(ecg.size)) * 1000.0
    return x.astype(np.float32), peaks_s


def detect(
    x_uv: NDArray[np.float32], fs_hz: float, amplitude: Amplitude = "pp"
) -> list[tuple[float, float]]:
    """Return (time s, amplitude µV) of each R peak found by the agent's detector."""
    det = StreamingRPeakDetector(fs_hz, 50)
    step_n = int(fs_hz)
    peaks: list[RPeak] = []
    for i in range(0, x_uv.size, step_n):
        peaks += det.push(x_uv[i : i + step_n]).r_peaks
    peaks += det.flush().r_peaks
    if amplitude == "apex":
        return [(p.r_peak_idx / fs_hz, p.amplitude_uv) for p in peaks]
    out = []
    for p in peaks:
        pp = qrs_peak_to_peak_uv(x_uv, p.r_peak_idx, fs_hz)
        if pp is not None:
            out.append((p.r_peak_idx / fs_hz, pp))
    return out


def run_estimator(
    beats: Sequence[tuple[float, float]],
    end_s: float,
    *,
    method: EdrMethod = "fft_peak",
    window_s: float = 32.0,
    first_s: float = 40.0,
    every_s: float = 4.0,
) -> list[tuple[float, float | None, float]]:
    """(time s, rate or None, cpu s) every ``every_s`` from ``first_s``, beats fed in order."""
    est = EdrRespirationEstimator(
        method=method, window_s=window_s, resample_hz=4.0 if method == "fft_peak" else 10.0
    )
    out = []
    i = 0
    now = first_s
    while now <= end_s:
        while i < len(beats) and beats[i][0] <= now:
            est.add_beat(*beats[i])
            i += 1
        t0 = time.perf_counter()
        rate = est.rate_per_min(now)
        out.append((now, rate, time.perf_counter() - t0))
        now += every_s
    return out


def reference(
    rate: float, peaks_s: NDArray[np.float64] | None, start_s: float, end_s: float
) -> float:
    """Return the reference rate in [start_s, end_s], breaths/min."""
    if peaks_s is None:
        return rate
    inside = peaks_s[(peaks_s >= start_s) & (peaks_s <= end_s)]
    if inside.size < 2:
        return rate
    return float(60.0 / np.mean(np.diff(inside)))


def simulation_table(
    methods: Sequence[EdrMethod],
    rates: Sequence[int] = (6, 8, 10, 12, 15, 18, 21, 24, 27, 30, 36),
    amplitude: Amplitude = "pp",
) -> None:
    """Print error statistics per method, breathing kind and rate."""
    for breathing in ("sin", "rsp"):
        for method in methods:
            print(f"\n## method={method} breathing={breathing} (32 s windows, every 4 s)")
            print("rate | HR | n windows | given | mean abs err | max abs err | ms/estimate")
            for rate in rates:
                for hr in (60, 80, 100):
                    errs: list[float] = []
                    n = given = 0
                    cpu = 0.0
                    for seed in (0, 1, 2):
                        x, peaks_s = simulate(rate, hr_bpm=hr, seed=seed, breathing=breathing)
                        beats = detect(x, FS_HZ, amplitude)
                        for now, r, c in run_estimator(beats, DURATION_S, method=method):
                            n += 1
                            cpu += c
                            if r is not None:
                                given += 1
                                errs.append(abs(r - reference(rate, peaks_s, now - 32, now)))
                    mean_e = np.mean(errs) if errs else float("nan")
                    max_e = np.max(errs) if errs else float("nan")
                    print(
                        f"{rate} | {hr} | {n} | {given} | {mean_e:.2f} | {max_e:.2f} |"
                        f" {1e3 * cpu / n:.2f}"
                    )


def null_table(amplitude: Amplitude = "pp") -> None:
    """Estimates on unmodulated ECG (no breathing in the amplitude): how often a rate."""
    print("\n## no modulation (depth 0): windows with a rate / windows")
    for hr in (60, 80, 100):
        n = given = 0
        for seed in range(5):
            x, _ = simulate(15, hr_bpm=hr, seed=seed, depth=0.0, noise_mv=0.05)
            for _, r, _ in run_estimator(detect(x, FS_HZ, amplitude), DURATION_S):
                n += 1
                given += r is not None
        print(f"HR {hr}: {given}/{n}")


def mitdb_table(mitdb: Path, records: Sequence[str], amplitude: Amplitude = "pp") -> None:
    """Rate distribution on mitdb DS1 records (no respiration reference: plausibility only)."""
    import wfdb

    print("\n## mitdb (no reference): first 10 min, MLII, estimate every 4 s")
    print("record | windows | given | median | p5 | p95")
    for rec in records:
        r = wfdb.rdrecord(str(mitdb / rec), sampto=360 * 600)
        ch = r.sig_name.index("MLII") if "MLII" in r.sig_name else 0
        x = (np.asarray(r.p_signal[:, ch], dtype=np.float64) * 1000.0).astype(np.float32)
        res = run_estimator(detect(x, float(r.fs), amplitude), 600.0)
        rates = [v for _, v, _ in res if v is not None]
        if rates:
            p5, med, p95 = np.percentile(rates, [5, 50, 95])
            print(f"{rec} | {len(res)} | {len(rates)} | {med:.1f} | {p5:.1f} | {p95:.1f}")
        else:
            print(f"{rec} | {len(res)} | 0 | - | - | -")


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mitdb", type=Path, default=None)
    parser.add_argument("--methods", default="fft_peak,khodadad2018")
    parser.add_argument("--skip-sim", action="store_true")
    parser.add_argument("--rates", default="6,8,10,12,15,18,21,24,27,30,36")
    parser.add_argument("--amplitude", choices=("pp", "apex"), default="pp")
    args = parser.parse_args()
    amplitude: Amplitude = args.amplitude
    if not args.skip_sim:
        rates = [int(r) for r in args.rates.split(",")]
        simulation_table(args.methods.split(","), rates, amplitude)
        null_table(amplitude)
    if args.mitdb is not None:
        ds1 = ("101", "106", "112", "115", "116", "118", "119", "122", "205", "209", "220")
        mitdb_table(args.mitdb, ds1, amplitude)


if __name__ == "__main__":
    main()
