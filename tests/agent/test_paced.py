"""Paced patients (``patient.paced``): paced beats never count as PVCs nor start ectopy alarms.

mitdb 102 is paced almost throughout (2,028 paced, 56 fusion-of-paced, 99 normal and 4 V
beats, no V beat in its first 300 s). Its paced beats are wide, and the beat classifier calls
many of them V: with the default ``paced = false`` the first 300 s raise a run (couplets and
runs without the prematurity test of pairs and runs); with
``paced = true`` (a V-labelled beat must be premature against the patient's own rhythm,
:mod:`agent.alarms.ectopy`) they raise no ventricular ectopy alarm.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import wfdb

from agent.alarms.ectopy import ECTOPY_CODES, EctopyRules
from agent.analyze import analyze_record
from agent.beats import Beat
from agent.config import AgentConfig, DspConfig, EctopyConfig, PatientConfig
from agent.inference.bundle import ModelBundle, load_models
from agent.messages import AamiClass, AlarmCode, AlarmLifecycle

SHORT_S = 300


@pytest.fixture(scope="module")
def paced_102(mitdb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 300 s of mitdb 102 (same digital samples, both channels)."""
    folder = tmp_path_factory.mktemp("paced")
    rec = wfdb.rdrecord(str(mitdb / "102"), sampto=SHORT_S * 360, physical=False)
    rec.wrsamp(write_dir=str(folder))
    return folder / "102"


@pytest.fixture(scope="module")
def models() -> ModelBundle:
    return load_models(AgentConfig().inference)


def _ectopy_raised(
    record: Path, models: ModelBundle, *, paced: bool, onset_premature: float | None = 0.9
) -> list[str]:
    cfg = AgentConfig(dsp=DspConfig(powerline_hz=60), patient=PatientConfig(paced=paced))
    ectopy = cfg.alarms.ectopy.model_copy(update={"run_onset_premature": onset_premature})
    cfg = cfg.model_copy(update={"alarms": cfg.alarms.model_copy(update={"ectopy": ectopy})})
    result = asyncio.run(analyze_record(record, cfg, models))
    return [
        e.condition.value
        for e in result.events
        if e.lifecycle is AlarmLifecycle.RAISED and e.condition in ECTOPY_CODES
    ]


def test_paced_record_raises_no_ventricular_ectopy_alarm_when_paced(
    paced_102: Path, models: ModelBundle
) -> None:
    assert _ectopy_raised(paced_102, models, paced=True) == []


def test_the_same_record_raises_false_ectopy_alarms_when_not_marked_paced(
    paced_102: Path, models: ModelBundle
) -> None:
    raised = _ectopy_raised(paced_102, models, paced=False)
    # a run of paced beats read as V: one is left since pairs and runs need a premature
    # first V (agent.alarms.ectopy, "Prematurity of a run"), which most paced runs lack
    assert raised == [AlarmCode.RUN_PVCS.value]
    # without that test, couplets and runs (3 runs and 1 pair since the dominant-template test:
    # paced beats on time that match the template are not PVCs)
    raised = _ectopy_raised(paced_102, models, paced=False, onset_premature=None)
    assert len(raised) >= 3
    assert set(raised) <= {AlarmCode.PAIR_PVCS.value, AlarmCode.RUN_PVCS.value}


def _beat(t_s: float, rr_ms: float | None, cls: AamiClass) -> Beat:
    return Beat(round(t_s * 360), t_s, rr_ms, 1000.0, cls, 0.99)


def _feed(rules: EctopyRules, pattern: list[tuple[float, AamiClass]]) -> list[AlarmCode]:
    """Feed beats (RR ms, class) from t = 0; return the conditions found active."""
    t = 0.0
    found: list[AlarmCode] = []
    for i, (rr_ms, cls) in enumerate(pattern):
        t += rr_ms / 1000.0
        rules.add_beat(_beat(t, None if i == 0 else rr_ms, cls))
        found += [f.code for f in rules.findings(t) if f.active and f.code not in found]
    return found


N, V = AamiClass.N, AamiClass.V


def test_paced_beats_on_time_are_not_pvcs() -> None:
    """Paced rhythm at 70 bpm, every beat called V: nothing (not even a run) when paced."""
    rules = EctopyRules(EctopyConfig(), strip=None, strip_s=6.0, paced=True)
    assert _feed(rules, [(857.0, V)] * 40) == []
    assert rules.pvcs_per_min(40 * 0.857) == 0


def test_premature_v_beats_still_count_in_a_paced_patient() -> None:
    """A couplet and a fast run, premature against the paced 857 ms baseline, are alarmed."""
    rules = EctopyRules(EctopyConfig(), strip=None, strip_s=6.0, paced=True)
    rhythm = [(857.0, V)] * 10 + [(500.0, V), (480.0, V), (1100.0, V)] + [(857.0, V)] * 10
    rhythm += [(450.0, V)] * 8 + [(1200.0, V)] + [(857.0, V)] * 6
    found = _feed(rules, rhythm)
    assert AlarmCode.PAIR_PVCS in found
    assert AlarmCode.VTACH in found


def test_same_beats_not_paced_raise_runs() -> None:
    """Without ``paced`` (and without the prematurity test of runs) the same all-V paced rhythm
    is one long slow ventricular run; with that test (the default) it is none: its first beat
    is not premature (no conducted baseline at all)."""
    rules = EctopyRules(EctopyConfig(run_onset_premature=None), strip=None, strip_s=6.0)
    assert _feed(rules, [(857.0, V)] * 40) == [AlarmCode.RUN_PVCS]
    assert _feed(EctopyRules(EctopyConfig(), strip=None, strip_s=6.0), [(857.0, V)] * 40) == []


def test_no_v_counts_before_a_baseline_after_a_gap() -> None:
    rules = EctopyRules(EctopyConfig(), strip=None, strip_s=6.0, paced=True)
    _feed(rules, [(857.0, N)] * 10)
    rules.reset(9.0)
    t = 10.0
    for rr in (None, 400.0, 400.0):
        t += 0.4
        rules.add_beat(_beat(t, rr, V))
    assert [f.code for f in rules.findings(t + 1.0) if f.active] == []
