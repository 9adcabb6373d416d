"""Waveform AF path (agent.rhythm.af_wave): features, card, and the fused detector."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import wfdb

from agent.analyze import analyze_record
from agent.config import AgentConfig, DspConfig, InferenceConfig
from agent.dsp.rpeaks import StreamingRPeakDetector
from agent.inference.bundle import load_models
from agent.rhythm.af import AfModel
from agent.rhythm.af_wave import (
    AF_WAVE_FEATURE_NAMES,
    AF_WAVE_HOP_BEATS,
    AF_WAVE_PARAMS_TUNED,
    AfWaveModel,
    FusedAfDetector,
    af_wave_features,
)

REPO = Path(__file__).resolve().parents[3]


def _fused_changes(path: Path, stop_s: float, powerline: int) -> list[tuple[bool, float]]:
    rec = wfdb.rdrecord(str(path), channels=[0])
    fs = float(rec.fs)
    x = np.asarray(rec.p_signal[: round(stop_s * fs), 0], dtype=np.float64) * 1000.0
    det = StreamingRPeakDetector(fs, powerline)  # type: ignore[arg-type]
    peaks = [p.r_peak_idx for p in det.push(x.astype(np.float32)).r_peaks]
    peaks += [p.r_peak_idx for p in det.flush().r_peaks]

    def segment(start: int, stop: int) -> np.ndarray | None:
        return None if start < 0 or stop > x.size else x[start:stop].astype(np.float32)

    fused = FusedAfDetector(AfModel.load(), fs, segment, AF_WAVE_PARAMS_TUNED)
    out: list[tuple[bool, float]] = []
    for a, b in itertools.pairwise(peaks):  # as AfConsumer feeds it, no beat ectopic here
        out += [(c.af, c.onset_s) for c in fused.observe_beat(b / fs, ectopic=False)]
        out += [(c.af, c.onset_s) for c in fused.push((b - a) / fs * 1000.0, b / fs)]
    return out


def test_card_holds_the_shipped_decision_and_an_int8_model_within_budget() -> None:
    card = json.loads((REPO / "models" / "af_wave.json").read_text(encoding="utf-8"))
    assert card["preprocessing"]["features"] == list(AF_WAVE_FEATURE_NAMES)
    decision = card["preprocessing"]["decision"]
    assert decision["p_on"] == AF_WAVE_PARAMS_TUNED.p_on
    assert decision["k_on"] == AF_WAVE_PARAMS_TUNED.k_on
    assert decision["p_off"] == AF_WAVE_PARAMS_TUNED.p_off
    assert decision["k_off"] == AF_WAVE_PARAMS_TUNED.k_off
    assert decision["p_corr_max"] == AF_WAVE_PARAMS_TUNED.p_corr_max
    assert decision["max_ectopic"] == AF_WAVE_PARAMS_TUNED.max_ectopic
    model = AfWaveModel.load()
    assert model.card.size_bytes <= 64 * 1024
    interp = model.interpreter()
    assert interp.inputs[0].shape == (1, len(AF_WAVE_FEATURE_NAMES))
    assert interp.inputs[0].dtype == np.int8
    assert interp.outputs[0].dtype == np.int8


def test_window_model_separates_regular_sinus_from_irregular_beats_without_p_waves() -> None:
    fs = 250.0
    rng = np.random.default_rng(7)
    t = np.arange(round(25 * fs)) / fs

    def strip(rr_s: np.ndarray, p_wave: bool) -> tuple[np.ndarray, np.ndarray]:
        r_idx = (round(1.5 * fs) + np.round(np.cumsum(rr_s) * fs)).astype(np.int64)
        x = np.zeros_like(t)
        for r in r_idx:
            x += 1000.0 * np.exp(-(((t - r / fs) / 0.012) ** 2))
            x += 250.0 * np.exp(-(((t - r / fs - 0.3) / 0.05) ** 2))  # T wave
            if p_wave:
                x += 150.0 * np.exp(-(((t - r / fs + 0.16) / 0.025) ** 2))
        if not p_wave:  # 6 Hz fibrillatory baseline
            x += 40.0 * np.sin(2 * np.pi * 6.0 * t + rng.uniform(0, 6))
        return r_idx[:17], x[: int(r_idx[16]) + 40]

    model = AfWaveModel.load()
    interp = model.interpreter()
    sinus = strip(np.full(17, 0.8), p_wave=True)
    af = strip(rng.uniform(0.45, 1.0, 17), p_wave=False)
    p_sinus = model.probability(af_wave_features(sinus[0], sinus[1], 0, fs), interp)
    p_af = model.probability(af_wave_features(af[0], af[1], 0, fs), interp)
    assert 0.0 <= p_sinus < 0.1
    assert p_af > 0.9


def test_regular_beats_with_a_p_wave_have_no_irregularity() -> None:
    fs = 250.0
    t = np.arange(round(20 * fs)) / fs
    x = np.zeros_like(t)
    r_idx = np.arange(round(1.5 * fs), t.size - round(0.2 * fs), round(0.8 * fs))
    for r in r_idx:  # a QRS spike and a P wave 160 ms before it
        x += 1000.0 * np.exp(-(((t - r / fs) / 0.01) ** 2))
        x += 150.0 * np.exp(-(((t - r / fs + 0.16) / 0.025) ** 2))
    f = af_wave_features(r_idx[:17].astype(np.int64), x, 0, fs)
    names = dict(zip(AF_WAVE_FEATURE_NAMES, f, strict=True))
    assert names["nrmssd"] == pytest.approx(0.0, abs=1e-9)
    assert names["median_drr_ratio"] == pytest.approx(0.0, abs=1e-9)
    assert names["p_corr"] > 0.95
    assert 0.05 < names["p_amp_ratio"] < 0.5


def test_cinc2017_af_recording_is_called_af_within_30_s(data_dir: Path) -> None:
    path = data_dir / "cinc2017" / "A05059"
    if not path.with_suffix(".hea").exists():
        pytest.skip("cinc2017 not in the shared data")
    changes = _fused_changes(path, 30.0, 50)
    assert changes
    assert changes[0][0] is True
    assert changes[0][1] < 30.0


def test_sinus_rhythm_with_ectopy_of_mitdb_119_is_not_called_af(data_dir: Path) -> None:
    # mitdb 119: sinus rhythm with ventricular bigeminy/trigeminy episodes
    assert _fused_changes(data_dir / "mitdb" / "119", 600.0, 60) == []


def _irregular_strip(fs: float, n_beats: int) -> tuple[np.ndarray, np.ndarray]:
    """R-peak samples and a synthetic AF-like strip: irregular RR, no P waves, 6 Hz f waves."""
    rng = np.random.default_rng(11)
    r_idx = (round(1.5 * fs) + np.round(np.cumsum(rng.uniform(0.45, 1.0, n_beats)) * fs)).astype(
        np.int64
    )
    t = np.arange(int(r_idx[-1]) + round(fs)) / fs
    x = 40.0 * np.sin(2 * np.pi * 6.0 * t)
    for r in r_idx:
        x += 1000.0 * np.exp(-(((t - r / fs) / 0.012) ** 2))
        x += 250.0 * np.exp(-(((t - r / fs - 0.3) / 0.05) ** 2))
    return r_idx, x


@pytest.mark.parametrize(("ectopic_every", "called"), [(0, True), (2, False)])
def test_windows_with_frequent_ectopic_beats_never_vote_af(
    ectopic_every: int, called: bool
) -> None:
    fs = 250.0
    r_idx, x = _irregular_strip(fs, 60)

    def segment(start: int, stop: int) -> np.ndarray | None:
        return None if start < 0 or stop > x.size else x[start:stop].astype(np.float32)

    params = dataclasses.replace(AF_WAVE_PARAMS_TUNED, max_ectopic=2)
    fused = FusedAfDetector(AfModel.load(), fs, segment, params)
    calls = []
    for i, r in enumerate(r_idx):
        ectopic = ectopic_every > 0 and i % ectopic_every == 0
        calls += fused.observe_beat(float(r) / fs, ectopic)
    assert fused.wave_probability is not None
    assert bool(calls) is called
    assert fused.wave_af is called


def test_an_rr_gap_ends_the_fused_episode_with_a_change() -> None:
    # a pause of more than 3 s makes the RR path restart (reset) inside push; the waveform
    # path restarts too, so the fused episode ends and AfConsumer must hear it (the end was
    # lost before, and mitdb 201 read AFIB for the whole record)
    fs = 250.0
    r_idx, x = _irregular_strip(fs, 60)

    def segment(start: int, stop: int) -> np.ndarray | None:
        return None if start < 0 or stop > x.size else x[start:stop].astype(np.float32)

    fused = FusedAfDetector(AfModel.load(), fs, segment)
    calls = []
    for prev, r in itertools.pairwise(r_idx):
        calls += fused.observe_beat(float(r) / fs, False)
        calls += fused.push(float(r - prev) / fs * 1000.0, float(r) / fs)
    assert [c.af for c in calls] == [True]
    t_end = float(r_idx[-1]) / fs
    ended = fused.push(3500.0, t_end + 3.5)
    assert [c.af for c in ended] == [False]
    assert ended[0].onset_s == pytest.approx(t_end)
    assert not fused.in_af


def _afib_episodes(record: Path, waveform: bool, powerline: int) -> list[tuple[float, float]]:
    cfg = AgentConfig(
        dsp=DspConfig(powerline_hz=powerline),  # type: ignore[arg-type]
        inference=InferenceConfig(af_waveform=waveform),
    )
    res = asyncio.run(analyze_record(record, cfg, load_models(cfg.inference)))
    return res.episodes.get("AFIB", [])


def test_agent_with_the_waveform_path_adds_no_af_on_frequent_pvcs_of_mitdb_208(
    data_dir: Path,
) -> None:
    # 208: ~1,000 PVCs, couplets and bigeminy; the RR path's own calls stay as they are, and
    # the waveform path, fed every beat by AfConsumer, adds none (ectopy veto)
    path = data_dir / "mitdb" / "208"
    assert _afib_episodes(path, True, 60) == _afib_episodes(path, False, 60)


def test_agent_with_the_waveform_path_calls_af_of_a_cinc2017_strip_sooner(data_dir: Path) -> None:
    path = data_dir / "cinc2017" / "A05059"
    if not path.with_suffix(".hea").exists():
        pytest.skip("cinc2017 not in the shared data")
    rr_only = _afib_episodes(path, False, 50)
    fused = _afib_episodes(path, True, 50)
    assert fused
    assert fused[0][0] < 5.0
    assert not rr_only or fused[0][0] < rr_only[0][0]


def _support_after_switch(fs: float, second_half: str) -> list[tuple[bool, bool, float | None]]:
    """(wave_af, supports_af, af_seen_until_s) at each judged window from beat 40 on, where an
    AF-like strip changes.

    ``second_half``: ``"pvcs"`` (every other beat a confident V: too many to judge) or
    ``"p_waves"`` (a repeating P wave 160 ms before every QRS: judged not AF).
    """
    r_idx, x = _irregular_strip(fs, 80)
    if second_half == "p_waves":
        t = np.arange(x.size) / fs
        for r in r_idx[40:]:
            x += 200.0 * np.exp(-(((t - r / fs + 0.16) / 0.02) ** 2))

    def segment(start: int, stop: int) -> np.ndarray | None:
        return None if start < 0 or stop > x.size else x[start:stop].astype(np.float32)

    fused = FusedAfDetector(AfModel.load(), fs, segment)
    states = []
    for i, r in enumerate(r_idx):
        fused.observe_beat(float(r) / fs, second_half == "pvcs" and i >= 40 and i % 2 == 0)
        if i >= 40 and i % AF_WAVE_HOP_BEATS == 0:  # a window was judged at this beat
            states.append((fused.wave_af, fused.supports_af, fused.af_seen_until_s))
    assert fused.wave_probability == 0.0
    return states


def test_a_window_with_too_many_pvcs_does_not_withdraw_support() -> None:
    states = _support_after_switch(250.0, "pvcs")
    # the episode ends after k_off vetoed windows; until then it stays supported
    assert (True, True) in [s[:2] for s in states]
    assert states[-1] == (False, False, None)
    assert (True, False) not in [s[:2] for s in states]
    # seen up to the last R-peak of the window judged at beat 40 (the last that voted AF,
    # assuming it did), never past it: the vetoed windows vote neither way
    seen = {s[2] for s in states if s[0]}
    assert len(seen) == 1
    assert seen.pop() == pytest.approx(_irregular_strip(250.0, 80)[0][40] / 250.0)


def test_a_window_with_repeating_p_waves_withdraws_support_at_once() -> None:
    states = _support_after_switch(250.0, "p_waves")
    assert (True, False, None) in states  # the episode is still open, no longer supported
    assert states[-1] == (False, False, None)
