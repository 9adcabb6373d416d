"""The waveform core: hostile input never crashes it, and results do not depend on chunking."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import wfdb
from numpy.typing import NDArray

from agent.config import load_config
from agent.inference.bundle import ModelBundle, load_models
from agent.messages import AamiClass, AlarmCode, AlarmEvent, AlarmLifecycle
from tests.agent.core.streaming import Stream


def test_hostile_samples_are_gated_and_counted() -> None:
    p = Stream(load_config(), 360.0, ModelBundle())
    rng = np.random.default_rng(0)
    bad = 0
    for i in range(400):
        x = rng.normal(0, 100, 90).astype(np.float32)
        if i % 7 == 0:
            x[3] = np.inf
            bad += 1
        if i % 11 == 0:
            x[:] = 1e30
            bad += 90 - (1 if i % 7 == 0 else 0)
        if i % 13 == 0:
            x[5:50] = np.nan
        if i % 17 == 0:
            x = x[:0]
        p.ecg(x)
    p.finish()
    implausible = p.core.counters()["samples_implausible"]
    assert implausible > 0
    assert implausible <= bad


def test_stuck_at_huge_value_is_leads_off_not_asystole() -> None:
    p = Stream(load_config(), 250.0, ModelBundle())
    events = []
    for _ in range(40):  # 10 s of a rail-stuck front end
        events += p.ecg(np.full(250 // 4, 3e6, dtype=np.float32)).events
    raised = {e.condition for e in events if e.lifecycle is AlarmLifecycle.RAISED}
    assert AlarmCode.LEADS_OFF in raised
    assert AlarmCode.ASYSTOLE not in raised


def _run_232(
    x: NDArray[np.float32], step: int, models: ModelBundle
) -> tuple[list[tuple[int, AamiClass | None]], list[tuple[str, str, float]]]:
    p = Stream(load_config(), 360.0, models)
    beats: list[tuple[int, AamiClass | None]] = []
    events: list[AlarmEvent] = []
    for i in range(0, len(x), step):
        out = p.ecg(x[i : i + step])
        beats += [(b.r_peak_idx, b.aami_class) for b in out.beats]
        events += out.events
    out = p.finish()
    beats += [(b.r_peak_idx, b.aami_class) for b in out.beats]
    events += out.events
    return beats, [(e.condition.value, e.lifecycle.value, e.onset_s) for e in events]


@pytest.fixture(scope="module")
def record_232(mitdb: Path) -> NDArray[np.float32]:
    rec = wfdb.rdrecord(str(mitdb / "232"), channels=[0], sampto=360 * 700)
    x: NDArray[np.float32] = (np.asarray(rec.p_signal)[:, 0] * 1000).astype(np.float32)
    return x


@pytest.mark.parametrize("chunk_s", [0.25, 3.7])
def test_chunking_does_not_change_beats_or_alarms(
    record_232: NDArray[np.float32], chunk_s: float
) -> None:
    models = replace(load_models(load_config().inference), beat_classifier=None)  # AF, VF
    ref = _run_232(record_232, 360 * 5, models)
    got = _run_232(record_232, round(360 * chunk_s), models)
    assert got == ref
    assert any(c == "pause" for c, _, _ in ref[1])  # 232 pauses at 636 s and 646 s


def test_chunking_does_not_change_beat_classes(record_232: NDArray[np.float32]) -> None:
    """Live chunks (0.25 s) and offline chunks (5 s) give every beat the same class.

    A beat is classified when the next one is committed, from a raw segment reaching 1.25 s
    past its R-peak; the front end holds the timeline back until that segment has arrived
    (before, with 0.25 s chunks it often had not, and such beats went unclassified).
    """
    models = load_models(load_config().inference)
    ref = _run_232(record_232, 360 * 5, models)
    got = _run_232(record_232, round(360 * 0.25), models)
    assert got[0] == ref[0]


def test_ring_keeps_the_newest_samples_as_np_roll_did() -> None:
    from agent.core.frontends import _Ring

    rng = np.random.default_rng(3)
    ring = _Ring(50)
    ref = np.zeros(50, dtype=np.float32)
    end = 0
    for n in [0, 7, 20, 33, 1, 50, 64, 12, 49]:
        x = rng.normal(0, 100, n).astype(np.float32)
        ring.push(x)
        if n:
            ref = x[-50:].copy() if n >= 50 else np.concatenate([np.roll(ref, -n)[:-n], x])
            end += n
        first, got = ring.window(end - 60, end)
        np.testing.assert_array_equal(got, ref[len(ref) - (end - first) :])
