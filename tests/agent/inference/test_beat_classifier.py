"""The shipped beat CNN through BeatClassifier / StreamingBeatClassifier (real interpreter)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb
from numpy.typing import NDArray
from scipy import signal

from agent.inference.beat_classifier import (
    BeatClassifier,
    LabelledBeat,
    StreamingBeatClassifier,
)
from agent.inference.beat_features import (
    N_WINDOW_CHANNELS,
    WINDOW_LEN,
    RrFeatureTracker,
)
from agent.messages import AamiClass
from models.card import shipped_card


@pytest.fixture(scope="module")
def classifier() -> BeatClassifier:
    return BeatClassifier()


def run_record(
    clf: BeatClassifier, record: Path, seconds: float, fs_hz: float = 360.0
) -> tuple[list[LabelledBeat], list[str], list[int]]:
    """Stream a record's reference R-peaks through StreamingBeatClassifier at ``fs_hz``."""
    rec = wfdb.rdrecord(str(record), channel_names=["MLII"], sampto=int(360 * seconds))
    x_uv = (rec.p_signal[:, 0] * 1000).astype(np.float32)
    if fs_hz != 360.0:
        x_uv = signal.resample_poly(x_uv.astype(np.float64), round(fs_hz), 360).astype(np.float32)
    ann = wfdb.rdann(str(record), "atr", sampto=int(360 * seconds) - 500)
    beats = [
        (round(int(s) * fs_hz / 360.0), sym)
        for s, sym in zip(ann.sample, ann.symbol, strict=True)
        if sym in "NV"
    ]

    def getter(start: int, stop: int) -> NDArray[np.float32] | None:
        if start < 0 or stop > x_uv.size:
            return None
        segment: NDArray[np.float32] = x_uv[start:stop]
        return segment

    stream = StreamingBeatClassifier(clf, fs_hz, getter)
    out = [stream.push(s, s / fs_hz) for s, _ in beats]
    labelled = [b for b in out if b is not None]
    symbols = [sym for _, sym in beats]
    samples = [s for s, _ in beats]
    return labelled, symbols, samples


def test_card_and_model_agree(classifier: BeatClassifier) -> None:
    assert classifier.labels == tuple(AamiClass)
    assert classifier.version == classifier.card.version
    assert classifier.card.size_bytes <= 64 * 1024
    assert all(t.dtype == np.int8 for t in (*classifier.model.inputs, *classifier.model.outputs))
    assert classifier.model.backend == "cpu"


@pytest.mark.data
def test_v_and_n_beats_of_record_119(classifier: BeatClassifier, mitdb: Path) -> None:
    """Record 119 (DS1, training data): trigeminy/bigeminy PVCs among normal beats."""
    labelled, symbols, samples = run_record(classifier, mitdb / "119", 300.0)
    truth = dict(zip(samples, symbols, strict=True))
    v = [b for b in labelled if truth[b.r_peak_idx] == "V"]
    n = [b for b in labelled if truth[b.r_peak_idx] == "N"]
    assert len(v) > 50
    assert len(n) > 200
    v_ok = sum(b.aami_class is AamiClass.V for b in v) / len(v)
    n_ok = sum(b.aami_class is AamiClass.N for b in n) / len(n)
    assert v_ok > 0.95
    assert n_ok > 0.95
    assert all(b.confidence is not None and 0.0 <= b.confidence <= 1.0 for b in labelled)
    # one beat late (the last beat is pending) and the first beat has no pre-RR
    assert len(labelled) == len(samples) - 2
    assert [b.r_peak_idx for b in labelled] == samples[1:-1]


@pytest.mark.data
def test_record_119_at_a_wearables_130_hz(classifier: BeatClassifier, mitdb: Path) -> None:
    """The same beats resampled to 130 Hz (Polar H10 rate): the classes hold."""
    labelled, symbols, samples = run_record(classifier, mitdb / "119", 300.0, fs_hz=130.0)
    truth = dict(zip(samples, symbols, strict=True))
    calls = [(truth[b.r_peak_idx], b.aami_class) for b in labelled]
    v_ok = np.mean([c is AamiClass.V for t, c in calls if t == "V"])
    n_ok = np.mean([c is AamiClass.N for t, c in calls if t == "N"])
    assert v_ok > 0.95
    assert n_ok > 0.95


def test_classify_checks_the_window_shape(classifier: BeatClassifier) -> None:
    tracker = RrFeatureTracker()
    for t in (0.0, 0.8, 1.6):
        rr = tracker.push(t)
    assert rr is not None
    label, prob = classifier.classify(np.zeros((WINDOW_LEN, N_WINDOW_CHANNELS), np.float32), rr)
    assert isinstance(label, AamiClass)
    assert 0.0 <= prob <= 1.0
    with pytest.raises(ValueError, match="shape"):
        classifier.classify(np.zeros(WINDOW_LEN, np.float32), rr)


def test_missing_signal_gives_an_unlabelled_beat(classifier: BeatClassifier) -> None:
    stream = StreamingBeatClassifier(classifier, 360.0, lambda start, stop: None)
    assert stream.push(1000, 1000 / 360) is None
    assert stream.push(1300, 1300 / 360) is None  # first beat: no pre-RR
    beat = stream.push(1600, 1600 / 360)
    assert beat is not None
    assert beat.r_peak_idx == 1300
    assert beat.aami_class is None
    assert beat.confidence is None


def test_model_not_matching_its_card_is_refused(tmp_path: Path) -> None:
    card = shipped_card("beat_cnn")
    shutil.copy(card, tmp_path / card.name)
    model = card.with_suffix(".tflite")
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / model.name).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match"):
        BeatClassifier(tmp_path / card.name)
