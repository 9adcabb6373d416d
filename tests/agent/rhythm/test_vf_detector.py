"""VfDetector on real vfdb / mitdb signal at the records' rates and at 130 Hz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb
from numpy.typing import NDArray
from scipy import signal

from agent.errors import ConfigError
from agent.rhythm.vf import VF_PARAMS_TUNED, VfChange, VfDetector, VfParams, vf_resample_ratio

VF_RECORD = "424"
VF_ONSET_S = 1259.0  # vfdb 424: "(VFIB" at sample 314750 (250 Hz), lasting 105.7 s
BEFORE_S = 60.0
AFTER_S = 30.0


def _read(path: Path, start_s: float, stop_s: float) -> tuple[NDArray[np.float64], float]:
    hea = wfdb.rdheader(str(path))
    fs = float(hea.fs)
    rec = wfdb.rdrecord(
        str(path), channels=[0], sampfrom=round(start_s * fs), sampto=round(stop_s * fs)
    )
    return np.asarray(rec.p_signal[:, 0], dtype=np.float64) * 1000.0, fs


def _stream(x: NDArray[np.float64], fs: float, chunk_s: float = 1.0) -> list[VfChange]:
    det = VfDetector(fs)
    step = max(1, round(chunk_s * fs))
    out: list[VfChange] = []
    for i in range(0, x.size, step):
        out.extend(det.push(x[i : i + step].astype(np.float32)))
    return out


def _resample(x: NDArray[np.float64], fs: float, fs_to: float) -> NDArray[np.float64]:
    from fractions import Fraction

    f = Fraction(fs_to / fs).limit_denominator(1000)
    return np.asarray(signal.resample_poly(x, f.numerator, f.denominator))


@pytest.fixture(scope="module")
def vf_strip(data_dir: Path) -> tuple[NDArray[np.float64], float]:
    path = data_dir / "vfdb" / VF_RECORD
    if not path.with_suffix(".hea").exists():
        pytest.skip(f"vfdb {VF_RECORD} not found under {data_dir}")
    return _read(path, VF_ONSET_S - BEFORE_S, VF_ONSET_S + AFTER_S)


@pytest.mark.parametrize("fs_to", [None, 130.0, 360.0])
def test_vf_alarm_within_10_s_of_onset(
    vf_strip: tuple[NDArray[np.float64], float], fs_to: float | None
) -> None:
    x, fs = vf_strip
    if fs_to is not None:
        x, fs = _resample(x, fs, fs_to), fs_to
    changes = _stream(x, fs)
    vf = [c for c in changes if c.rhythm == "VF"]
    assert vf, f"no VF change at {fs} Hz"
    alarm_s = vf[0].decided_idx / fs - BEFORE_S  # seconds after the annotated onset
    onset_s = vf[0].onset_idx / fs - BEFORE_S
    assert 0.0 <= alarm_s <= 10.0, alarm_s
    assert -6.0 <= onset_s <= alarm_s, onset_s
    assert 0.0 < vf[0].probability <= 1.0


def test_sinus_rhythm_stays_quiet(mitdb: Path) -> None:
    x, fs = _read(mitdb / "100", 0.0, 300.0)
    assert _stream(x, fs) == []
    assert _stream(_resample(x, fs, 130.0), 130.0, chunk_s=0.25) == []


def test_nan_chunks_do_not_crash_or_alarm(vf_strip: tuple[NDArray[np.float64], float]) -> None:
    x, fs = vf_strip
    det = VfDetector(fs)
    step = round(fs)
    out: list[VfChange] = []
    nan_chunk = np.full(step, np.nan, dtype=np.float32)
    for _ in range(30):  # 30 s of a lead with nothing valid
        out.extend(det.push(nan_chunk))
    assert out == []
    # VF with every other second missing: no window is valid enough to be judged.
    vf_part = x[round(BEFORE_S * fs) :].astype(np.float32)
    for i in range(0, vf_part.size - step, 2 * step):
        out.extend(det.push(vf_part[i : i + step]))
        out.extend(det.push(nan_chunk))
    assert [c for c in out if c.rhythm == "VF"] == []


def test_short_nan_gaps_are_bridged(vf_strip: tuple[NDArray[np.float64], float]) -> None:
    x, fs = vf_strip
    y = x.copy()
    y[:: round(fs)] = np.nan  # one lost sample per second (BLE packet loss)
    a = [c.decided_idx for c in _stream(x, fs) if c.rhythm == "VF"]
    b = [c.decided_idx for c in _stream(y, fs) if c.rhythm == "VF"]
    assert a
    assert b == a


def test_chunking_does_not_change_the_result(vf_strip: tuple[NDArray[np.float64], float]) -> None:
    x, fs = vf_strip
    assert _stream(x, fs, chunk_s=0.1) == _stream(x, fs, chunk_s=7.3)


def test_flat_line_is_not_vf() -> None:
    rng = np.random.default_rng(7)
    fs = 250.0
    x = rng.normal(0.0, 5.0, round(60 * fs)).astype(np.float32)  # 5 µV amplifier noise
    det = VfDetector(fs)
    assert det.push(x) == []


@pytest.mark.parametrize("fs", [50.0, 99.0, 1001.0])
def test_rejects_unsupported_rates(fs: float) -> None:
    with pytest.raises(ConfigError):
        VfDetector(fs)


def test_rejects_bad_params() -> None:
    with pytest.raises(ConfigError):
        VfDetector(250.0, VfParams(k_on=5, n_on=4))
    with pytest.raises(ConfigError):
        VfDetector(250.0, VfParams(coef=(1.0,)))


@pytest.mark.parametrize(("fs", "canonical"), [(130.0, 125.0), (250.0, 125.0), (360.0, 125.0)])
def test_resample_ratio(fs: float, canonical: float) -> None:
    up, down = vf_resample_ratio(fs)
    assert fs * up / down == pytest.approx(canonical)


def test_shipped_params_are_valid() -> None:
    VF_PARAMS_TUNED.validate()
    assert VF_PARAMS_TUNED.window_s + VF_PARAMS_TUNED.n_on * VF_PARAMS_TUNED.hop_s <= 10.0
