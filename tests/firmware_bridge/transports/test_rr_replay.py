"""RR-only replay: WFDB beat annotations and CSV files become Heart-Rate-Service notifications."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb

from firmware_bridge.errors import RecordNotFoundError, RecordReadError
from firmware_bridge.frames import DeviceEvent, DeviceEventKind, RrIntervals
from firmware_bridge.transports.rr_replay import RrReplaySource


async def _collect(source: RrReplaySource) -> tuple[list[RrIntervals], list[DeviceEvent]]:
    rr: list[RrIntervals] = []
    events: list[DeviceEvent] = []
    async for frame in source.frames():
        if isinstance(frame, RrIntervals):
            rr.append(frame)
        elif isinstance(frame, DeviceEvent):
            events.append(frame)
    return rr, events


async def test_afdb_qrs_notifications_carry_every_interval(data_dir: Path) -> None:
    record = data_dir / "afdb" / "04015"
    ann = wfdb.rdann(str(record), "qrs")
    samples = np.asarray(ann.sample)
    source = RrReplaySource(record, annotations="qrs", speed=None)
    frames, events = await _collect(source)
    rr = np.concatenate([f.rr_ms for f in frames])
    expected = np.diff(samples) / ann.fs * 1000.0
    assert len(rr) == len(samples) - 1
    np.testing.assert_allclose(rr, expected, atol=1e-9)
    # each notification covers one second of stream time and ends at its last R-peak
    times = np.array([f.t_s for f in frames])
    assert np.all(np.diff(np.floor(times)) >= 1)
    assert times[-1] == pytest.approx(samples[-1] / ann.fs)
    assert [e.kind for e in events] == [DeviceEventKind.END_OF_STREAM]


async def test_csv_input(tmp_path: Path) -> None:
    path = tmp_path / "strap.csv"
    path.write_text("rr_ms\n800\n810\n790\n1200\n400\n", encoding="utf-8")
    source = RrReplaySource(path, speed=None, frame_s=1.0)
    frames, _ = await _collect(source)
    assert [v for f in frames for v in f.rr_ms] == [800.0, 810.0, 790.0, 1200.0, 400.0]
    assert frames[-1].t_s == pytest.approx(4.0)
    assert source.duration_s == pytest.approx(4.0)


def test_csv_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("rr_ms\n800\n-5\n", encoding="utf-8")
    with pytest.raises(RecordReadError, match="line 3"):
        RrReplaySource(bad)
    text = tmp_path / "text.csv"
    text.write_text("rr_ms\n800\nabc\n", encoding="utf-8")
    with pytest.raises(RecordReadError, match="line 3: 'abc'"):
        RrReplaySource(text)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(RecordReadError, match="no rr_ms column"):
        RrReplaySource(wrong)
    with pytest.raises(RecordNotFoundError):
        RrReplaySource(tmp_path / "missing.csv")


def test_missing_annotation_file(data_dir: Path) -> None:
    with pytest.raises(RecordNotFoundError, match=r"04015\.nope"):
        RrReplaySource(data_dir / "afdb" / "04015", annotations="nope")
