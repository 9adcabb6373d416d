"""``bedside plot``: an alarm's evidence strip and a record's tachogram, as PNGs of a set size.

The strip is 6 s of mitdb 119 (from 21 s, where the agent raises bigeminy on this record)
with the reference beat annotations as the labelled beats, so the figure shows real ECG.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import wfdb
from matplotlib import image as mpimg

from agent.cli import EXIT_ERROR, main
from agent.messages import (
    AamiClass,
    AlarmCode,
    AlarmCondition,
    AlarmEvent,
    AlarmEvidence,
    AlarmLifecycle,
    AlarmPriority,
    BeatEvidence,
    EcgStrip,
)
from agent.plot import (
    PlotInputError,
    load_alarm_events,
    plot_alarm_strip,
    plot_tachogram,
    select_alarm,
)

T0_S = 21.0
STRIP_S = 6.0
FS_HZ = 360.0
SYMBOL_TO_AAMI = {"N": AamiClass.N, "A": AamiClass.S, "V": AamiClass.V, "F": AamiClass.F}
STAMP = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def strip_event(mitdb: Path) -> AlarmEvent:
    """A raised bigeminy event whose evidence is 6 s of mitdb 119 and its reference beats."""
    start = int(T0_S * FS_HZ)
    stop = int((T0_S + STRIP_S) * FS_HZ)
    rec = wfdb.rdrecord(str(mitdb / "119"), sampfrom=start, sampto=stop, channels=[0])
    ann = wfdb.rdann(str(mitdb / "119"), "atr", sampfrom=start, sampto=stop - 1)
    samples_uv = [round(v * 1000.0) for v in rec.p_signal[:, 0]]
    beats: list[BeatEvidence] = []
    prev_s: float | None = None
    for sample, symbol in zip(ann.sample, ann.symbol, strict=True):
        if symbol not in SYMBOL_TO_AAMI:
            continue
        t_s = float(sample) / FS_HZ
        rr = None if prev_s is None else (t_s - prev_s) * 1000.0
        beats.append(BeatEvidence(t_s=t_s, rr_ms=rr, aami_class=SYMBOL_TO_AAMI[symbol]))
        prev_s = t_s
    assert sum(b.aami_class is AamiClass.V for b in beats) >= 2  # 119 is bigeminal here
    return AlarmEvent(
        device_id="test",
        ts_utc=STAMP,
        alarm_id="3f2a9c0e1b7d4e6f8a0b1c2d3e4f5a6b",
        condition=AlarmCode.BIGEMINY,
        priority=AlarmPriority.LOW,
        kind=AlarmCondition.PHYSIOLOGICAL,
        lifecycle=AlarmLifecycle.RAISED,
        onset_s=T0_S + 1.0,
        onset_utc=STAMP,
        raised_s=T0_S + 4.0,
        message="Ventricular bigeminy",
        evidence=AlarmEvidence(
            rr_ms=[b.rr_ms for b in beats if b.rr_ms is not None],
            beats=beats,
            strip=EcgStrip(fs_hz=FS_HZ, t0_s=T0_S, samples_uv=samples_uv),
            hr_bpm=78.0,
        ),
    )


def _cleared(event: AlarmEvent) -> AlarmEvent:
    return event.model_copy(
        update={
            "lifecycle": AlarmLifecycle.CLEARED,
            "cleared_s": 60.0,
            "evidence": AlarmEvidence(),
        }
    )


def _write_jsonl(path: Path, events: list[AlarmEvent]) -> Path:
    path.write_text("".join(e.model_dump_json() + "\n" for e in events), encoding="utf-8")
    return path


def _png_shape(path: Path) -> tuple[int, ...]:
    img = mpimg.imread(str(path))
    assert isinstance(img, np.ndarray)
    return tuple(img.shape)


def _ink_fraction(path: Path) -> float:
    """Share of pixels darker than mid-grey (trace, letters, axes)."""
    img = np.asarray(mpimg.imread(str(path)))
    return float((img[:, :, :3].mean(axis=2) < 0.5).mean())


def test_strip_png_has_requested_size(strip_event: AlarmEvent, tmp_path: Path) -> None:
    out = plot_alarm_strip(strip_event, tmp_path / "s" / "strip.png", width_px=1200, height_px=400)
    assert out == tmp_path / "s" / "strip.png"
    assert _png_shape(out) == (400, 1200, 4)
    assert 0.005 < _ink_fraction(out) < 0.5  # a drawn trace, not a blank or a black image


def test_strip_of_cleared_event_is_refused(strip_event: AlarmEvent, tmp_path: Path) -> None:
    with pytest.raises(PlotInputError, match="only raised events"):
        plot_alarm_strip(_cleared(strip_event), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_select_alarm_by_id_condition_and_index(strip_event: AlarmEvent) -> None:
    other = strip_event.model_copy(
        update={"alarm_id": "aa" + strip_event.alarm_id[2:], "condition": AlarmCode.PAUSE}
    )
    events = [strip_event, _cleared(strip_event), other, _cleared(other)]
    assert select_alarm(events) is strip_event
    assert select_alarm(events, alarm_id="3F2A") is strip_event  # prefix, any case
    assert select_alarm(events, condition="pause") is other
    assert select_alarm(events, index=-1) is other
    with pytest.raises(PlotInputError, match="no alarm event with condition vtach"):
        select_alarm(events, condition="vtach")
    with pytest.raises(PlotInputError, match="out of range: 2 matching"):
        select_alarm(events, index=2)
    with pytest.raises(PlotInputError, match=r"1 matching event\(s\) \(cleared\)"):
        select_alarm([_cleared(other)], alarm_id="aa")


def test_load_alarm_events_reports_the_bad_line(strip_event: AlarmEvent, tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "alarms.jsonl", [strip_event])
    assert load_alarm_events(tmp_path) == [strip_event]  # a record folder works too
    path.write_text(path.read_text(encoding="utf-8") + '{"alarm_id": 1}\n', encoding="utf-8")
    with pytest.raises(PlotInputError, match=r"alarms.jsonl:2: not an alarm event"):
        load_alarm_events(path)
    with pytest.raises(PlotInputError, match="cannot read alarm events"):
        load_alarm_events(tmp_path / "missing.jsonl")


@pytest.fixture(scope="module")
def beats_csv(mitdb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A beats.csv of mitdb 119's first 5 min from its reference annotations."""
    ann = wfdb.rdann(str(mitdb / "119"), "atr", sampto=int(300 * FS_HZ))
    folder = tmp_path_factory.mktemp("out") / "119"
    folder.mkdir()
    path = folder / "beats.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sample", "time_s", "aami_class", "confidence"])
        for sample, symbol in zip(ann.sample, ann.symbol, strict=True):
            if symbol in SYMBOL_TO_AAMI or symbol == "Q":
                cls = SYMBOL_TO_AAMI.get(symbol)
                writer.writerow([sample, f"{sample / FS_HZ:.3f}", cls.value if cls else "", ""])
    return path


def test_tachogram_png_has_default_size(beats_csv: Path, tmp_path: Path) -> None:
    out = plot_tachogram(beats_csv, tmp_path / "t.png")
    assert _png_shape(out) == (500, 1600, 4)
    assert _ink_fraction(out) > 0.005


def test_tachogram_needs_two_beats(tmp_path: Path) -> None:
    path = tmp_path / "beats.csv"
    path.write_text("sample,time_s,aami_class,confidence\n360,1.000,N,0.9\n", encoding="utf-8")
    with pytest.raises(PlotInputError, match="1 beat"):
        plot_tachogram(path, tmp_path / "t.png")
    path.write_text("sample,rr\n1,2\n", encoding="utf-8")
    with pytest.raises(PlotInputError, match=r"not a beats\.csv"):
        plot_tachogram(path, tmp_path / "t.png")


def test_cli_plot_both_figures(
    strip_event: AlarmEvent,
    beats_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    jsonl = _write_jsonl(tmp_path / "alarms.jsonl", [strip_event, _cleared(strip_event)])
    png = tmp_path / "strip.png"
    assert main(["plot", "strip", str(jsonl), "--id", "3f2a", "--out", str(png)]) == 0
    assert _png_shape(png) == (500, 1600, 4)
    assert "bigeminy alarm 3f2a9c0e at 22.0 s" in capsys.readouterr().out
    tacho = tmp_path / "tacho.png"
    args = ["plot", "tachogram", str(beats_csv.parent), "--out", str(tacho)]
    assert main([*args, "--width", "800", "--height", "300"]) == 0
    assert _png_shape(tacho) == (300, 800, 4)
    # only the cleared event left: one clear error line, error exit status
    _write_jsonl(jsonl, [_cleared(strip_event)])
    assert main(["plot", "strip", str(jsonl), "--out", str(png)]) == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"bedside: error: {jsonl}: 1 matching event(s) (cleared)")
    # a record that raised nothing, given by its output folder: the error names the file
    jsonl.write_text("", encoding="utf-8")
    assert main(["plot", "strip", str(tmp_path), "--out", str(png)]) == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"bedside: error: {jsonl}: no alarm events in the file"]


def test_live_agent_does_not_import_matplotlib() -> None:
    code = (
        "import sys, agent.cli, agent.plot, agent.analyze, agent.runtime;"
        " print('matplotlib' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip() == "False"
