"""``python -m tools.bench``: what the stream costs (CPU, memory, alarm publish latency).

Three measurements, printed as a table and written as JSON with ``--json FILE``
(docs/benchmarks.md has the figures and how to read them):

1. **Offline.** ``bedside analyze`` on whole 30-min MIT-BIH records, at the record's rate and
   at ``--fs 130``, in a child process pinned to one CPU (``os.sched_setaffinity`` then
   ``exec``). Reported: times faster than real time from the child's CPU time (interpreter
   start-up and imports included) and from its wall time, peak RSS (``ru_maxrss`` from
   ``os.wait4``), and the cost of each stage, measured in a second pinned child that times
   the stages' methods with :func:`time.process_time_ns` (class methods wrapped in that child
   only; the project's code is not edited): WFDB read + resample, the R-peak detector's
   cleaning (``_ecg_clean``), feature (the rest of ``_candidates``) and decision
   (``_decide``), the flat-line detector, the alarm rules, the alarm engine, and the CSV/JSONL
   writing.
2. **Live.** ``bedside run --source replay:100 --speed 1`` at 130 Hz and at 360 Hz against a
   private mosquitto, for ``--live-s`` seconds: CPU of the agent process as % of one core
   (its CPU clock) between ``--warmup-s`` and the end, and RSS. ``--only live-pairs
   --baseline REF`` instead runs ``--pairs`` pairs of 130 Hz agents, REF's and this
   checkout's at the same time (a single run scatters by about 10 %).
3. **Alarm publish latency.** :class:`~agent.runtime.AgentRuntime` in this process with a real
   :class:`~agent.publish.mqtt.MqttPublisher`, replaying mitdb 232 (pauses, asystole) at
   ``--speed``; a subscriber stamps ``time.monotonic_ns()`` on receipt of each ``raised``
   alarm. Latency = receipt - ``EcgChunk.t0_monotonic_ns`` of the chunk whose processing
   decided the alarm, i.e. everything after the sample that completed the condition arrived
   except the detector's own commit lag (algorithmic, reported by ``tools.evaluate``).
   CLOCK_MONOTONIC is system-wide, so the difference is valid within one machine.

Each figure is printed next to its target (PASS/MISS), with the machine's load during the run.

Length: three measurements, the report and the before/after comparison share the child-process
and machine-load helpers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

REPO_ROOT: Final = Path(__file__).resolve().parent.parent

TARGET_ANALYZE_X_REALTIME: Final = 2000.0
"""The analysis of a 30-min record must run at least this many times faster than real time
on one core, i.e. <= 0.9 s CPU (issue 11)."""

TARGET_ANALYZE_WHOLE_S: Final = 2.0
"""Whole ``bedside analyze`` process on one 30-min record, start-up included, CPU s (issue 11)."""

TARGET_ALL_RECORDS_WALL_S: Final = 30.0
"""All 48 mitdb records in one ``bedside analyze --jobs 2`` call, wall s (issue 11)."""

TARGET_LIVE_CPU_PCT: Final = 0.5
"""The live agent at 130 Hz must use at most this % of one core here (issue 11; a Pi 4 core
is about 3-4x slower, which keeps it near 2 %)."""

TARGET_LIVE_RSS_MB: Final = 150.0
"""Peak RSS of the live agent, MB (issue 11)."""

TARGET_PUBLISH_P99_MS: Final = 250.0
"""p99 of chunk arrival → MQTT receipt of a raised alarm, ms (issue target)."""

TARGET_RSS_MB: Final = 300.0
"""Peak resident memory of any agent process, MB (issue target; a Pi 4 has 1-8 GB)."""


LIVE_IMPORTS: Final = (
    "agent.cli",
    "agent.runtime",
    "agent.inference.bundle",
    "agent.publish.mqtt",
    "firmware_bridge.transports.ble",
)
"""What ``bedside run`` with a Bluetooth source imports before it reads the first frame."""

DEFAULT_RECORDS: Final = ("100", "203")
"""An easy record (100) and a hard one (203: multiform PVCs, VT, AF, noise)."""

LIVE_RECORD: Final = "100"
LATENCY_RECORD: Final = "232"
"""mitdb 232: sinus bradycardia with many long pauses, so many pause/asystole alarms."""

LATENCY_START_S: Final = 600.0
"""232's first pause alarm is raised at about 639 s; replay from here to the end."""

QUICK_LATENCY_SLICE_S: Final = (930.0, 1010.0)
"""A short stretch of 232 with an asystole and several pauses (quick mode)."""

PIN_AND_EXEC: Final = (
    "import os, sys; os.sched_setaffinity(0, {int(sys.argv[1])});"
    " os.execv(sys.argv[2], sys.argv[2:])"
)
"""Child bootstrap: pin to one CPU, then exec the real command (affinity survives exec)."""

_KIB: Final = 1024.0


# ---------------------------------------------------------------------------------- helpers


def default_data_dir() -> Path:
    """Return ``$BEDSIDE_DATA_DIR``, else ``../shared/data`` beside the checkout."""
    env = os.environ.get("BEDSIDE_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def default_cpu() -> int:
    """Return the highest CPU this process may run on (the one children are pinned to)."""
    return max(os.sched_getaffinity(0))


def percentile_summary(values_ms: Sequence[float]) -> dict[str, float | int]:
    """Return ``n``, ``p50_ms``, ``p99_ms``, ``max_ms`` (linear interpolation), all ms.

    An empty input gives ``n = 0`` and NaN statistics.
    """
    if not values_ms:
        nan = float("nan")
        return {"n": 0, "p50_ms": nan, "p99_ms": nan, "max_ms": nan}
    arr = np.asarray(values_ms, dtype=np.float64)
    return {
        "n": int(arr.size),
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p99_ms": round(float(np.percentile(arr, 99)), 2),
        "max_ms": round(float(arr.max()), 2),
    }


class MachineLoad:
    """Busy % of the whole machine (all CPUs, from ``/proc/stat``) over an interval."""

    def __init__(self) -> None:
        self._busy0, self._total0 = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        fields = Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0].split()[1:]
        ticks = [int(v) for v in fields]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        total = sum(ticks[:8])  # guest time is already counted in user
        return total - idle, total

    def busy_pct(self) -> float:
        """Return the % of all CPUs' time that was busy since construction."""
        busy, total = self._read()
        return round(100.0 * (busy - self._busy0) / max(1, total - self._total0), 1)


def loadavg() -> list[float]:
    """Return the 1, 5 and 15 min load averages."""
    return [round(v, 2) for v in os.getloadavg()]


def proc_cpu_s(pid: int) -> float:
    """Return the CPU time of process ``pid`` so far, all threads, dead or alive, seconds.

    Reads the kernel's per-process CPU clock (``clock_getcpuclockid(3)``; the clock id is
    ``MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)`` from ``include/linux/posix-timers.h``), which
    counts nanoseconds. ``/proc/PID/stat`` utime + stime count 10 ms ticks, too coarse for an
    agent that uses under 1 % of a core over a few seconds (0 or 1 tick).

    Raises
    ------
    OSError
        If ``pid`` does not exist (``EINVAL``).
    """
    clock_id = (~pid << 3) | 2
    return time.clock_gettime_ns(clock_id) / 1e9


def proc_memory_mb(pid: int | str = "self") -> dict[str, float]:
    """Return ``rss_mb`` (VmRSS) and ``hwm_mb`` (VmHWM, peak RSS) of a process, MB."""
    out = {"rss_mb": float("nan"), "hwm_mb": float("nan")}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            mb = round(int(value.split()[0]) / _KIB, 1)
            out["rss_mb" if key == "VmRSS" else "hwm_mb"] = mb
    return out


@dataclass(slots=True)
class ChildRun:
    """One finished child process: exit status, wall time (s), CPU time (s), peak RSS (MB)."""

    returncode: int
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    output: str


def run_pinned(cmd: Sequence[str], cpu: int | None, *, timeout_s: float = 600.0) -> ChildRun:
    """Run ``cmd`` pinned to ``cpu`` (or on every CPU when ``cpu`` is None).

    Returns its rusage from ``os.wait4`` (CPU time includes the descendants it reaped).

    Raises
    ------
    subprocess.TimeoutExpired
        If it runs longer than ``timeout_s`` (it is killed first).
    """
    argv = list(cmd) if cpu is None else [sys.executable, "-c", PIN_AND_EXEC, str(cpu), *cmd]
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        deadline = t0 + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                proc.wait()
                raise subprocess.TimeoutExpired(argv, timeout_s)
            time.sleep(0.01)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", errors="replace")
    return ChildRun(
        returncode=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_rss_mb=round(usage.ru_maxrss / _KIB, 1),  # ru_maxrss is in KiB on Linux
        output=text,
    )


# ---------------------------------------------------------------------------------- offline


STAGES: Final = (
    "read_resample",
    "rpeaks",
    "flatline",
    "quality",
    "vf",
    "vt",
    "beat_classifier",
    "timeline_other",
    "core_other",
    "csv_write",
)
"""Stages of :func:`offline_stages`, exclusive: the core's own stage timer
(:class:`agent.core.timing.StageTimes`) gives reading, the R-peak detector, the flat-line and
quality monitors, the VF and VT detectors and the beat classifier; ``timeline_other`` is the rest of
the timeline walk (rules, AF, ectopy, EDR, NEWS2, the alarm engine), ``core_other`` the rest
of the analysis (driver, gate, ring buffer), ``csv_write`` the output files."""


def offline_stages(record: str, fs_hz: float | None) -> dict[str, Any]:
    """Analyse ``record`` twice in this process: once plain, once with the stage timer.

    Run it in a pinned child (``--stages-child``).

    Returns
    -------
    dict
        ``duration_s`` (signal, s), ``analyze_cpu_s`` (the plain run's CPU time, s, as
        ``bedside analyze`` reports it), ``x_realtime_analyze``, ``stages_s`` (stage → CPU
        s, instrumented run), ``stages_pct`` (share of the instrumented total),
        ``hwm_mb`` (this process's peak RSS, MB).
    """
    from agent.analyze import analyze_record_blocking, write_outputs
    from agent.config import load_config
    from agent.core.timing import StageTimes
    from agent.inference.bundle import load_models

    cfg = load_config()
    models = load_models(cfg.inference)
    with tempfile.TemporaryDirectory(prefix="bedside-bench-") as tmp:
        plain = analyze_record_blocking(record, cfg, models, fs_hz=fs_hz)
        times = StageTimes()
        cpu0 = time.process_time_ns()
        result = analyze_record_blocking(record, cfg, models, fs_hz=fs_hz, stage_times=times)
        analyze_s = (time.process_time_ns() - cpu0) / 1e9
        cpu0 = time.process_time_ns()
        write_outputs(result, Path(tmp), cfg)
        csv_s = (time.process_time_ns() - cpu0) / 1e9
    t = times.s
    front = ("read_resample", "rpeaks", "flatline", "quality", "vf", "vt")
    stages = {name: t(name) for name in front}
    stages["beat_classifier"] = t("beat_classifier")
    stages["timeline_other"] = t("timeline") - t("beat_classifier")
    stages["core_other"] = analyze_s - sum(t(n) for n in front) - t("timeline")
    stages["csv_write"] = csv_s
    total = sum(stages.values())
    return {
        "record": plain.record,
        "fs_hz": plain.fs_hz,
        "source_fs_hz": plain.source_fs_hz,
        "duration_s": round(plain.duration_s, 1),
        "beats": len(plain.beats),
        "alarm_events": len(plain.events),
        "analyze_cpu_s": round(plain.cpu_s, 4),
        "x_realtime_analyze": round(plain.duration_s / max(plain.cpu_s, 1e-9)),
        "stages_total_s": round(total, 4),
        "stages_s": {k: round(v, 4) for k, v in stages.items()},
        "stages_pct": {k: round(100.0 * v / max(total, 1e-12), 1) for k, v in stages.items()},
        "stage_calls": dict(times.calls),
        "hwm_mb": proc_memory_mb()["hwm_mb"],
    }


def bench_offline(data_dir: Path, record: str, fs_hz: float | None, cpu: int) -> dict[str, Any]:
    """Time ``bedside analyze RECORD`` end to end on one CPU, then its stages.

    Returns
    -------
    dict
        ``cli`` (``wall_s``, ``cpu_s``, ``max_rss_mb``, ``x_realtime_cpu``,
        ``x_realtime_wall``: the whole ``bedside analyze`` process, start-up included) and
        the :func:`offline_stages` figures.

    Raises
    ------
    RuntimeError
        If either child fails (its output is in the message).
    """
    path = str(data_dir / "mitdb" / record)
    fs_args = [] if fs_hz is None else ["--fs", f"{fs_hz:g}"]
    load = MachineLoad()
    with tempfile.TemporaryDirectory(prefix="bedside-bench-") as tmp:
        cli = run_pinned(
            [sys.executable, "-m", "agent", "analyze", path, "--out", tmp, *fs_args], cpu
        )
    if cli.returncode != 0:
        msg = f"bedside analyze {path} failed ({cli.returncode}):\n{cli.output[-2000:]}"
        raise RuntimeError(msg)
    child = run_pinned([sys.executable, "-m", "tools.bench", "--stages-child", path, *fs_args], cpu)
    if child.returncode != 0:
        msg = f"stage timing of {path} failed ({child.returncode}):\n{child.output[-2000:]}"
        raise RuntimeError(msg)
    stages: dict[str, Any] = json.loads(child.output.strip().splitlines()[-1])
    duration = float(stages["duration_s"])
    stages["cli"] = {
        "wall_s": round(cli.wall_s, 3),
        "cpu_s": round(cli.cpu_s, 3),
        "max_rss_mb": cli.max_rss_mb,
        "x_realtime_cpu": round(duration / max(cli.cpu_s, 1e-9)),
        "x_realtime_wall": round(duration / max(cli.wall_s, 1e-9)),
    }
    stages["cpu"] = cpu
    stages["machine_busy_pct"] = load.busy_pct()
    return stages


def _analysis_cpu_s(output: str) -> float:
    """CPU s of the analysis itself from ``bedside analyze``'s final line (``... in X s CPU``)."""
    for line in reversed(output.splitlines()):
        if line.startswith("analyzed ") and " s CPU" in line:
            return float(line.split(" s CPU")[0].rsplit(" ", 1)[1])
    msg = f"no final line in bedside analyze's output:\n{output[-2000:]}"
    raise RuntimeError(msg)


def bench_all_records(data_dir: Path, jobs: int) -> dict[str, Any]:
    """Time one ``bedside analyze --jobs JOBS`` call over all 48 mitdb records.

    Not pinned: it uses ``jobs`` CPUs. CPU time is the whole process tree's (``os.wait4``
    includes the reaped worker processes), the analysis CPU is the sum of the records' own
    as ``bedside analyze`` reports it.

    Raises
    ------
    RuntimeError
        If the call fails.
    """
    from tools.af.evaluate import mitdb_records

    paths = [str(data_dir / "mitdb" / r) for r in mitdb_records(data_dir / "mitdb")]
    load = MachineLoad()
    with tempfile.TemporaryDirectory(prefix="bedside-bench-") as tmp:
        run = run_pinned(
            [sys.executable, "-m", "agent", "analyze", *paths, "--out", tmp, "-q", "-j", str(jobs)],
            None,
            timeout_s=1800.0,
        )
    if run.returncode != 0:
        msg = f"bedside analyze (48 records) failed ({run.returncode}):\n{run.output[-2000:]}"
        raise RuntimeError(msg)
    duration_s = len(paths) * MITDB_RECORD_S
    analysis_cpu_s = _analysis_cpu_s(run.output)
    return {
        "records": len(paths),
        "jobs": jobs,
        "signal_h": round(duration_s / 3600.0, 2),
        "wall_s": round(run.wall_s, 2),
        "cpu_s": round(run.cpu_s, 2),
        "analysis_cpu_s": round(analysis_cpu_s, 2),
        "x_realtime_wall": round(duration_s / max(run.wall_s, 1e-9)),
        "x_realtime_cpu": round(duration_s / max(run.cpu_s, 1e-9)),
        "x_realtime_analysis": round(duration_s / max(analysis_cpu_s, 1e-9)),
        "max_rss_mb": run.max_rss_mb,
        "machine_busy_pct": load.busy_pct(),
    }


MITDB_RECORD_S: Final = 650_000 / 360.0
"""Signal in each mitdb record, s (650,000 samples at 360 Hz: 30 min 5.6 s)."""

NEUROKIT_CHILD: Final = """
import json, sys, time
t0 = time.process_time()
import neurokit2 as nk
import wfdb
imported = time.process_time() - t0
total_s = 0.0
peaks = 0
t1 = time.process_time()
for path in sys.argv[1:]:
    rec = wfdb.rdrecord(path, channels=[0])
    x = rec.p_signal[:, 0]
    clean = nk.ecg_clean(x, sampling_rate=rec.fs)
    _, info = nk.ecg_peaks(clean, sampling_rate=rec.fs)
    peaks += len(info["ECG_R_Peaks"])
    total_s += len(x) / rec.fs
print(json.dumps({"signal_s": total_s, "peaks": peaks, "import_cpu_s": imported,
                  "analysis_cpu_s": time.process_time() - t1}))
"""
"""The NeuroKit2 batch baseline: ``ecg_clean`` + ``ecg_peaks`` (method "neurokit") on
channel 0 of each record, R-peaks only (no classification, no alarms)."""


def bench_neurokit(data_dir: Path, records: Sequence[str], cpu: int) -> dict[str, Any]:
    """Run the NeuroKit2 baseline (:data:`NEUROKIT_CHILD`) over ``records`` on one CPU.

    Raises
    ------
    RuntimeError
        If the child fails.
    """
    paths = [str(data_dir / "mitdb" / r) for r in records]
    run = run_pinned([sys.executable, "-c", NEUROKIT_CHILD, *paths], cpu, timeout_s=1800.0)
    if run.returncode != 0:
        msg = f"NeuroKit2 baseline failed ({run.returncode}):\n{run.output[-2000:]}"
        raise RuntimeError(msg)
    got = json.loads(run.output.strip().splitlines()[-1])
    signal_s = float(got["signal_s"])
    return {
        "records": len(paths),
        "signal_s": round(signal_s, 1),
        "peaks": got["peaks"],
        "wall_s": round(run.wall_s, 2),
        "cpu_s": round(run.cpu_s, 2),
        "analysis_cpu_s": round(float(got["analysis_cpu_s"]), 2),
        "x_realtime_cpu": round(signal_s / max(run.cpu_s, 1e-9)),
        "x_realtime_analysis": round(signal_s / max(float(got["analysis_cpu_s"]), 1e-9)),
        "max_rss_mb": run.max_rss_mb,
    }


IMPORT_CHILD: Final = """
import json, sys, time, importlib
t0 = time.perf_counter(); c0 = time.process_time()
for name in sys.argv[1:]:
    importlib.import_module(name)
wall = time.perf_counter() - t0; cpu = time.process_time() - c0
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"pandas", "wfdb", "matplotlib",
    "neurokit2", "sklearn", "sqlalchemy", "fastapi", "distributed", "tensorflow"})
rss = 0.0
for line in open("/proc/self/status", encoding="ascii"):
    if line.startswith("VmHWM:"):
        rss = int(line.split()[1]) / 1024.0
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "hwm_mb": rss, "heavy_modules": heavy}))
"""


def bench_imports(cpu: int) -> dict[str, Any]:
    """Import what the live agent imports (:data:`LIVE_IMPORTS`) in a fresh pinned child.

    Returns import wall and CPU time, s, the peak RSS after the imports, MB, and which heavy
    modules (pandas, wfdb, matplotlib, NeuroKit2, ...) came with them (none should).

    Raises
    ------
    RuntimeError
        If the child fails.
    """
    run = run_pinned([sys.executable, "-c", IMPORT_CHILD, *LIVE_IMPORTS], cpu)
    if run.returncode != 0:
        msg = f"import timing failed ({run.returncode}):\n{run.output[-2000:]}"
        raise RuntimeError(msg)
    got = json.loads(run.output.strip().splitlines()[-1])
    return {
        "modules": list(LIVE_IMPORTS),
        "import_wall_s": round(float(got["wall_s"]), 3),
        "import_cpu_s": round(float(got["cpu_s"]), 3),
        "hwm_mb": round(float(got["hwm_mb"]), 1),
        "heavy_modules": got["heavy_modules"],
        "process_wall_s": round(run.wall_s, 3),
    }


# ---------------------------------------------------------------------------------- live


def bench_live(
    url: str,
    workdir: Path,
    record_path: Path,
    fs_list: Sequence[float],
    live_s: float,
    warmup_s: float,
) -> list[dict[str, Any]]:
    """Run ``bedside run --speed 1`` once per rate, all at the same time, and measure each.

    Returns
    -------
    list[dict]
        Per rate: ``fs_hz``, ``cpu_pct_one_core`` (process CPU clock over ``[warmup_s, live_s]``
        divided by that wall time, %), ``rss_mb`` and ``hwm_mb`` at the end, MB.

    Raises
    ------
    RuntimeError
        If an agent exits before the end of the run (its log is in the message).
    """
    agents = [(f"live{fs:g}", fs, REPO_ROOT) for fs in fs_list]
    return live_agents(url, workdir, record_path, agents, live_s, warmup_s)


def live_agents(
    url: str,
    workdir: Path,
    record_path: Path,
    agents: Sequence[tuple[str, float, Path]],
    live_s: float,
    warmup_s: float,
) -> list[dict[str, Any]]:
    """Run one ``bedside run --speed 1`` per ``(tag, fs_hz, checkout)``, all at once.

    Each agent runs ``python -m agent`` with the checkout as its working directory (so the
    code of that checkout, with this environment's packages), replaying ``record_path`` at
    ``fs_hz`` to the broker at ``url``. Agents start in the order given.

    Returns
    -------
    list[dict]
        Per agent, in order: ``tag``, ``fs_hz``, ``cpu_pct_one_core`` (process CPU clock over
        ``[warmup_s, live_s]`` divided by that wall time, %), ``rss_mb`` and ``hwm_mb``, MB,
        ``machine_busy_pct``.

    Raises
    ------
    RuntimeError
        If an agent exits before the end of the run (its log is in the message).
    """
    procs: list[tuple[str, float, subprocess.Popen[bytes], Path]] = []
    load = MachineLoad()
    try:
        for tag, fs, checkout in agents:
            log_path = workdir / f"{tag}.log"
            outbox = workdir / f"{tag}.sqlite3"
            outbox.unlink(missing_ok=True)
            cmd = [
                sys.executable,
                "-m",
                "agent",
                "run",
                "--source",
                f"replay:{record_path.resolve()}",
                "--fs",
                f"{fs:g}",
                "--speed",
                "1",
                "--broker",
                url,
                "--bed",
                f"bench/{tag}",
                "--outbox",
                str(outbox),
            ]
            with log_path.open("wb") as log:
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=checkout)
            procs.append((tag, fs, proc, log_path))
        t_start = time.monotonic()
        time.sleep(max(0.0, t_start + warmup_s - time.monotonic()))
        cpu0_s = [proc_cpu_s(p.pid) for _, _, p, _ in procs]
        t0 = time.monotonic()
        time.sleep(max(0.0, t_start + live_s - time.monotonic()))
        results: list[dict[str, Any]] = []
        for (tag, fs, proc, log_path), start_cpu_s in zip(procs, cpu0_s, strict=True):
            if proc.poll() is not None:
                tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
                msg = f"agent {tag} at {fs:g} Hz exited early ({proc.returncode}):\n{tail}"
                raise RuntimeError(msg)
            cpu_s = proc_cpu_s(proc.pid) - start_cpu_s
            wall = time.monotonic() - t0
            mem = proc_memory_mb(proc.pid)
            results.append(
                {
                    "tag": tag,
                    "record": record_path.name,
                    "fs_hz": fs,
                    "speed": 1,
                    "measured_s": round(wall, 1),
                    "warmup_s": warmup_s,
                    "cpu_s": round(cpu_s, 3),
                    "cpu_pct_one_core": round(100.0 * cpu_s / wall, 3),
                    **mem,
                }
            )
        busy = load.busy_pct()
        for r in results:
            r["machine_busy_pct"] = busy
        return results
    finally:
        for _, _, proc, _ in procs:
            proc.terminate()
        for _, _, proc, _ in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def bench_live_pairs(
    ref: str, data_dir: Path, *, pairs: int, live_s: float, warmup_s: float, fs_hz: float = 130.0
) -> dict[str, Any]:
    """Live CPU of this checkout against git ``ref``, in pairs run at the same time.

    A single live run on a shared machine scatters by about 10 % from one minute to the next
    (session 29), more than most changes it should judge. Here each pair runs two agents at
    once, ``ref``'s (a temporary ``git worktree``) and this checkout's, on mitdb
    :data:`LIVE_RECORD` at ``fs_hz``, for ``live_s`` (CPU counted after ``warmup_s``); the one
    started first alternates from pair to pair. Both see the same machine at the same time.

    Returns
    -------
    dict
        ``ref``, ``fs_hz``, ``live_s``, ``warmup_s``, ``pairs`` (per pair ``baseline_pct``,
        ``this_pct``, ``first``), ``baseline_mean_pct``, ``this_mean_pct``, ``change_pct``
        (this against ``ref``, %), ``lower_in`` (pairs where this checkout used less CPU).

    Raises
    ------
    ValueError
        If ``pairs`` is below 1.
    RuntimeError
        If the worktree cannot be made or an agent exits early.
    BrokerStartError
        If mosquitto is missing.
    """
    from agent.publish.broker import private_broker

    if pairs < 1:
        msg = f"pairs must be at least 1, got {pairs}"
        raise ValueError(msg)
    record = data_dir / "mitdb" / LIVE_RECORD
    rows: list[dict[str, Any]] = []
    with _worktree(ref) as tree, tempfile.TemporaryDirectory(prefix="bedside-pairs-") as tmp:
        workdir = Path(tmp)
        with private_broker(workdir) as url:
            for i in range(pairs):
                agents = [("baseline", fs_hz, tree), ("this", fs_hz, REPO_ROOT)]
                if i % 2:
                    agents.reverse()
                got = {
                    r["tag"]: r["cpu_pct_one_core"]
                    for r in live_agents(url, workdir, record, agents, live_s, warmup_s)
                }
                rows.append(
                    {
                        "baseline_pct": got["baseline"],
                        "this_pct": got["this"],
                        "first": agents[0][0],
                    }
                )
    base = float(np.mean([r["baseline_pct"] for r in rows]))
    this = float(np.mean([r["this_pct"] for r in rows]))
    return {
        "ref": ref,
        "git": _git_commit(),
        "fs_hz": fs_hz,
        "live_s": live_s,
        "warmup_s": warmup_s,
        "pairs": rows,
        "baseline_mean_pct": round(base, 3),
        "this_mean_pct": round(this, 3),
        "change_pct": round(100.0 * (this - base) / base, 1) if base > 0 else float("nan"),
        "lower_in": sum(r["this_pct"] < r["baseline_pct"] for r in rows),
    }


def format_live_pairs(report: dict[str, Any]) -> str:
    """Render :func:`bench_live_pairs`' report as a short table."""
    lines = [
        f"Live CPU in pairs at the same time ({report['fs_hz']:g} Hz, {report['live_s']:g} s"
        f" each, CPU after {report['warmup_s']:g} s): {report['ref']} against this checkout",
        f"{'pair':>5} {'first':>9} {report['ref'][:12]:>12} {'this':>8}",
    ]
    for i, r in enumerate(report["pairs"], 1):
        lines.append(f"{i:>5} {r['first']:>9} {r['baseline_pct']:>11.3f}% {r['this_pct']:>7.3f}%")
    lines.append(
        f"mean  {report['baseline_mean_pct']:.3f} % -> {report['this_mean_pct']:.3f} %"
        f" ({report['change_pct']:+.1f} %), lower in {report['lower_in']} of"
        f" {len(report['pairs'])} pairs"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- latency


@dataclass(slots=True)
class _Sent:
    arrival_ns: int  # EcgChunk.t0_monotonic_ns of the chunk that decided the alarm
    handover_ns: int  # when the runtime handed it to the publisher
    condition: str


@dataclass(slots=True)
class LatencyTrace:
    """What the agent sent (keyed by ``(alarm_id, lifecycle)``) and when each was received."""

    sent: dict[tuple[str, str], _Sent] = field(default_factory=dict)
    received_ns: dict[tuple[str, str], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        """Record the receipt time of one message (paho's thread): stamp first, then parse."""
        now = time.monotonic_ns()
        if retained or not topic.endswith("/alarms"):
            return
        msg = json.loads(payload)
        key = (str(msg["alarm_id"]), str(msg["lifecycle"]))
        with self.lock:
            self.received_ns.setdefault(key, now)


def bench_latency(
    url: str,
    workdir: Path,
    record_path: Path,
    *,
    speed: float,
    start_s: float,
    stop_s: float | None,
    drain_s: float = 5.0,
) -> dict[str, Any]:
    """Run :class:`AgentRuntime` with a real publisher and measure raised-alarm latency.

    Returns
    -------
    dict
        ``n``, ``p50_ms``, ``p99_ms``, ``max_ms`` of chunk arrival → subscriber receipt;
        ``handover`` (arrival → the call of ``publish_alarm``) and ``mqtt_hop`` (that call →
        receipt: outbox write, paho, broker, subscriber), same keys;
        ``runtime_publish_latency`` (the runtime's own ``RunStats.publish_latency_ms``:
        arrival → ``publish_alarm`` returned);
        ``unreceived``: raised alarms sent but not received within ``drain_s``.

    Raises
    ------
    BrokerUnreachableError
        If the publisher or the subscriber cannot connect.
    """
    from agent import __version__
    from agent.config import load_config
    from agent.core.monitor import StepOutput
    from agent.inference.bundle import load_models
    from agent.messages import AlarmEvent, AlarmLifecycle, VitalsMessage
    from agent.publish.mqtt import MqttPublisher
    from agent.publish.subscriber import MqttSubscriber
    from agent.runtime import AgentRuntime, AlarmSink
    from firmware_bridge.transports.replay import WfdbReplaySource

    trace = LatencyTrace()
    cfg = load_config(
        None,
        {
            "mqtt.url": url,
            "mqtt.outbox_path": str(workdir / "latency-outbox.sqlite3"),
            "bed.unit": "bench",
            "bed.bed": "latency",
        },
    )

    class TracingSink:
        """Forwards to the publisher and notes, per alarm, the deciding chunk's arrival."""

        def __init__(self, inner: AlarmSink) -> None:
            self.inner = inner
            self.arrival_ns = 0

        def note(self, out: StepOutput, arrival_ns: int) -> None:
            """Note the arrival of the frame that decided ``out`` (the runtime's ``on_output``)."""
            self.arrival_ns = arrival_ns

        def publish_alarm(self, event: AlarmEvent) -> None:
            handover = time.monotonic_ns()
            if event.lifecycle is AlarmLifecycle.RAISED:
                key = (event.alarm_id, event.lifecycle.value)
                with trace.lock:
                    trace.sent[key] = _Sent(self.arrival_ns, handover, event.condition.value)
            self.inner.publish_alarm(event)

        def publish_vitals(self, msg: VitalsMessage) -> None:
            self.inner.publish_vitals(msg)

        def publish_status(self, counters: dict[str, int]) -> None:
            self.inner.publish_status(counters)

    source = WfdbReplaySource(
        record_path,
        speed=speed,
        chunk_s=cfg.source.chunk_s,
        start_s=start_s,
        stop_s=stop_s,
    )
    subscriber = MqttSubscriber(
        url, ["bedside/v1/bench/latency/alarms"], on_message=trace.on_message
    )
    publisher = MqttPublisher(
        cfg.mqtt, cfg.bed, source_desc=source.describe(), agent_version=__version__
    )
    tracing = TracingSink(publisher)
    load = MachineLoad()
    subscriber.connect()
    try:
        publisher.connect()
        try:
            runtime = AgentRuntime(
                cfg, source, tracing, load_models(cfg.inference), on_output=tracing.note
            )
            stats = asyncio.run(runtime.run())
            deadline = time.monotonic() + drain_s
            while time.monotonic() < deadline:
                with trace.lock:
                    if set(trace.sent) <= set(trace.received_ns):
                        break
                time.sleep(0.05)
        finally:
            publisher.close()
    finally:
        subscriber.close()
    with trace.lock:
        pairs = [(s, trace.received_ns.get(k)) for k, s in trace.sent.items()]
    got = [(s, r) for s, r in pairs if r is not None]
    total = [(r - s.arrival_ns) / 1e6 for s, r in got]
    return {
        "record": record_path.name,
        "speed": speed,
        "start_s": start_s,
        "stop_s": stop_s,
        "raised_sent": len(pairs),
        "unreceived": len(pairs) - len(got),
        **percentile_summary(total),
        "handover": percentile_summary([(s.handover_ns - s.arrival_ns) / 1e6 for s, _ in got]),
        "mqtt_hop": percentile_summary([(r - s.handover_ns) / 1e6 for s, r in got]),
        "runtime_publish_latency": percentile_summary(stats.publish_latency_ms),
        "conditions": sorted({s.condition for s, _ in pairs}),
        "frames_dropped": stats.frames_dropped,
        "hwm_mb": proc_memory_mb()["hwm_mb"],
        "machine_busy_pct": load.busy_pct(),
    }


def bench_simulate() -> dict[str, float]:
    """CPU time of the demo's simulated patient: one minute of ECGSYN at 175 bpm, 250 Hz.

    The live demo generates it continuously, so it must stay far below one core (it was a
    timed test; speed is measured here, not asserted).
    """
    from firmware_bridge.transports.simulate import ecgsyn_block_uv

    fs = 250
    ecgsyn_block_uv(fs, fs, 72.0, random_state=0)  # warm up (import)
    t0 = time.process_time()
    for block_idx in range(3):  # 3 x 20 s at 175 bpm, the most expensive scripted rate
        ecgsyn_block_uv(20 * fs, fs, 175.0, random_state=block_idx)
    return {"cpu_s_per_min_175bpm": round(time.process_time() - t0, 3)}


def bench_ectopy(n_beats: int = 20_000) -> dict[str, float]:
    """CPU per beat of the ectopy rules inside one very long V run (2.2 h of V-tach).

    Work per beat must not grow with the run's length (it was a timed test).
    """
    from agent.alarms.ectopy import EctopyRules
    from agent.beats import Beat
    from agent.config import EctopyConfig
    from agent.messages import AamiClass

    rules = EctopyRules(EctopyConfig(), strip=None, strip_s=6.0)
    rules.add_beat(Beat(0, 1.0, None, 900.0, AamiClass.N, 0.9))
    half = n_beats // 2
    laps: list[int] = []
    t0 = time.process_time_ns()
    for i in range(1, n_beats + 1):
        rules.add_beat(Beat(i, 1.0 + 0.4 * i, 400.0, 900.0, AamiClass.V, 0.9))
        if i in (half, n_beats):
            laps.append(time.process_time_ns())
    first, second = laps[0] - t0, laps[1] - laps[0]
    return {
        "ectopy_us_per_beat_in_long_run": round((first + second) / n_beats / 1000, 2),
        "second_half_over_first_half": round(second / max(first, 1), 2),
    }


# ---------------------------------------------------------------------------------- report


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Compare the report with the issue's targets; each row has ``status`` PASS or MISS."""
    rows: list[dict[str, Any]] = []

    def add(name: str, value: float, target: str, ok: bool) -> None:
        rows.append(
            {"name": name, "value": value, "target": target, "status": "PASS" if ok else "MISS"}
        )

    for r in report.get("offline", []):
        tag = f"{r['record']}@{r['fs_hz']:g}Hz"
        x = r["x_realtime_analyze"]
        add(
            f"analysis {tag} x real time (1 core)",
            x,
            f">= {TARGET_ANALYZE_X_REALTIME:g}",
            x >= TARGET_ANALYZE_X_REALTIME,
        )
        whole = r["cli"]["cpu_s"]
        add(
            f"analyze {tag} whole process CPU s",
            whole,
            f"<= {TARGET_ANALYZE_WHOLE_S:g}",
            whole <= TARGET_ANALYZE_WHOLE_S,
        )
        rss = r["cli"]["max_rss_mb"]
        add(f"analyze {tag} peak RSS MB", rss, f"<= {TARGET_RSS_MB:g}", rss <= TARGET_RSS_MB)
    batch = report.get("batch")
    if batch:
        add(
            f"48 records --jobs {batch['jobs']} wall s",
            batch["wall_s"],
            f"< {TARGET_ALL_RECORDS_WALL_S:g}",
            batch["wall_s"] < TARGET_ALL_RECORDS_WALL_S,
        )
    for r in report.get("live", []):
        tag = f"{r['fs_hz']:g}Hz"
        cpu = r["cpu_pct_one_core"]
        if r["fs_hz"] <= 130:  # the target is stated for a 130 Hz stream
            add(
                f"live {tag} CPU % of one core",
                cpu,
                f"<= {TARGET_LIVE_CPU_PCT:g}",
                cpu <= TARGET_LIVE_CPU_PCT,
            )
        add(
            f"live {tag} peak RSS MB",
            r["hwm_mb"],
            f"<= {TARGET_LIVE_RSS_MB:g}",
            r["hwm_mb"] <= TARGET_LIVE_RSS_MB,
        )
    lat = report.get("latency")
    if lat:
        p99 = lat["p99_ms"]
        ok = lat["n"] > 0 and p99 <= TARGET_PUBLISH_P99_MS and lat["unreceived"] == 0
        add("alarm publish p99 ms", p99, f"<= {TARGET_PUBLISH_P99_MS:g}", ok)
    return rows


def format_report(report: dict[str, Any]) -> str:
    """Return the human-readable tables."""
    lines = [f"bedside bench  {report['meta']['started_utc']}  git {report['meta']['git']}"]
    meta = report["meta"]
    lines.append(
        f"machine: {meta['cpus']} CPUs, load avg before {meta['loadavg_before']}"
        f" after {meta['loadavg_after']}"
    )
    if report.get("offline"):
        lines += ["", "Offline (bedside analyze, pinned to one CPU; CPU and wall include start-up)"]
        lines.append(
            f"{'record':>10} {'fs':>5} {'x rt cpu':>9} {'x rt wall':>9} {'x rt analyze':>12}"
            f" {'RSS MB':>7} {'busy%':>6}"
        )
        for r in report["offline"]:
            c = r["cli"]
            lines.append(
                f"{r['record']:>10} {r['fs_hz']:>5g} {c['x_realtime_cpu']:>9}"
                f" {c['x_realtime_wall']:>9} {r['x_realtime_analyze']:>12}"
                f" {c['max_rss_mb']:>7.1f} {r['machine_busy_pct']:>6}"
            )
        lines += ["", "Stage CPU, ms per 30 min record (share of the instrumented total)"]
        names = list(report["offline"][0]["stages_s"])
        head = f"{'stage':>18}" + "".join(
            f" {r['record'] + '@' + format(r['fs_hz'], 'g'):>15}" for r in report["offline"]
        )
        lines.append(head)
        for name in [*names, "total"]:
            row = f"{name:>18}"
            for r in report["offline"]:
                if name == "total":
                    row += f" {1000 * r['stages_total_s']:>9.0f}      "
                else:
                    row += f" {1000 * r['stages_s'][name]:>7.0f} ({r['stages_pct'][name]:>4.1f}%)"
            lines.append(row)
    batch, nk_runs = report.get("batch"), report.get("neurokit")
    if batch or nk_runs:
        lines += [
            "",
            "Speed side by side (x real time; whole = the process's CPU incl. start-up,"
            " analysis = the work alone)",
            f"{'':<44} {'records':>7} {'wall s':>7} {'CPU s':>7} {'x whole':>8}"
            f" {'x analysis':>10} {'RSS MB':>7}",
        ]
        for r in report.get("offline", []):
            c = r["cli"]
            label = f"bedside analyze {r['record']}@{r['fs_hz']:g} Hz, 1 CPU"
            lines.append(
                f"{label:<44}"
                f" {1:>7} {c['wall_s']:>7.2f} {c['cpu_s']:>7.2f} {c['x_realtime_cpu']:>8}"
                f" {r['x_realtime_analyze']:>10} {c['max_rss_mb']:>7.1f}"
            )
        if batch:
            lines.append(
                f"{'bedside analyze, all mitdb, --jobs ' + str(batch['jobs']):<44}"
                f" {batch['records']:>7} {batch['wall_s']:>7.2f} {batch['cpu_s']:>7.2f}"
                f" {batch['x_realtime_cpu']:>8} {batch['x_realtime_analysis']:>10}"
                f" {batch['max_rss_mb']:>7.1f}"
            )
        for key, label in (
            ("one", "NeuroKit2 clean+peaks, 1 record, 1 CPU"),
            ("all", "NeuroKit2 clean+peaks, all mitdb, 1 CPU"),
        ):
            if nk_runs and key in nk_runs:
                n = nk_runs[key]
                lines.append(
                    f"{label:<44} {n['records']:>7} {n['wall_s']:>7.2f} {n['cpu_s']:>7.2f}"
                    f" {n['x_realtime_cpu']:>8} {n['x_realtime_analysis']:>10}"
                    f" {n['max_rss_mb']:>7.1f}"
                )
        lines.append(
            "(bedside: R-peaks, beat classes, VF, AF, alarms, vitals; NeuroKit2: R-peaks only)"
        )
    imp = report.get("imports")
    if imp:
        heavy = ", ".join(imp["heavy_modules"]) or "none"
        lines += [
            "",
            f"Start-up of the live agent: importing {', '.join(imp['modules'])}:"
            f" {imp['import_wall_s']:.2f} s wall, {imp['import_cpu_s']:.2f} s CPU,"
            f" peak RSS {imp['hwm_mb']:.1f} MB; heavy modules pulled in: {heavy}",
        ]
    if report.get("live"):
        lines += ["", "Live (bedside run --speed 1, steady state)"]
        lines.append(
            f"{'fs':>5} {'measured s':>10} {'CPU % core':>10} {'RSS MB':>7} {'peak MB':>7}"
            f" {'busy%':>6}"
        )
        for r in report["live"]:
            lines.append(
                f"{r['fs_hz']:>5g} {r['measured_s']:>10} {r['cpu_pct_one_core']:>10.2f}"
                f" {r['rss_mb']:>7.1f} {r['hwm_mb']:>7.1f} {r['machine_busy_pct']:>6}"
            )
    lat = report.get("latency")
    if lat:
        lines += [
            "",
            f"Alarm publish latency (mitdb {lat['record']} x{lat['speed']:g},"
            f" from {lat['start_s']:g} s;"
            " chunk arrival → subscriber receipt, raised alarms)",
        ]
        lines.append(f"{'':>24} {'n':>4} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for label, s in (
            ("arrival → receipt", lat),
            ("arrival → publish_alarm", lat["handover"]),
            ("publish_alarm → receipt", lat["mqtt_hop"]),
        ):
            lines.append(
                f"{label:>24} {s['n']:>4} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f}"
                f" {s['max_ms']:>8.2f}"
            )
        lines.append(f"unreceived {lat['unreceived']}, frames dropped {lat['frames_dropped']}")
    for section in ("simulate", "ectopy"):
        if report.get(section):
            figures = ", ".join(f"{k} {v}" for k, v in report[section].items())
            lines += ["", f"{section.capitalize()}: {figures}"]
    lines += ["", "Targets"]
    for t in report["targets"]:
        lines.append(f"  {t['status']:<4}  {t['name']:<40} {t['value']:>10} (target {t['target']})")
    return "\n".join(lines)


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


@dataclass(slots=True)
class BenchOptions:
    """What to run (see ``python -m tools.bench --help``)."""

    data_dir: Path
    records: list[str]
    offline_fs: list[float | None]
    live_fs: list[float]
    live_s: float
    warmup_s: float
    latency_speed: float
    latency_slice_s: tuple[float, float | None]
    cpu: int
    run_offline: bool = True
    run_live: bool = True
    run_latency: bool = True
    run_batch: bool = True
    run_neurokit: bool = True
    run_imports: bool = True
    batch_jobs: int = 2


def run_bench(opts: BenchOptions) -> dict[str, Any]:
    """Run the selected measurements and return the report (JSON-ready).

    Raises
    ------
    BrokerStartError
        If mosquitto is needed and missing.
    RuntimeError
        If a child process fails.
    """
    from agent.publish.broker import private_broker

    report: dict[str, Any] = {
        "meta": {
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "git": _git_commit(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "pinned_cpu": opts.cpu,
            "loadavg_before": loadavg(),
            "live_s": opts.live_s,
            "warmup_s": opts.warmup_s,
        }
    }
    from tools.af.evaluate import mitdb_records

    mitdb = opts.data_dir / "mitdb"
    if opts.run_imports:
        report["imports"] = bench_imports(opts.cpu)
    if opts.run_batch:
        report["batch"] = bench_all_records(opts.data_dir, opts.batch_jobs)
    if opts.run_neurokit:
        report["neurokit"] = {
            "one": bench_neurokit(opts.data_dir, opts.records[:1], opts.cpu),
            "all": bench_neurokit(opts.data_dir, mitdb_records(mitdb), opts.cpu),
        }
    if opts.run_offline:
        report["offline"] = [
            bench_offline(opts.data_dir, rec, fs, opts.cpu)
            for rec in opts.records
            for fs in opts.offline_fs
        ]
    if opts.run_live or opts.run_latency:
        with tempfile.TemporaryDirectory(prefix="bedside-bench-") as tmp:
            workdir = Path(tmp)
            with private_broker(workdir) as url:
                if opts.run_live:
                    report["live"] = bench_live(
                        url, workdir, mitdb / LIVE_RECORD, opts.live_fs, opts.live_s, opts.warmup_s
                    )
                if opts.run_latency:
                    start_s, stop_s = opts.latency_slice_s
                    report["latency"] = bench_latency(
                        url,
                        workdir,
                        mitdb / LATENCY_RECORD,
                        speed=opts.latency_speed,
                        start_s=start_s,
                        stop_s=stop_s,
                    )
    if opts.run_live:
        report["simulate"] = bench_simulate()
    if opts.run_offline:
        report["ectopy"] = bench_ectopy()
    report["meta"]["loadavg_after"] = loadavg()
    report["meta"]["bench_max_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / _KIB, 1
    )
    report["targets"] = targets(report)
    return report


@contextlib.contextmanager
def _worktree(ref: str) -> Iterator[Path]:
    """Check git ``ref`` out in a temporary ``git worktree``, compiled; remove it after.

    Raises
    ------
    RuntimeError
        If the worktree cannot be made.
    """
    with tempfile.TemporaryDirectory(prefix="bedside-baseline-") as tmp:
        tree = Path(tmp) / "tree"
        made = subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), ref],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0:
            msg = f"cannot check out {ref}: {made.stderr.strip()}"
            raise RuntimeError(msg)
        try:
            # compile first, as this tree already is: the first run would pay for it
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", "agent", "firmware_bridge", "models"],
                cwd=tree,
                capture_output=True,
                check=False,
            )
            yield tree
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)],
                cwd=REPO_ROOT,
                capture_output=True,
                check=False,
            )


def bench_baseline(ref: str, argv: Sequence[str]) -> dict[str, Any]:
    """Run this benchmark as the code was at git ``ref``, on this machine, now.

    The tree at ``ref`` is checked out in a temporary ``git worktree`` and its own
    ``python -m tools.bench`` runs there with the same options (this environment's
    packages), so "before" and "after" come from one machine in one run.

    Raises
    ------
    RuntimeError
        If the worktree cannot be made or the baseline's benchmark fails.
    """
    with _worktree(ref) as tree, tempfile.TemporaryDirectory(prefix="bedside-bl-") as tmp:
        out = Path(tmp) / "baseline.json"
        run = subprocess.run(
            [sys.executable, "-m", "tools.bench", *argv, "--json", str(out)],
            cwd=tree,
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            msg = f"baseline benchmark at {ref} failed:\n{run.stderr[-2000:]}"
            raise RuntimeError(msg)
        report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    report["meta"]["ref"] = ref
    return report


def _headline(report: dict[str, Any]) -> dict[str, float]:
    """Return the figures compared before/after: analyze speed and RSS, live CPU and RSS."""
    out: dict[str, float] = {}
    for r in report.get("offline", []):
        tag = f"{r['record']}@{r['fs_hz']:g}Hz"
        # whole process only: before this commit the stage child ran without the classifier
        out[f"analyze {tag} x real time (CPU, whole process)"] = r["cli"]["x_realtime_cpu"]
        out[f"analyze {tag} wall s (whole process)"] = r["cli"]["wall_s"]
        out[f"analyze {tag} peak RSS MB"] = r["cli"]["max_rss_mb"]
        out[f"analysis {tag} x real time (CPU, analysis only)"] = r["x_realtime_analyze"]
    batch = report.get("batch")
    if batch:
        out[f"48 mitdb records --jobs {batch['jobs']} wall s"] = batch["wall_s"]
    imp = report.get("imports")
    if imp:
        out["live agent imports CPU s"] = imp["import_cpu_s"]
    for r in report.get("live", []):
        out[f"live {r['fs_hz']:g} Hz CPU % of one core"] = r["cpu_pct_one_core"]
        out[f"live {r['fs_hz']:g} Hz RSS MB"] = r["rss_mb"]
    lat = report.get("latency")
    if lat:
        out["alarm latency p50 ms"] = lat["p50_ms"]
    return out


def format_comparison(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Return a before/after table of the :func:`_headline` figures."""
    b, a = _headline(before), _headline(after)
    ref = before["meta"].get("ref", before["meta"].get("git", "?"))
    head = f"{'':<52} {'before':>10} {'after':>10}"
    lines = [f"Before ({ref}) and after ({after['meta'].get('git', '?')}), this machine", head]
    for key in a:
        lines.append(f"{key:<52} {b.get(key, float('nan')):>10} {a[key]:>10}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m tools.bench``."""
    p = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=default_data_dir(), help="PhysioNet data folder")
    p.add_argument("--json", type=Path, help="also write the report to this JSON file")
    p.add_argument(
        "--quick", action="store_true", help="one record, 15 s live runs, short latency run"
    )
    p.add_argument(
        "--records", nargs="+", help=f"mitdb records offline (default {' '.join(DEFAULT_RECORDS)})"
    )
    p.add_argument("--live-s", type=float, help="length of each live run, s (default 60, quick 15)")
    p.add_argument(
        "--warmup-s", type=float, help="start-up excluded from live CPU, s (default 10, quick 5)"
    )
    p.add_argument("--speed", type=float, default=20.0, help="replay speed of the latency run")
    p.add_argument(
        "--cpu", type=int, default=default_cpu(), help="CPU the offline children are pinned to"
    )
    p.add_argument(
        "--only",
        nargs="+",
        choices=["offline", "live", "latency", "batch", "neurokit", "imports", "live-pairs"],
        help="run only these measurements (live-pairs: alone, with --baseline)",
    )
    p.add_argument(
        "--pairs",
        type=int,
        default=6,
        help="live-pairs: pairs of live runs, this checkout and --baseline at once (default 6)",
    )
    p.add_argument(
        "--baseline",
        metavar="GIT_REF",
        help="also run the benchmark as the code was at GIT_REF, first, and compare",
    )
    p.add_argument(
        "--jobs", type=int, default=2, help="--jobs of the all-records analyze run (default 2)"
    )
    p.add_argument("--stages-child", metavar="RECORD", help=argparse.SUPPRESS)
    p.add_argument("--fs", type=float, help=argparse.SUPPRESS)
    return p


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    """Turn parsed arguments into :class:`BenchOptions` (``--quick`` sets the defaults)."""
    quick: bool = args.quick
    everything = ["offline", "live", "latency", "batch", "neurokit", "imports"]
    # --quick leaves out the two runs over all 48 records (minutes each)
    only = set(
        args.only
        or ([e for e in everything if e not in ("batch", "neurokit")] if quick else everything)
    )
    return BenchOptions(
        data_dir=args.data,
        records=args.records or ([DEFAULT_RECORDS[0]] if quick else list(DEFAULT_RECORDS)),
        offline_fs=[None, 130.0],
        live_fs=[130.0] if quick else [130.0, 360.0],
        live_s=args.live_s or (15.0 if quick else 60.0),
        warmup_s=args.warmup_s or (5.0 if quick else 10.0),
        latency_speed=args.speed,
        latency_slice_s=QUICK_LATENCY_SLICE_S if quick else (LATENCY_START_S, None),
        cpu=args.cpu,
        run_offline="offline" in only,
        run_live="live" in only,
        run_latency="latency" in only,
        run_batch="batch" in only,
        run_neurokit="neurokit" in only,
        run_imports="imports" in only,
        batch_jobs=args.jobs,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit status (2 when data or a child is missing)."""
    args = build_parser().parse_args(argv)
    if args.stages_child:
        print(json.dumps(offline_stages(args.stages_child, args.fs)))
        return 0
    if args.only and "live-pairs" in args.only:
        return _main_live_pairs(args)
    opts = options_from_args(args)
    if not (opts.data_dir / "mitdb" / "100.hea").exists():
        print(f"error: PhysioNet data not found under {opts.data_dir}", file=sys.stderr)
        return 2
    if opts.warmup_s >= opts.live_s:
        print("error: --warmup-s must be shorter than --live-s", file=sys.stderr)
        return 2
    from agent.errors import BedsideError

    before = None
    if args.baseline:
        passed = list(argv if argv is not None else sys.argv[1:])
        try:
            before = bench_baseline(args.baseline, baseline_argv(passed, opts.data_dir))
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    try:
        report = run_bench(opts)
    except BedsideError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_report(report))
    if before is not None:
        report["baseline"] = before
        print()
        print(format_comparison(before, report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def _main_live_pairs(args: argparse.Namespace) -> int:
    """``--only live-pairs --baseline REF``: :func:`bench_live_pairs`, printed (and JSON)."""
    if args.only != ["live-pairs"] or not args.baseline:
        print("error: live-pairs runs alone and needs --baseline GIT_REF", file=sys.stderr)
        return 2
    if not (args.data / "mitdb" / "100.hea").exists():
        print(f"error: PhysioNet data not found under {args.data}", file=sys.stderr)
        return 2
    live_s = args.live_s or 120.0
    warmup_s = args.warmup_s or 15.0
    if warmup_s >= live_s or args.pairs < 1:
        print("error: --warmup-s must be shorter than --live-s, --pairs >= 1", file=sys.stderr)
        return 2
    from agent.errors import BedsideError

    try:
        report = bench_live_pairs(
            args.baseline, args.data, pairs=args.pairs, live_s=live_s, warmup_s=warmup_s
        )
    except (RuntimeError, BedsideError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_live_pairs(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"live_pairs": report}, indent=2) + "\n", "utf-8")
    return 0


def baseline_argv(argv: Sequence[str], data_dir: Path) -> list[str]:
    """Return the options of a ``--baseline`` run: these, less ``--baseline`` and ``--json``.

    ``--data`` is passed as an absolute path: the baseline runs in a temporary git worktree,
    where a relative one (``../shared/data``) points nowhere.
    """
    same = _without_options(argv, {"--baseline": 1, "--json": 1, "--data": 1})
    return [*same, "--data", str(data_dir.resolve())]


def _without_options(argv: Sequence[str], drop: dict[str, int]) -> list[str]:
    """``argv`` less each option in ``drop`` and the number of values it takes."""
    out: list[str] = []
    skip = 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        name = arg.split("=", 1)[0]
        if name in drop:
            skip = 0 if "=" in arg else drop[name]
            continue
        out.append(arg)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
