"""A wearable's link drops mid-stream: sensor_disconnected at once, no leads-off for the gap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb

from agent.config import AgentConfig
from agent.inference.bundle import load_models
from agent.messages import AlarmCode, AlarmEvent, AlarmLifecycle
from firmware_bridge.frames import DeviceEventKind
from tests.agent.core.streaming import Stream

FS = 360.0


def _lifecycle(events: list[AlarmEvent], code: AlarmCode, what: AlarmLifecycle) -> list[float]:
    return [e.onset_s for e in events if e.condition is code and e.lifecycle is what]


@pytest.mark.parametrize(("vf", "gap_frames"), [(True, False), (False, False), (True, True)])
def test_link_drop_with_nan_filled_gap(mitdb: Path, vf: bool, gap_frames: bool) -> None:
    rec = wfdb.rdrecord(str(mitdb / "100"), channels=[0], sampto=round(FS * 60))
    x = (rec.p_signal[:, 0] * 1000).astype(np.float32)
    cfg = AgentConfig.model_validate(
        {"dsp": {"powerline_hz": 60}, "inference": {"beats": False, "af": False, "vf": vf}}
    )
    p = Stream(cfg, FS, load_models(cfg.inference))
    events: list[AlarmEvent] = []
    chunk = round(FS * 0.5)
    drop_at, back_at = round(FS * 20), round(FS * 30)
    for i in range(0, drop_at, chunk):
        events += p.ecg(x[i : min(i + chunk, drop_at)]).events
    # the link drops at 20 s: raised at once, before any further sample
    out = p.event(DeviceEventKind.DISCONNECTED, 99.0, "link lost")
    (onset,) = _lifecycle(out.events, AlarmCode.SENSOR_DISCONNECTED, AlarmLifecycle.RAISED)
    assert onset == pytest.approx(20.0)
    events += out.events
    # it comes back: the transport fills the 10 s gap with NaN, then real samples flow; the
    # gap comes in the frame that ends it, or in 0.5 s frames of its own before the samples
    events += p.event(DeviceEventKind.CONNECTED, 99.5).events
    gap = np.full(back_at - drop_at, np.nan, dtype=np.float32)
    if gap_frames:
        for i in range(0, len(gap), chunk):
            events += p.ecg(gap[i : i + chunk]).events
        events += p.ecg(x[back_at : back_at + chunk]).events
    else:
        events += p.ecg(np.concatenate([gap, x[back_at : back_at + chunk]])).events
    for i in range(back_at + chunk, len(x), chunk):
        events += p.ecg(x[i : i + chunk]).events
    events += p.finish().events
    cleared = [
        e
        for e in events
        if e.condition is AlarmCode.SENSOR_DISCONNECTED and e.lifecycle is AlarmLifecycle.CLEARED
    ]
    assert len(cleared) == 1
    assert cleared[0].cleared_s is not None
    # the condition ended where real samples resumed, 30 s, and the engine clears it once it
    # has been false for its clear delay (3 s), as every other condition: 33 s, however the
    # gap was framed (before session 23: at 30 s when the gap came in the frame that ends it,
    # the link not judged through the gap)
    assert cleared[0].onset_s == pytest.approx(20.0)
    assert cleared[0].cleared_s == pytest.approx(30.0 + cfg.alarms.clear_delay_s)
    # the NaN gap is the disconnection, not a flat line or an asystole
    for code in (AlarmCode.LEADS_OFF, AlarmCode.ASYSTOLE, AlarmCode.PAUSE, AlarmCode.SIGNAL_POOR):
        assert not _lifecycle(events, code, AlarmLifecycle.RAISED), code
