import numpy as np
import pytest

from agent.dsp.flatline import FlatlineChange, FlatlineDetector

FS = 360.0


def _push_all(det: FlatlineDetector, x: np.ndarray, chunk: int) -> list[FlatlineChange]:
    out: list[FlatlineChange] = []
    for i in range(0, len(x), chunk):
        out += det.push(x[i : i + chunk].astype(np.float32))
    return out


@pytest.mark.parametrize("chunk", [1, 90, 97, 5000])
def test_flat_run_detected_once_whatever_the_chunking(chunk: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 40, int(FS * 12))
    x[int(FS * 3) : int(FS * 7)] = 123.0  # 4 s stuck at one value
    changes = _push_all(FlatlineDetector(FS, ptp_uv=20, min_s=2), x, chunk)
    assert [c.flat for c in changes] == [True, False]
    on, off = changes
    assert on.onset_idx == int(FS * 3)
    assert on.decided_idx == int(FS * 5)
    assert off.onset_idx == int(FS * 7)


def test_short_flat_and_noise_do_not_trigger() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(0, 25, int(FS * 10))  # asystole-like noise: not flat
    x[int(FS * 2) : int(FS * 3.5)] = 0.0  # 1.5 s flat < 2 s
    assert _push_all(FlatlineDetector(FS), x, 90) == []


def test_nan_samples_count_as_lead_off() -> None:
    x = np.random.default_rng(3).normal(0, 100, int(FS * 8))
    x[int(FS * 2) : int(FS * 6)] = np.nan
    changes = _push_all(FlatlineDetector(FS), x, 360)
    assert [c.flat for c in changes] == [True, False]


def test_rejects_bad_rate() -> None:
    with pytest.raises(ValueError, match="positive"):
        FlatlineDetector(0.0)


@pytest.mark.parametrize("chunk", [1, 90, 97, 5000])
def test_bounds_follow_each_block_and_hold_at_a_flat_run(chunk: int) -> None:
    """Every judged block adds (block end, earliest onset): its own end while nothing is flat,
    the first flat block's start while a flat run may still be confirmed (chunking aside)."""
    rng = np.random.default_rng(4)
    x = rng.normal(0, 40, int(FS * 12))
    x[int(FS * 3) : int(FS * 7)] = 123.0  # 4 s stuck at one value
    det = FlatlineDetector(FS, ptp_uv=20, min_s=2)
    det.bounds = []
    _push_all(det, x, chunk)
    block = round(FS * 0.25)
    ends = [end for end, _ in det.bounds]
    assert ends == list(range(block, block * (len(x) // block) + 1, block))
    earliest = dict(det.bounds)
    assert earliest[int(FS * 2)] == int(FS * 2)  # before the run: its own end
    assert earliest[int(FS * 4)] == int(FS * 3)  # inside the run, not yet confirmed
    assert earliest[int(FS * 10)] == int(FS * 10)  # after the recovery
