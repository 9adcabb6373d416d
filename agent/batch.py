"""``bedside analyze`` over many records: parallel workers, progress, summary, WFDB beats.

:func:`analyze_records` runs :func:`agent.analyze.analyze_record` over every record, in
parallel worker processes (``--jobs``; each loads the models once) or in this process, writes
each record's outputs (:func:`agent.analyze.write_outputs`, plus ``<record name>.bedside``, the
beats as a WFDB annotation file: :func:`write_beat_annotations`), and reports a record that
cannot be read without stopping the others. :func:`summarize_record` and
:func:`summary_table` give the per-record summary the CLI prints.

Length: the parallel pool, the per-record summary and the WFDB beat file serve one command and
share its record outcome types.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import wfdb

from agent.analyze import RecordResult, analyze_record_blocking, write_outputs
from agent.config import AgentConfig
from agent.errors import BedsideError
from agent.inference.bundle import ModelBundle, load_models
from agent.messages import AlarmLifecycle

logger = logging.getLogger(__name__)


BEAT_ANNOTATION_EXT: Final = "bedside"
"""Extension of the WFDB beat annotation file written beside the CSVs (``<record>.bedside``)."""

UNCLASSIFIED: Final = "unclassified"
"""Key of :attr:`RecordSummary.beats_by_class` for beats no classifier labelled."""

SUMMARY_CLASSES: Final = ("N", "S", "V", "F", "Q", UNCLASSIFIED)
"""Beat-count keys of a summary, in AAMI EC57 order (the classes of :class:`AamiClass`)."""


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A record of a batch that could not be analysed; the batch went on without it.

    Attributes
    ----------
    record : str
        The record path as given on the command line.
    message : str
        The error's one-line text (e.g. ``WFDB record not found: ...``).
    """

    record: str
    message: str


RecordOutcome = RecordResult | RecordFailure
"""What one record of a batch ends as; passed to the ``on_record`` callback as it ends."""


@dataclass(slots=True)
class BatchReport:
    """The outcome of :func:`analyze_records`.

    Attributes
    ----------
    results : list[RecordResult]
        Records analysed and written, in the order given.
    failures : list[RecordFailure]
        Records skipped because they could not be read, in the order given.
    wall_s : float
        Wall-clock time of the whole batch, s (model loading and process start-up included).
    jobs : int
        Worker processes used (the cluster's workers with a scheduler); 1 means everything
        ran in the calling process.
    """

    results: list[RecordResult] = field(default_factory=list)
    failures: list[RecordFailure] = field(default_factory=list)
    wall_s: float = 0.0
    jobs: int = 1


@dataclass(frozen=True, slots=True)
class RecordSummary:
    """The figures a researcher looks at first, for one analysed record.

    Attributes
    ----------
    record : str
        Record name.
    duration_s : float
        Record duration, s.
    beats_by_class : dict[str, int]
        Beat count per AAMI EC57 class ``N S V F Q`` and ``unclassified`` (no classifier
        label), every key of :data:`SUMMARY_CLASSES` present, in that order.
    alarms_raised : dict[str, int]
        Alarm condition (``AlarmCode`` value) → number of alarms *raised* (updates and clears
        are not counted), most frequent first, then by name.
    af_burden_pct : float
        Share of the record inside ``AFIB`` episodes (:attr:`RecordResult.episodes`), %.
    leads_off_pct : float
        Share of the record with flat, stuck or invalid signal
        (:attr:`RecordResult.leads_off`), %.
    cpu_s : float
        CPU time spent on the record, s.
    """

    record: str
    duration_s: float
    beats_by_class: dict[str, int]
    alarms_raised: dict[str, int]
    af_burden_pct: float
    leads_off_pct: float
    cpu_s: float


def covered_s(intervals: Sequence[tuple[float, float]], duration_s: float) -> float:
    """Return the length of the union of ``intervals`` clipped to ``[0, duration_s]``.

    Parameters
    ----------
    intervals
        ``(start_s, end_s)`` pairs, s; they may overlap and need not be sorted.
    duration_s
        Record duration, s.

    Returns
    -------
    float
        Covered time, s (overlaps counted once).
    """
    total_s = 0.0
    reach_s = 0.0
    for start_s, end_s in sorted(intervals):
        lo_s = max(start_s, reach_s, 0.0)
        hi_s = min(end_s, duration_s)
        if hi_s > lo_s:
            total_s += hi_s - lo_s
        reach_s = max(reach_s, hi_s)
    return total_s


def summarize_record(result: RecordResult) -> RecordSummary:
    """Count beats by AAMI class and alarms by condition; measure AF burden and leads-off share.

    Parameters
    ----------
    result
        One analysed record.

    Returns
    -------
    RecordSummary
        Its figures; both shares are 0 % for a record of zero duration.
    """
    by_class = dict.fromkeys(SUMMARY_CLASSES, 0)
    for beat in result.beats:
        by_class[beat.aami_class.value if beat.aami_class is not None else UNCLASSIFIED] += 1
    raised = Counter(
        ev.condition.value for ev in result.events if ev.lifecycle is AlarmLifecycle.RAISED
    )
    alarms = dict(sorted(raised.items(), key=lambda kv: (-kv[1], kv[0])))
    duration_s = result.duration_s

    def pct(intervals: Sequence[tuple[float, float]]) -> float:
        return 100.0 * covered_s(intervals, duration_s) / duration_s if duration_s > 0 else 0.0

    return RecordSummary(
        record=result.record,
        duration_s=duration_s,
        beats_by_class=by_class,
        alarms_raised=alarms,
        af_burden_pct=pct(result.episodes.get("AFIB", [])),
        leads_off_pct=pct(result.leads_off),
        cpu_s=result.cpu_s,
    )


def summary_table(summaries: Sequence[RecordSummary]) -> list[str]:
    """Format one line per record: beats by class, AF burden, leads-off share, alarms raised.

    Parameters
    ----------
    summaries
        Per-record summaries (:func:`summarize_record`).

    Returns
    -------
    list[str]
        A header line, then one line per record; ``min`` is the duration in minutes, ``unc``
        the unclassified beats, ``AF %`` the AF burden, ``off %`` the leads-off share.
    """
    width = max([6, *(len(s.record) for s in summaries)])
    counts = "".join(f" {'unc' if c == UNCLASSIFIED else c:>6}" for c in SUMMARY_CLASSES)
    lines = [f"{'record':<{width}} {'min':>6}{counts} {'AF %':>6} {'off %':>6}  alarms raised"]
    for s in summaries:
        beats = "".join(f" {s.beats_by_class[c]:>6}" for c in SUMMARY_CLASSES)
        alarms = ", ".join(f"{name} {n}" for name, n in s.alarms_raised.items()) or "-"
        lines.append(
            f"{s.record:<{width}} {s.duration_s / 60:>6.1f}{beats}"
            f" {s.af_burden_pct:>6.1f} {s.leads_off_pct:>6.1f}  {alarms}"
        )
    return lines


def write_beat_annotations(result: RecordResult, folder: Path) -> Path | None:
    """Write the beats as a WFDB annotation file ``folder / f"{record}.bedside"``.

    The file opens in any WFDB tool beside the record (``wfdb.rdann(name, "bedside")``,
    WAVE, ``bxb -a atr bedside``): ``sample`` is the R-peak index at the record's *own* rate
    (as in ``beats.csv``), the symbol the beat's AAMI class letter, with unclassified beats
    written as ``Q`` (unclassifiable, ANSI/AAMI EC57:2012 Table 1), and ``fs`` the record's
    rate in Hz.

    Parameters
    ----------
    result
        One analysed record.
    folder
        Its output folder (:func:`write_outputs`).

    Returns
    -------
    Path | None
        The file written; None when the record has no beats (WFDB cannot store an empty
        annotation file; a stale one from an earlier run is removed).
    """
    path = folder / f"{result.record}.{BEAT_ANNOTATION_EXT}"
    if not result.beats:
        path.unlink(missing_ok=True)
        return None
    samples = np.asarray(result.source_samples(), dtype=np.int64)
    symbols = [b.aami_class.value if b.aami_class is not None else "Q" for b in result.beats]
    wfdb.wrann(
        result.record,
        BEAT_ANNOTATION_EXT,
        samples,
        symbol=symbols,
        fs=result.source_fs_hz,
        write_dir=str(folder),
    )
    return path


def default_jobs() -> int:
    """Return the number of CPUs this process may run on (at least 1).

    ``os.process_cpu_count()`` where Python has it (3.13+), else the CPU affinity mask, else
    ``os.cpu_count()``.
    """
    counter: Callable[[], int | None] | None = getattr(os, "process_cpu_count", None)
    if counter is not None:
        n = counter()
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count()
    return max(1, n or 1)


@dataclass(frozen=True, slots=True)
class _Options:
    """Per-record settings shared by every record of a batch (picklable, for the workers)."""

    out_dir: Path
    channel: int
    fs_hz: float | None
    rr_annotations: str | None
    ack_after_s: float | None = None
    chunk_s: float | None = None


def _write_record(result: RecordResult, cfg: AgentConfig, out_dir: Path) -> None:
    folder = write_outputs(result, out_dir, cfg)
    write_beat_annotations(result, folder)
    logger.info(
        "%s: %d beats, %d alarm events, %.1f s of signal in %.2f s CPU",
        result.record,
        len(result.beats),
        len(result.events),
        result.duration_s,
        result.cpu_s,
    )


def _analyze_all(
    records: Sequence[str],
    cfg: AgentConfig,
    models: ModelBundle,
    opts: _Options,
    on_record: Callable[[RecordOutcome], None] | None,
) -> list[RecordOutcome]:
    """Analyse ``records`` one after another in this process."""
    outcomes: list[RecordOutcome] = []
    for record in records:
        outcome = _analyze_one(record, cfg, models, opts)
        if not isinstance(outcome, RecordFailure):
            _write_record(outcome, cfg, opts.out_dir)
        outcomes.append(outcome)
        if on_record is not None:
            on_record(outcome)
    return outcomes


@dataclass(slots=True)
class _WorkerState:
    """What a worker process loaded once, in :func:`_worker_init`."""

    cfg: AgentConfig | None = None
    models: ModelBundle | None = None
    setup_error: str | None = None


_WORKER: Final = _WorkerState()


def _worker_init(cfg: AgentConfig, log_level: int) -> None:
    """Pool initializer: set up logging and load the models once per worker process."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _WORKER.cfg = cfg
    try:
        _WORKER.models = load_models(cfg.inference)
    except BedsideError as err:
        # raised again, as a plain picklable BedsideError, by every task of this worker
        _WORKER.setup_error = str(err)


def _worker_analyze(record: str, opts: _Options) -> RecordOutcome:
    """Analyse and write one record in a worker process.

    Raises
    ------
    BedsideError
        If the worker could not load its models (the batch cannot go on).
    """
    if _WORKER.cfg is None or _WORKER.models is None:
        raise BedsideError(_WORKER.setup_error or "worker process has no models loaded")
    outcome = _analyze_one(record, _WORKER.cfg, _WORKER.models, opts)
    if not isinstance(outcome, RecordFailure):
        _write_record(outcome, _WORKER.cfg, opts.out_dir)
    return outcome


def _analyze_one(
    record: str, cfg: AgentConfig, models: ModelBundle, opts: _Options
) -> RecordOutcome:
    """Analyse one record in its own event loop (this process, a worker process or a Dask task)."""
    try:
        return analyze_record_blocking(
            record,
            cfg,
            models,
            channel=opts.channel,
            fs_hz=opts.fs_hz,
            rr_annotations=opts.rr_annotations,
            ack_after_s=opts.ack_after_s,
            chunk_s=opts.chunk_s,
        )
    except BedsideError as err:
        # project errors carry constructor arguments that do not survive pickling: send text
        logger.debug("%s failed", record, exc_info=True)
        return RecordFailure(record, str(err))


def _analyze_in_pool(
    records: Sequence[str],
    cfg: AgentConfig,
    opts: _Options,
    jobs: int,
    on_record: Callable[[RecordOutcome], None] | None,
) -> list[RecordOutcome]:
    """Analyse ``records`` in ``jobs`` worker processes; outcomes in the order given."""
    # spawn, not fork: the caller may run threads (a progress display), and fork copies
    # their locks mid-use; each worker imports the agent afresh and loads its own models
    ctx = multiprocessing.get_context("spawn")
    outcomes: dict[int, RecordOutcome] = {}
    before = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=ctx,
        initializer=_worker_init,
        initargs=(cfg, logging.getLogger().getEffectiveLevel()),
    )
    try:
        futures = {pool.submit(_worker_analyze, rec, opts): i for i, rec in enumerate(records)}
        for fut in as_completed(futures):
            outcome = fut.result()
            outcomes[futures[fut]] = outcome
            if on_record is not None:
                on_record(outcome)
    except BaseException:
        # Ctrl-C, SIGTERM (the CLI turns it into SystemExit) or a failed batch: stop now.
        # Waiting would let every worker finish its record and start the ones already
        # queued to it, minutes of work nobody asked for, written after the command is gone.
        stop_pool(pool, before)
        raise
    pool.shutdown(wait=True)
    return [outcomes[i] for i in range(len(records))]


def stop_pool(pool: ProcessPoolExecutor, before: set[multiprocessing.process.BaseProcess]) -> None:
    """Stop ``pool`` now: cancel what is queued, terminate its workers, free its threads.

    ``before`` is :func:`multiprocessing.active_children` from before the pool started; the
    children started since are the pool's workers. A worker terminated while it is sending a
    record's result (a pickled :class:`RecordResult`, hundreds of KB, written to the result
    pipe in pieces) leaves a partial message in that pipe; the pool's manager thread, reading
    it, would wait for the rest for ever, and the interpreter, which joins that thread at
    exit, would never exit (seen under load: ``bedside analyze`` alive minutes after
    SIGTERM). The parent holds the pipe's other write end (``multiprocessing.SimpleQueue``
    opens both), so closing it once the workers are gone turns that wait into end-of-file:
    the manager thread marks the pool broken and ends. CPython 3.11's
    ``concurrent.futures.process`` never writes that end in the parent.
    """
    result_queue = getattr(pool, "_result_queue", None)
    pool.shutdown(wait=False, cancel_futures=True)
    _terminate_children(set(multiprocessing.active_children()) - before)
    writer = getattr(result_queue, "_writer", None)
    if writer is not None:
        writer.close()


WORKER_STOP_S: Final = 10.0
"""How long a terminated worker process has to exit before it is killed, s."""


def _terminate_children(procs: set[multiprocessing.process.BaseProcess]) -> None:
    """SIGTERM the pool's worker processes, then SIGKILL any still alive after WORKER_STOP_S."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join(WORKER_STOP_S)
        if proc.is_alive():
            proc.kill()
            proc.join()


def _cluster_analyze(record: str, cfg: AgentConfig, opts: _Options) -> RecordOutcome:
    """Analyse one record on a Dask worker; the client writes its outputs.

    The worker process loads the models once (on its first record) and keeps them for the
    records that follow. Nothing is written on the worker, so the outputs land where the
    client runs, identical to a local run, whatever file system the workers have; only the
    records themselves must be readable at the same path on every worker.

    Raises
    ------
    BedsideError
        If the worker cannot load the models.
    """
    if _WORKER.cfg != cfg or _WORKER.models is None:
        _worker_init(cfg, logging.getLogger().getEffectiveLevel())
    if _WORKER.models is None:
        raise BedsideError(_WORKER.setup_error or "worker has no models loaded")
    return _analyze_one(record, cfg, _WORKER.models, opts)


CLUSTER_CONNECT_TIMEOUT_S: Final = 30.0
"""How long to wait for the Dask scheduler to answer before giving up, s."""


def _analyze_on_cluster(
    records: Sequence[str],
    cfg: AgentConfig,
    opts: _Options,
    scheduler: str,
    on_record: Callable[[RecordOutcome], None] | None,
) -> tuple[list[RecordOutcome], int]:
    """Analyse ``records`` as independent tasks on a Dask ``distributed`` cluster.

    Returns the outcomes in the order given and the number of workers the scheduler had.

    Raises
    ------
    BedsideError
        If the scheduler cannot be reached, ``distributed`` is not installed, or a worker
        cannot load its models.
    """
    try:
        from distributed import Client
        from distributed import as_completed as cluster_completed
    except ImportError as err:
        msg = "--scheduler needs Dask distributed: pip install 'bedside-agent[cluster]'"
        raise BedsideError(msg) from err
    try:
        client = Client(scheduler, timeout=CLUSTER_CONNECT_TIMEOUT_S)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError) as err:
        msg = f"cannot reach the Dask scheduler at {scheduler}: {err}"
        raise BedsideError(msg) from err
    outcomes: dict[int, RecordOutcome] = {}
    with client:
        n_workers = len(client.scheduler_info().get("workers", {}))
        # absolute paths: the workers' working folder is not ours; records must be readable
        # at the same path on every worker (a shared file system)
        paths = [str(Path(r).absolute()) for r in records]
        futures = client.map(_cluster_analyze, paths, cfg=cfg, opts=opts, pure=False)
        index = {fut.key: i for i, fut in enumerate(futures)}
        for fut in cluster_completed(futures):  # type: ignore[no-untyped-call]
            i = index[fut.key]
            outcome = fut.result()
            if isinstance(outcome, RecordFailure):
                outcome = RecordFailure(records[i], outcome.message)
            else:
                _write_record(outcome, cfg, opts.out_dir)
            outcomes[i] = outcome
            if on_record is not None:
                on_record(outcome)
    return [outcomes[i] for i in range(len(records))], max(n_workers, 1)


def analyze_records(
    records: Sequence[str],
    out_dir: Path,
    cfg: AgentConfig,
    models: ModelBundle | None = None,
    *,
    channel: int = 0,
    fs_hz: float | None = None,
    rr_annotations: str | None = None,
    ack_after_s: float | None = None,
    chunk_s: float | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    on_record: Callable[[RecordOutcome], None] | None = None,
) -> BatchReport:
    """Analyse every record and write its outputs under ``out_dir``; skip unreadable ones.

    For each record that can be read, ``out_dir/<record name>/`` gets ``beats.csv``,
    ``rhythm.csv``, ``alarms.jsonl`` (:func:`write_outputs`) and the WFDB beat annotation
    file ``<record name>.bedside`` (:func:`write_beat_annotations`). A record that cannot be
    read becomes a :class:`RecordFailure` and the others go on.

    Parameters
    ----------
    records
        WFDB record paths without extension, or ``*.csv`` RR files (:func:`analyze_record`).
    out_dir
        Output folder, created if needed.
    cfg
        Agent configuration.
    models
        Loaded models for the in-process path; None loads them from ``cfg.inference``. Worker
        processes always load their own (once each).
    channel, fs_hz, rr_annotations, ack_after_s, chunk_s
        As :func:`analyze_record`.
    jobs
        Worker processes. With 1 (or a single record) every record runs in this process, one
        after another, each in an event loop of its own; otherwise up to ``jobs`` records run
        at once in separate processes (spawned). The outputs do not depend on ``jobs``
        (tests/agent/test_analyze_batch.py).
    scheduler
        Address of a Dask ``distributed`` scheduler (``tcp://HOST:8786``): every record is
        one task on its workers (each loads the models once) and the outputs are written
        here, identical to a local run; ``jobs`` is then ignored. The records must be
        readable at the same absolute path on every worker.
    on_record
        Called in this process as each record ends (in completion order, which with
        ``jobs > 1`` need not be the order given), with its result or failure.

    Returns
    -------
    BatchReport
        Results and failures, each in the order given, and the wall-clock time.

    Raises
    ------
    BedsideError
        If ``out_dir`` cannot be created, (with ``jobs > 1`` or a scheduler) a worker cannot
        load its models, or the scheduler cannot be reached.
    InferenceError
        If a model cannot be loaded in this process.
    ValueError
        If ``jobs`` is below 1.
    """
    if jobs < 1:
        msg = f"jobs must be at least 1, got {jobs}"
        raise ValueError(msg)
    wall0 = time.perf_counter()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        msg = f"cannot create output folder {out_dir}: {err.strerror or err}"
        raise BedsideError(msg) from err
    opts = _Options(out_dir, channel, fs_hz, rr_annotations, ack_after_s, chunk_s)
    workers = min(jobs, len(records))
    if scheduler is not None:
        outcomes, workers = _analyze_on_cluster(records, cfg, opts, scheduler, on_record)
    elif workers <= 1:
        bundle = models if models is not None else load_models(cfg.inference)
        outcomes = _analyze_all(records, cfg, bundle, opts, on_record)
        workers = 1
    else:
        outcomes = _analyze_in_pool(records, cfg, opts, workers, on_record)
    report = BatchReport(jobs=workers)
    for outcome in outcomes:
        if isinstance(outcome, RecordFailure):
            report.failures.append(outcome)
        else:
            report.results.append(outcome)
    report.wall_s = time.perf_counter() - wall0
    return report
