"""``bedside analyze`` over many records: parallel jobs, bad records skipped, summary, WFDB beats.

The records are the first 90 s of mitdb 207 (ventricular ectopy: bigeminy, runs, VT) and of
mitdb 201 (AF from about 12 s), written as WFDB records in a temporary folder so each
analysis takes well under a second of CPU.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
import pytest
import wfdb

from agent.analyze import RecordResult, analyze_record_blocking
from agent.batch import (
    BEAT_ANNOTATION_EXT,
    SUMMARY_CLASSES,
    UNCLASSIFIED,
    BatchReport,
    RecordFailure,
    analyze_records,
    covered_s,
    stop_pool,
    summarize_record,
    summary_table,
)
from agent.beats import Beat
from agent.cli import EXIT_ERROR, main
from agent.config import AgentConfig, load_config
from agent.inference.bundle import load_models
from agent.messages import AamiClass, AlarmEvent
from tools.golden import OUTPUT_FILES, masked_text

SHORT_S = 90
RECORDS = ("207", "201")


@pytest.fixture(scope="module")
def short_records(mitdb: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The first ``SHORT_S`` seconds of each of ``RECORDS``, same digital samples."""
    folder = tmp_path_factory.mktemp("short")
    out: dict[str, Path] = {}
    for name in RECORDS:
        rec = wfdb.rdrecord(str(mitdb / name), sampto=SHORT_S * 360, physical=False)
        rec.wrsamp(write_dir=str(folder))
        out[name] = folder / name
    return out


@pytest.fixture(scope="module")
def cfg() -> AgentConfig:
    return load_config(None, {})


@pytest.fixture(scope="module")
def serial(
    short_records: dict[str, Path], cfg: AgentConfig, tmp_path_factory: pytest.TempPathFactory
) -> tuple[BatchReport, Path]:
    """Both records analysed with ``jobs=1`` (in this process)."""
    out = tmp_path_factory.mktemp("jobs1")
    report = analyze_records([str(p) for p in short_records.values()], out, cfg, jobs=1)
    return report, out


def _beats_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _assert_same_outputs(ref: Path, got: Path) -> None:
    """Every record's outputs under ``got`` are ``ref``'s (alarm ids and wall clock masked)."""
    for name in RECORDS:
        for fname in OUTPUT_FILES:
            want = (ref / name / fname).read_text(encoding="utf-8")
            have = (got / name / fname).read_text(encoding="utf-8")
            assert masked_text(fname, have) == masked_text(fname, want), (name, fname)
        ann = f"{name}.{BEAT_ANNOTATION_EXT}"
        assert (ref / name / ann).read_bytes() == (got / name / ann).read_bytes()


def test_parallel_outputs_identical_to_serial(
    serial: tuple[BatchReport, Path],
    short_records: dict[str, Path],
    cfg: AgentConfig,
    tmp_path: Path,
) -> None:
    report1, out1 = serial
    seen: list[str] = []
    report2 = analyze_records(
        [str(p) for p in short_records.values()],
        tmp_path,
        cfg,
        jobs=2,
        on_record=lambda o: seen.append(o.record),
    )
    assert report2.jobs == 2
    assert report1.jobs == 1
    assert not report1.failures
    assert not report2.failures
    # results come back in the order given, whatever order the workers finished in
    assert [r.record for r in report2.results] == list(RECORDS)
    assert sorted(seen) == sorted(RECORDS)
    _assert_same_outputs(out1, tmp_path)
    # the comparison is not vacuous: 207's stretch raises alarms, 201's has AF
    assert len((out1 / "207" / "alarms.jsonl").read_text(encoding="utf-8").splitlines()) > 5
    assert "AFIB" in (out1 / "201" / "rhythm.csv").read_text(encoding="utf-8")


def test_blocking_analysis_never_formats_the_result(
    short_records: dict[str, Path], cfg: AgentConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``analyze_record_blocking`` never takes the ``repr`` of a record's result.

    ``asyncio.run(analyze_record(...))`` did, on leaving (``signal.signal`` formats the
    restored SIGINT handler, which holds the finished task and its result): MBs of text per
    record, in every worker of ``bedside analyze`` started from a terminal. ``asyncio.run``
    takes that path only while SIGINT has Python's default handler, so the test sets it (a
    shell's background job, as CI may be, starts with SIGINT ignored).
    """
    formatted: list[str] = []

    def _repr(self: RecordResult) -> str:
        formatted.append(self.record)
        return "RecordResult(...)"

    monkeypatch.setattr(RecordResult, "__repr__", _repr)
    models = load_models(cfg.inference)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = analyze_record_blocking(short_records["207"], cfg, models)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(result.beats) > SHORT_S
    assert formatted == []


def test_beat_annotations_match_beats_csv(serial: tuple[BatchReport, Path]) -> None:
    _, out = serial
    for name in RECORDS:
        rows = _beats_rows(out / name / "beats.csv")
        ann = wfdb.rdann(str(out / name / name), BEAT_ANNOTATION_EXT)
        assert ann.fs == 360
        np.testing.assert_array_equal(ann.sample, [int(r["sample"]) for r in rows])
        assert list(ann.symbol) == [r["aami_class"] or "Q" for r in rows]
        assert len(rows) > SHORT_S  # a beat a second at least (207 and 201 run 70-110 bpm)
    # 207's stretch is mostly ventricular ectopy: the letters carry the classes
    symbols = wfdb.rdann(str(out / "207" / "207"), BEAT_ANNOTATION_EXT).symbol
    assert symbols.count("V") > symbols.count("N") > 0


def test_summary_agrees_with_written_files(serial: tuple[BatchReport, Path]) -> None:
    report, out = serial
    for result in report.results:
        summary = summarize_record(result)
        rows = _beats_rows(out / result.record / "beats.csv")
        assert list(summary.beats_by_class) == list(SUMMARY_CLASSES)
        for cls in SUMMARY_CLASSES:
            letter = "" if cls == UNCLASSIFIED else cls
            assert summary.beats_by_class[cls] == sum(r["aami_class"] == letter for r in rows)
        lines = (out / result.record / "alarms.jsonl").read_text(encoding="utf-8").splitlines()
        raised = [json.loads(ln)["condition"] for ln in lines if '"lifecycle":"raised"' in ln]
        assert sum(summary.alarms_raised.values()) == len(raised)
        assert summary.duration_s == pytest.approx(SHORT_S)
    s201 = summarize_record(report.results[1])
    # AF from about 12 s to the end of the 90 s excerpt (the reference's (AFIB episode)
    assert 50.0 < s201.af_burden_pct <= 100.0
    assert s201.alarms_raised.get("afib") == 1
    table = summary_table([summarize_record(r) for r in report.results])
    assert table[0].split()[:3] == ["record", "min", "N"]
    assert table[2].startswith("201 ")
    assert "afib 1" in table[2]


def _result(
    duration_s: float,
    beats: list[Beat] | None = None,
    episodes: dict[str, list[tuple[float, float]]] | None = None,
    leads_off: list[tuple[float, float]] | None = None,
) -> RecordResult:
    return RecordResult(
        record="x",
        fs_hz=360.0,
        source_fs_hz=360.0,
        duration_s=duration_s,
        beats=beats or [],
        episodes=episodes or {},
        leads_off=leads_off or [],
    )


def test_covered_s_counts_overlaps_once_and_clips() -> None:
    assert covered_s([(10.0, 30.0), (25.0, 40.0)], 100.0) == pytest.approx(30.0)
    assert covered_s([(90.0, 120.0), (-5.0, 5.0)], 100.0) == pytest.approx(15.0)
    assert covered_s([(50.0, 60.0), (0.0, 100.0)], 100.0) == pytest.approx(100.0)
    assert covered_s([], 100.0) == 0.0


def test_summarize_record_on_hand_built_result() -> None:
    beats = [
        Beat(0, 0.0, None, 1000.0, AamiClass.N, 0.9),
        Beat(360, 1.0, 1000.0, 1000.0, AamiClass.V, 0.8),
        Beat(720, 2.0, 1000.0, 1000.0, None, None),
        Beat(1080, 3.0, 1000.0, 1000.0, AamiClass.N, 0.95),
    ]
    result = _result(
        200.0,
        beats=beats,
        episodes={"AFIB": [(10.0, 30.0), (25.0, 40.0)], "VF": [(50.0, 60.0)]},
        leads_off=[(190.0, 250.0)],
    )
    summary = summarize_record(result)
    assert summary.beats_by_class == {"N": 2, "S": 0, "V": 1, "F": 0, "Q": 0, UNCLASSIFIED: 1}
    assert summary.af_burden_pct == pytest.approx(15.0)  # 30 s of 200 s
    assert summary.leads_off_pct == pytest.approx(5.0)  # 10 s of 200 s (clipped at the end)
    assert summary.alarms_raised == {}
    assert summarize_record(_result(0.0)).af_burden_pct == 0.0


def test_bad_records_are_skipped_and_reported(
    short_records: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    good = short_records["207"]
    shutil.copy(good.with_suffix(".hea"), bad / "207.hea")
    data = good.with_suffix(".dat").read_bytes()
    (bad / "207.dat").write_bytes(data[: len(data) // 3])  # truncated signal file
    missing = tmp_path / "nope"
    out = tmp_path / "out"
    status = main(
        ["analyze", str(missing), str(good), str(bad / "207"), "--out", str(out), "-j", "1"]
    )
    captured = capsys.readouterr()
    assert status == EXIT_ERROR
    errors = [ln for ln in captured.err.splitlines() if ln.startswith("bedside: error:")]
    assert len(errors) == 2, captured.err
    assert "record not found" in errors[0]
    assert str(missing) in errors[0]
    assert "cannot read WFDB record" in errors[1]
    assert "Traceback" not in captured.err
    for fname in (*OUTPUT_FILES, f"207.{BEAT_ANNOTATION_EXT}"):
        assert (out / "207" / fname).stat().st_size > 0
    lines = captured.out.splitlines()
    assert lines[-1].startswith("analyzed 1 record(s), 1.5 min in ")
    # 1.5 min takes a tenth of a second: the CPU figure keeps two decimals, never "0.0 s"
    cpu_txt = lines[-1].split(" min in ")[1].split(" s CPU")[0]
    assert len(cpu_txt.split(".")[1]) == 2, lines[-1]
    assert float(cpu_txt) > 0.0, lines[-1]
    assert lines[-1].endswith(f"→ {out}; 2 record(s) failed")
    assert lines[0].split()[:2] == ["record", "min"]
    assert lines[1].startswith("207 ")


def test_quiet_prints_only_the_final_line(
    short_records: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["-q", "analyze", str(short_records["201"]), "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert status == 0
    assert len(captured.out.splitlines()) == 1
    assert captured.out.startswith("analyzed 1 record(s), 1.5 min")
    assert "[1/1]" not in captured.err


def test_outputs_do_not_depend_on_the_chunk_size(
    serial: tuple[BatchReport, Path],
    short_records: dict[str, Path],
    cfg: AgentConfig,
    tmp_path: Path,
) -> None:
    _, ref = serial
    report = analyze_records([str(p) for p in short_records.values()], tmp_path, cfg, chunk_s=2.5)
    assert len(report.results) == len(RECORDS)
    _assert_same_outputs(ref, tmp_path)


@pytest.mark.parametrize("value", ["0", "-5", "nan"])
def test_chunk_size_must_be_positive(
    short_records: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    value: str,
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(short_records["201"]), "--out", str(tmp_path), "--chunk-s", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--chunk-s" in err
    assert "seconds" in err


def test_jobs_must_be_positive(cfg: AgentConfig, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        analyze_records(["x"], tmp_path, cfg, jobs=0)


def test_failure_is_a_value_not_an_exception(cfg: AgentConfig, tmp_path: Path) -> None:
    seen: list[RecordFailure] = []
    report = analyze_records(
        [str(tmp_path / "a"), str(tmp_path / "b")],
        tmp_path / "out",
        cfg,
        jobs=1,
        on_record=lambda o: seen.append(o) if isinstance(o, RecordFailure) else None,
    )
    assert report.results == []
    assert [f.record for f in report.failures] == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert seen == report.failures
    assert all("record not found" in f.message for f in report.failures)


def test_alarm_events_round_trip_for_summary(serial: tuple[BatchReport, Path]) -> None:
    """The summary counts raised events of the in-memory result; the file holds the same."""
    report, out = serial
    result = report.results[0]
    lines = (out / "207" / "alarms.jsonl").read_text(encoding="utf-8").splitlines()
    events = [AlarmEvent.model_validate_json(ln) for ln in lines]
    assert [e.condition for e in events] == [e.condition for e in result.events]


def test_dask_cluster_outputs_identical_to_local(
    serial: tuple[BatchReport, Path],
    short_records: dict[str, Path],
    cfg: AgentConfig,
    tmp_path: Path,
) -> None:
    """A local Dask cluster of two worker processes writes what the local run wrote."""
    distributed = pytest.importorskip("distributed")
    _, out1 = serial
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
    ):
        seen: list[str] = []
        bad = str(short_records["207"].parent / "missing")
        records = [str(short_records["207"]), bad, str(short_records["201"])]
        report2 = analyze_records(
            records,
            tmp_path,
            cfg,
            scheduler=cluster.scheduler_address,
            on_record=lambda o: seen.append(o.record),
        )
    assert report2.jobs == 2
    assert [r.record for r in report2.results] == list(RECORDS)
    assert [f.record for f in report2.failures] == [bad]
    assert "not found" in report2.failures[0].message
    assert len(seen) == 3
    _assert_same_outputs(out1, tmp_path)


def test_unreachable_scheduler_is_one_clear_error(
    short_records: dict[str, Path], cfg: AgentConfig, tmp_path: Path
) -> None:
    pytest.importorskip("distributed")
    from agent.errors import BedsideError

    with pytest.raises(BedsideError, match="cannot reach the Dask scheduler"):
        analyze_records([str(short_records["207"])], tmp_path, cfg, scheduler="tcp://127.0.0.1:9")


def test_unsupported_rate_fails_the_record_in_one_line(
    mitdb: Path, cfg: AgentConfig, tmp_path: Path
) -> None:
    """A 50 Hz record is refused before analysis (not one error per beat); others go on."""
    rec = wfdb.rdrecord(str(mitdb / "100"), sampto=20 * 360, channels=[0])
    low = rec.p_signal[::8, :]  # 45 Hz
    wfdb.wrsamp(
        "slow",
        fs=45,
        units=["mV"],
        sig_name=["MLII"],
        p_signal=low,
        fmt=["16"],
        write_dir=str(tmp_path),
    )
    report = analyze_records([str(tmp_path / "slow")], tmp_path / "out", cfg, jobs=1)
    assert not report.results
    assert len(report.failures) == 1
    assert "45 Hz is not supported" in report.failures[0].message
    assert "\n" not in report.failures[0].message


def _worker_pids(parent: int) -> list[int]:
    """PIDs of ``parent``'s pool workers (its children running multiprocessing's spawn_main)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    pids = []
    for pid in map(int, children):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in cmdline:
            pids.append(pid)
    return pids


def _gone(pid: int) -> bool:
    """True when ``pid`` has exited (no such process, or a zombie nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.skipif(sys.platform != "linux", reason="reads worker processes from /proc")
def test_sigterm_stops_the_workers_and_exits_non_zero(mitdb: Path, tmp_path: Path) -> None:
    """``kill`` of a running ``bedside analyze --jobs 2``: the workers stop with it.

    Before, SIGTERM ended the parent at once and its worker processes, orphaned, went on
    through every record already queued to them, writing outputs minutes after the command
    had gone. Waits on events: the first record's progress line, then the parent's exit.
    """
    names = ["100", "101", "103", "105", "106", "108", "109", "111"]
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "agent", "analyze", "--jobs", "2", "--out", str(out)]
    proc = subprocess.Popen(
        [*cmd, *(str(mitdb / n) for n in names)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:  # wait for the first record done (or the end of stderr)
            if line.startswith("[1/"):
                break
        # keep reading stderr, so a full pipe can never be what holds the parent up
        drain = threading.Thread(target=proc.stderr.read, daemon=True)
        drain.start()
        workers = _worker_pids(proc.pid)
        assert len(workers) == 2, workers
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(timeout=120)
        drain.join(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert returncode == 128 + signal.SIGTERM
    assert all(_gone(pid) for pid in workers)  # stopped and reaped before the parent exited
    written = [n for n in names if (out / n / "alarms.jsonl").exists()]
    assert 1 <= len(written) < len(names), written


def test_stopping_a_pool_mid_result_frees_its_threads() -> None:
    """Workers terminated while they send large results: the pool's threads still end.

    The hang behind an intermittent ``bedside analyze`` that outlived its SIGTERM: a worker
    killed part-way through writing a result left the pool's manager thread waiting for the
    rest of the message, and the interpreter joins that thread at exit. Each result here is
    50 MB (``os.urandom``, so the spawned workers need nothing from this module), sent in
    pieces through a 64 KB pipe, so the workers are almost always mid-send when stopped.
    The joins' 60 s is a bound on failure, not a window the test waits out.
    """
    before_threads = set(threading.enumerate())
    before = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
    futures = [pool.submit(os.urandom, 50_000_000) for _ in range(8)]
    wait(futures, return_when=FIRST_COMPLETED)
    workers = set(multiprocessing.active_children()) - before
    assert len(workers) == 2

    stop_pool(pool, before)

    assert all(not w.is_alive() for w in workers)
    started = set(threading.enumerate()) - before_threads
    for thread in started:
        thread.join(60)
    assert [t.name for t in started if t.is_alive()] == []
    assert all(f.done() for f in futures)  # cancelled, or failed with the broken pool
