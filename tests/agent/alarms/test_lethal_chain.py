"""The ectopy alarms' chain under V-tach and VF (``alarms.ectopy.lethal_chain``).

A run, pair, bigeminy, trigeminy or PVCs/min decided while ``vtach`` or ``vfib`` is true is
not raised: the lethal alarm speaks for those beats. First on labelled beats fed to the rules
with the lethal condition switched by hand, then through the whole agent on mitdb 207's
ventricular flutter, labelled by the beat fold model that never saw 207: with the chain off,
runs, pairs and bigeminy come out in the middle of its VT and VF alarms (the reference has
flutter waves there, not V beats); with it on, none does, and every ``vtach`` and ``vfib``
event is the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.alarms.ectopy import EctopyConfig
from agent.messages import AlarmCode, AlarmEvent, AlarmLifecycle
from tests.agent.alarms.test_ectopy import RR_N_S, Harness, _v_times, at
from tests.records import cut_record, fold_model_events

LETHAL = (AlarmCode.VTACH, AlarmCode.VFIB)
LOWER = (
    AlarmCode.RUN_PVCS,
    AlarmCode.PAIR_PVCS,
    AlarmCode.BIGEMINY,
    AlarmCode.TRIGEMINY,
    AlarmCode.FREQUENT_PVCS,
)
CLEAR_DELAY_S = 3.0  # AlarmConfig.clear_delay_s, the default


class Switch:
    """The lethal condition, switched by the test."""

    def __init__(self) -> None:
        self.on = False

    def __call__(self) -> bool:
        return self.on


def _chained_harness(*, chain: bool = True) -> tuple[Harness, Switch]:
    h = Harness(EctopyConfig(run_onset_premature=None, lethal_chain=chain))
    lethal = Switch()
    h.rules.lethal = lethal
    return h, lethal


def test_a_pair_decided_while_lethal_is_not_raised_and_one_after_is() -> None:
    h, lethal = _chained_harness()
    h.add("NNNNNN")
    lethal.on = True
    h.add("VV", rr_s=0.5)
    h.add("N" * 12)
    assert h.raised() == []
    lethal.on = False
    h.add("VV", rr_s=0.5)
    h.add("NN")
    (pair,) = h.raised(AlarmCode.PAIR_PVCS)
    assert pair.onset_s == at(_v_times(h)[2])


def test_the_switch_off_raises_the_pair_as_before() -> None:
    h, lethal = _chained_harness(chain=False)
    h.add("NNNNNN")
    lethal.on = True
    h.add("VV", rr_s=0.5)
    h.add("NN")
    assert [e.condition for e in h.raised()] == [AlarmCode.PAIR_PVCS]


def test_a_pattern_decided_before_the_lethal_condition_stays_raised() -> None:
    h, lethal = _chained_harness()
    h.add("NNNNNN")
    h.add("VV", rr_s=0.5)
    h.add("N")  # decides the pair
    lethal.on = True
    h.add("N" * 3)
    (pair,) = h.raised(AlarmCode.PAIR_PVCS)
    assert pair.raised_s == at(_v_times(h)[1] + RR_N_S)


def test_pvcs_of_runs_closed_while_lethal_are_not_counted_per_minute() -> None:
    h, lethal = _chained_harness()
    rr = 5.0 / 6.0
    h.add("NNNNNN", rr_s=rr)
    lethal.on = True
    h.add("NNNNNV" * 12, rr_s=rr)
    h.add("NN", rr_s=rr)
    assert h.rules.pvcs_per_min(h.t) == 0
    assert h.raised() == []
    lethal.on = False
    h.add("NNNNNV" * 3, rr_s=rr)
    h.add("N", rr_s=rr)
    assert h.rules.pvcs_per_min(h.t) == 3


def test_a_slow_run_is_raised_at_its_next_beat_once_the_lethal_condition_ends() -> None:
    h, lethal = _chained_harness()
    h.add("NNNNNNNN")
    lethal.on = True
    h.add("VVVVVV", rr_s=60 / 90)  # a slow run of 6: decided at its 6th beat, held back
    assert h.raised() == []
    lethal.on = False
    h.add("VV", rr_s=60 / 90)
    (run,) = h.raised(AlarmCode.RUN_PVCS)
    v = _v_times(h)
    assert run.onset_s == at(v[0])
    assert run.raised_s == at(v[6])
    assert run.message == "Run of 7 PVCs at 90 bpm (ventricular rhythm)"


def test_vtach_of_a_beat_run_is_never_held_back() -> None:
    h, lethal = _chained_harness()
    h.add("NNNNNNNN")
    lethal.on = True
    h.add("VVVVVV", rr_s=0.4)
    h.add("NN")
    assert [e.condition for e in h.raised()] == [AlarmCode.VTACH]


# -- through the agent ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def flutter_207(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mitdb 207, 1530-1660 s: VT and ventricular flutter (reference) from 1538 s to 1651 s."""
    return cut_record(data_dir, "mitdb", "207", 1530, 1660, tmp_path_factory.mktemp("mit207"))


def _events(record: Path, *, chain: bool) -> list[AlarmEvent]:
    events = fold_model_events(record, "207", {"lethal_chain": chain})
    return [e for e in events if e.lifecycle in (AlarmLifecycle.RAISED, AlarmLifecycle.CLEARED)]


def _lethal_spans(events: list[AlarmEvent]) -> list[tuple[float, float]]:
    """(raised, last true) of every vtach and vfib alarm: cleared less the clear delay."""
    spans = []
    for e in events:
        if e.condition in LETHAL and e.lifecycle is AlarmLifecycle.CLEARED:
            assert e.raised_s is not None
            assert e.cleared_s is not None
            spans.append((e.raised_s, e.cleared_s - CLEAR_DELAY_S))
    return spans


def _raised_under_lethal(events: list[AlarmEvent]) -> list[AlarmEvent]:
    spans = _lethal_spans(events)
    return [
        e
        for e in events
        if e.condition in LOWER
        and e.lifecycle is AlarmLifecycle.RAISED
        and e.raised_s is not None
        and any(a < e.raised_s <= b for a, b in spans)
    ]


def _lethal_events(events: list[AlarmEvent]) -> list[tuple[str, str, float, float | None]]:
    return [
        (e.condition.value, e.lifecycle.value, e.onset_s, e.raised_s)
        for e in events
        if e.condition in LETHAL
    ]


def test_no_run_or_pair_inside_a_flutter_episode_through_the_agent(flutter_207: Path) -> None:
    before = _events(flutter_207, chain=False)
    after = _events(flutter_207, chain=True)
    assert len(_lethal_spans(before)) >= 3  # vtach and vfib, raised and cleared
    assert len(_raised_under_lethal(before)) >= 4  # runs, pairs, bigeminy in the flutter
    assert _raised_under_lethal(after) == []
    assert _lethal_events(after) == _lethal_events(before)
