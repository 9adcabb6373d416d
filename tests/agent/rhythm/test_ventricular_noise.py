"""The waveform VT detector's noise gates (agent.rhythm.ventricular, versions 2 and 3).

Mean frequency (version 2): pinned on the false ``vtach`` the version-1 detector raised on
nstdb ``ma`` (muscle artifact, no ECG) at 555 s: five windows in a row at P(VT) 0.98-0.99
whose mean frequency is 15.6-16.9 Hz, far above the 2-6 Hz of ventricular tachyarrhythmias.
VF-filter leakage (version 3): pinned on the VT the version-2 detector decided on nstdb ``em``
(electrode motion, no ECG) at 92 s, five windows whose leakage is 0.68-0.76.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import wfdb
from numpy.typing import NDArray

from agent.errors import ConfigError
from agent.rhythm.ventricular import (
    MEAN_FREQ_IDX,
    VF_LEAK_IDX,
    VT_PARAMS_TUNED,
    VtChange,
    VtDetector,
    VtParams,
    vt_window_features,
)
from agent.rhythm.vf import MARGIN_S


def _read(path: Path, start_s: float, stop_s: float) -> tuple[NDArray[np.float64], float]:
    fs = float(wfdb.rdheader(str(path)).fs)
    rec = wfdb.rdrecord(
        str(path), channels=[0], sampfrom=round(start_s * fs), sampto=round(stop_s * fs)
    )
    return np.asarray(rec.p_signal[:, 0], dtype=np.float64) * 1000.0, fs


def _stream(x: NDArray[np.float64], fs: float, params: VtParams) -> list[VtChange]:
    det = VtDetector(fs, params)
    out: list[VtChange] = []
    step = round(0.25 * fs)
    for i in range(0, x.size, step):
        out.extend(det.push(x[i : i + step].astype(np.float32)))
    return out


def test_shipped_parameters_gate_noise_above_6_hz() -> None:
    assert VT_PARAMS_TUNED.max_mean_freq_hz == 6.0


def test_muscle_artifact_of_nstdb_ma_is_no_longer_vt(data_dir: Path) -> None:
    path = data_dir / "nstdb" / "ma"
    if not path.with_suffix(".dat").exists():
        pytest.skip(f"nstdb noise record not found at {path}")
    x, fs = _read(path, 530.0, 560.0)
    # the window ending at 555 s: muscle noise, mean frequency about 15.7 Hz
    e = round((555.0 - 530.0) * fs)
    feats = vt_window_features(x[e - round((4.0 + MARGIN_S) * fs) : e], fs, 4.0)
    assert feats[MEAN_FREQ_IDX] == pytest.approx(15.7, abs=0.5)
    ungated = dataclasses.replace(VT_PARAMS_TUNED, max_mean_freq_hz=math.inf)
    before = [c for c in _stream(x, fs, ungated) if c.rhythm == "VT"]
    assert before, "without the gate the muscle noise reads as VT (the version-1 false vtach)"
    assert 550.0 <= 530.0 + before[0].decided_idx / fs <= 556.0
    assert before[0].probability > 0.9
    assert _stream(x, fs, VT_PARAMS_TUNED) == []


def test_electrode_motion_of_nstdb_em_is_no_longer_vt(data_dir: Path) -> None:
    path = data_dir / "nstdb" / "em"
    if not path.with_suffix(".dat").exists():
        pytest.skip(f"nstdb noise record not found at {path}")
    assert VT_PARAMS_TUNED.max_vf_leak == 0.65
    x, fs = _read(path, 60.0, 110.0)
    need = round((4.0 + MARGIN_S) * fs)
    leaks = []
    for t_s in (88.0, 89.0, 90.0, 91.0, 92.0):  # the five windows that decided VT at 92 s
        e = round((t_s - 60.0) * fs)
        leaks.append(vt_window_features(x[e - need : e], fs, 4.0)[VF_LEAK_IDX])
    assert min(leaks) == pytest.approx(0.683, abs=0.01)
    assert max(leaks) == pytest.approx(0.756, abs=0.01)
    ungated = dataclasses.replace(VT_PARAMS_TUNED, max_vf_leak=math.inf)
    before = [c for c in _stream(x, fs, ungated) if c.rhythm == "VT"]
    assert before, "without the leakage gate the electrode motion reads as VT (version 2)"
    assert 60.0 + before[0].decided_idx / fs == pytest.approx(92.0, abs=0.5)
    assert _stream(x, fs, VT_PARAMS_TUNED) == []


def test_sustained_vt_of_vfdb_425_passes_the_gate(data_dir: Path) -> None:
    # vfdb 425: "(VT" at 929.6 s for 28.8 s; its windows are at 3-5 Hz mean frequency
    x, fs = _read(data_dir / "vfdb" / "425", 900.0, 960.0)
    vt = [c for c in _stream(x, fs, VT_PARAMS_TUNED) if c.rhythm == "VT"]
    assert vt
    assert 929.6 <= 900.0 + vt[0].decided_idx / fs <= 939.6


def test_a_gate_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ConfigError):
        VtParams(max_mean_freq_hz=0.0).validate()
    with pytest.raises(ConfigError):
        VtParams(max_mean_freq_hz=float("nan")).validate()
    with pytest.raises(ConfigError, match="max_vf_leak"):
        VtParams(max_vf_leak=0.0).validate()
