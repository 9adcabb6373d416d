"""Bigeminy and trigeminy need a clean conducted beat before each V (``conducted_min_corr``).

A fusion beat (a sinus beat and a PVC firing together) that the classifier calls N would
otherwise be the "normal" beat of a cycle: mitdb 208's long stretches of N, F, V (a couplet
whose first beat is fused) read as ventricular trigeminy, which its annotators did not call.
First on labelled beats fed to the rules, then through the whole agent on 208, labelled by the
beat fold model that never saw it, judged against 208's reference beats.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.alarms.ectopy import EctopyRules
from agent.beats import Beat
from agent.config import AgentConfig, EctopyConfig
from agent.messages import AamiClass, AlarmCode, AlarmEvent, AlarmLifecycle
from tests.records import cut_record, fold_model_events
from tools.evaluate.alarms import judge, load_reference

# label -> (class, template correlation): ``f`` is a beat called N that does not look like
# the patient's conducted beat (a fusion beat), ``N`` one that does
_LABELS = {
    "N": (AamiClass.N, 0.99),
    "f": (AamiClass.N, 0.70),
    "V": (AamiClass.V, 0.30),
}


def _beats(labels: str) -> list[Beat]:
    """Beats at 800 ms, each V 450 ms after the beat before it and 1,150 ms before the next."""
    out: list[Beat] = []
    t, prev = 1.0, ""
    for i, ch in enumerate(labels):
        rr_ms = 450.0 if ch == "V" else 1150.0 if prev == "V" else 800.0
        t += rr_ms / 1000.0
        cls, corr = _LABELS[ch]
        out.append(Beat(i, t, rr_ms, 1000.0, cls, 0.95, template_corr=corr))
        prev = ch
    return out


def _raised(beats: Sequence[Beat], **cfg: float | None) -> set[AlarmCode]:
    rules = EctopyRules(EctopyConfig.model_validate(cfg), strip=None, strip_s=10.0)
    seen: set[AlarmCode] = set()
    for beat in beats:
        rules.feed(beat)
        seen |= {f.code for f in rules.findings(beat.r_peak_time_s) if f.active}
    return seen


def test_fusion_before_each_v_makes_no_trigeminy() -> None:
    beats = _beats("N" * 10 + "NfV" * 5 + "NN")
    assert AlarmCode.TRIGEMINY not in _raised(beats)  # default 0.85
    assert AlarmCode.TRIGEMINY in _raised(beats, conducted_min_corr=None)


def test_clean_trigeminy_and_bigeminy_are_still_raised() -> None:
    assert AlarmCode.TRIGEMINY in _raised(_beats("N" * 10 + "NNV" * 5 + "NN"))
    assert AlarmCode.BIGEMINY in _raised(_beats("N" * 10 + "NV" * 5 + "NN"))
    # an unclean beat that is not before a V does not break trigeminy
    assert AlarmCode.TRIGEMINY in _raised(_beats("N" * 10 + "fNV" * 5 + "NN"))


def test_fusion_before_each_v_makes_no_bigeminy() -> None:
    beats = _beats("N" * 10 + "fV" * 5 + "NN")
    assert AlarmCode.BIGEMINY not in _raised(beats)
    assert AlarmCode.BIGEMINY in _raised(beats, conducted_min_corr=None)


# -- through the agent ----------------------------------------------------------------------

START_S, END_S = 740, 865


@pytest.fixture(scope="module")
def fused_208(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mitdb 208, 740-865 s: mostly N, F, V cycles (reference), no annotated trigeminy."""
    return cut_record(data_dir, "mitdb", "208", START_S, END_S, tmp_path_factory.mktemp("m208"))


def _raised_events(record: Path, conducted_min_corr: float | None) -> list[AlarmEvent]:
    events = fold_model_events(record, "208", {"conducted_min_corr": conducted_min_corr})
    return [e for e in events if e.lifecycle is AlarmLifecycle.RAISED]


def _shifted(event: AlarmEvent) -> AlarmEvent:
    """The event on the whole record's clock (the cut record starts at ``START_S``)."""
    assert event.raised_s is not None
    return event.model_copy(
        update={"onset_s": event.onset_s + START_S, "raised_s": event.raised_s + START_S}
    )


def test_fused_couplets_of_208_raise_no_trigeminy_through_the_agent(
    data_dir: Path, fused_208: Path
) -> None:
    ref = load_reference(data_dir / "mitdb" / "208")
    cfg = AgentConfig().alarms
    before = _raised_events(fused_208, None)
    after = _raised_events(fused_208, cfg.ectopy.conducted_min_corr)
    tri_before = [e for e in before if e.condition is AlarmCode.TRIGEMINY]
    assert len(tri_before) >= 2
    assert not any(judge(_shifted(e), ref, cfg) for e in tri_before)  # all false
    assert [e for e in after if e.condition is AlarmCode.TRIGEMINY] == []
    others = (AlarmCode.RUN_PVCS, AlarmCode.PAIR_PVCS, AlarmCode.VTACH, AlarmCode.VFIB)

    def rest(events: list[AlarmEvent]) -> list[tuple[str, float]]:
        return [(e.condition.value, e.onset_s) for e in events if e.condition in others]

    assert rest(after) == rest(before)
