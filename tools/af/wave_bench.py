"""Print the cost of one waveform-AF window: features and int8 inference (a print, not a test).

``python -m tools.af.wave_bench --data ../shared/data`` times :func:`af_wave_features` and the
shipped int8 model (:class:`agent.rhythm.af_wave.AfWaveModel`, one thread) on the windows of
CinC 2017 A05059 (300 Hz) and mitdb 119 (first 5 min, 360 Hz), and prints the model size.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import wfdb

from agent.dsp.rpeaks import StreamingRPeakDetector
from agent.rhythm.af_wave import (
    AF_WAVE_BEATS,
    AF_WAVE_HOP_BEATS,
    POST_S,
    AfWaveModel,
    af_wave_features,
    window_start,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; prints one line per record and the model's size."""
    ap = argparse.ArgumentParser(prog="python -m tools.af.wave_bench")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = ap.parse_args(argv)
    model = AfWaveModel.load()
    interp = model.interpreter()
    print(f"model {model.card.file}: {model.card.size_bytes} bytes, int8")
    for rel, seconds, mains in (("cinc2017/A05059", 61.0, 50), ("mitdb/119", 300.0, 60)):
        path = args.data / rel
        if not path.with_suffix(".hea").exists():
            print(f"{rel}: not in the data, skipped")
            continue
        rec = wfdb.rdrecord(str(path), channels=[0])
        fs = float(rec.fs)
        x = np.asarray(rec.p_signal[: round(seconds * fs), 0], dtype=np.float64) * 1000.0
        det = StreamingRPeakDetector(fs, mains)  # type: ignore[arg-type]
        r = [p.r_peak_idx for p in det.push(x.astype(np.float32)).r_peaks]
        r += [p.r_peak_idx for p in det.flush().r_peaks]
        peaks = np.asarray(r, dtype=np.int64)
        t_feat, t_model, n = 0.0, 0.0, 0
        for end in range(AF_WAVE_BEATS, peaks.size + 1, AF_WAVE_HOP_BEATS):
            w = peaks[end - AF_WAVE_BEATS : end]
            first = window_start(int(w[0]), fs)
            stop = int(w[-1]) + round(POST_S * fs) + 1
            if first is None or stop > x.size:
                continue
            t0 = time.perf_counter()
            f = af_wave_features(w, x[first:stop], first, fs)
            t1 = time.perf_counter()
            model.probability(f, interp)
            t2 = time.perf_counter()
            t_feat, t_model, n = t_feat + t1 - t0, t_model + t2 - t1, n + 1
        if n:
            print(
                f"{rel} ({fs:.0f} Hz): {n} windows, features {t_feat / n * 1e3:.2f} ms,"
                f" int8 inference {t_model / n * 1e3:.3f} ms per window (1 thread)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
