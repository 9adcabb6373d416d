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


def test_csv_rr_outside_the_plausibility_gate_is_refused(tmp_path: Path) -> None:
    """1,000,000 ms once raised a 1000 s asystole; now the file is refused, the line named."""
    long = tmp_path / "long.csv"
    long.write_text("rr_ms\n800\n810\n1000000\n790\n", encoding="utf-8")
    with pytest.raises(RecordReadError, match=r"line 4: RR 1000000 ms is not plausible"):
        RrReplaySource(long)
    short = tmp_path / "short.csv"
    short.write_text("rr_ms\n800\n99\n", encoding="utf-8")
    with pytest.raises(RecordReadError, match=r"line 3: RR 99 ms is not plausible"):
        RrReplaySource(short)
    # the gate is inclusive: a 30 s pause and a 100 ms interval still pass
    edge = tmp_path / "edge.csv"
    edge.write_text("rr_ms\n100\n30000\n", encoding="utf-8")
    assert RrReplaySource(edge).duration_s == pytest.approx(30.1)


def _truncated_copy(data_dir: Path, tmp_path: Path, n_bytes: int) -> Path:
    """Copy afdb 04015 (header + .qrs) with the .qrs cut to ``n_bytes``."""
    src = data_dir / "afdb" / "04015"
    (tmp_path / "04015.hea").write_bytes(src.with_suffix(".hea").read_bytes())
    data = src.with_suffix(".qrs").read_bytes()
    assert data[-2:] == b"\x00\x00"  # PhysioNet's file ends with the end-of-file marker
    (tmp_path / "04015.qrs").write_bytes(data[:n_bytes])
    return tmp_path / "04015"


@pytest.mark.parametrize("n_bytes", [44_004, 29_337])
def test_truncated_qrs_is_refused(data_dir: Path, tmp_path: Path, n_bytes: int) -> None:
    """An even cut was analysed silently (tail lost); an odd one failed with a reshape message."""
    record = _truncated_copy(data_dir, tmp_path, n_bytes)
    with pytest.raises(RecordReadError, match=rf"truncated \({n_bytes} bytes, no WFDB end-of"):
        RrReplaySource(record, annotations="qrs")


def test_every_shared_annotation_file_has_the_end_marker(data_dir: Path) -> None:
    """The check refuses no complete PhysioNet annotation file."""
    from firmware_bridge.transports.rr_replay import check_annotation_complete

    files = sorted(p for ext in ("qrs", "atr") for p in data_dir.glob(f"*/*.{ext}"))
    assert len(files) >= 100
    for path in files:
        check_annotation_complete(path)
