"""Run converted beat models over a :class:`BeatSet`: probabilities, scores, CPU latency."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from agent.inference.tflite import load_model
from tools.beats.dataset import BeatSet
from tools.beats.score import ClassScores, confusion_from_labels


def predict_tflite(path: Path, data: BeatSet) -> NDArray[np.float32]:
    """Class probabilities of every beat, shape ``(n_beats, 5)``, one inference per beat.

    Uses the runtime interpreter (:func:`agent.inference.tflite.load_model`, one CPU thread),
    exactly as the agent does.
    """
    model = load_model(path, num_threads=1)
    out = np.zeros((len(data), model.outputs[0].shape[-1]), dtype=np.float32)
    for i in range(len(data)):
        out[i] = model.predict({"window": data.windows[i], "rr": data.rr[i]})[0].reshape(-1)
    return out


def scores_of(probs: NDArray[np.float32], data: BeatSet) -> ClassScores:
    """Scores of argmax decisions against the labels (every beat is a matched pair)."""
    return confusion_from_labels(data.labels, np.argmax(probs, axis=1))


def latency(path: Path, data: BeatSet, n_beats: int = 2000) -> dict[str, Any]:
    """CPU time per beat of :meth:`TfliteModel.predict` on one thread.

    Times ``n_beats`` single-beat calls (after 50 warm-up calls) with
    ``time.perf_counter_ns``; reports the median, the 99th percentile and the mean, µs.
    """
    model = load_model(path, num_threads=1)
    n = min(n_beats, len(data))
    for i in range(min(50, n)):
        model.predict({"window": data.windows[i], "rr": data.rr[i]})
    times_us: list[float] = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        model.predict({"window": data.windows[i], "rr": data.rr[i]})
        times_us.append((time.perf_counter_ns() - t0) / 1000.0)
    times_us.sort()
    return {
        "median_us": round(statistics.median(times_us), 1),
        "p99_us": round(times_us[int(0.99 * (n - 1))], 1),
        "mean_us": round(statistics.fmean(times_us), 1),
        "n_beats": n,
        "how": "TfliteModel.predict per beat (quantize, invoke, dequantize), ai_edge_litert,"
        " num_threads=1, after 50 warm-up calls; x86-64 build machine, not a Pi",
    }
