"""The ``bedside`` command: run, analyze, plot, nurse-station, demo, validate-config, schema.

Every error the user can cause (missing record, truncated file, bad config, unreachable
broker) ends as one line on stderr, ``bedside: error: ...``, and exit status 2; tracebacks
are for bugs only.

Length: every subcommand's arguments and its error mapping live here, so that ``bedside --help``
and the exit codes are defined in one place.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.config import AgentConfig, MqttConfig, load_config
from agent.errors import BedsideError, ConfigError
from agent.messages import schemas_json

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from agent.batch import RecordOutcome

logger = logging.getLogger("agent")

EXIT_ERROR = 2


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML configuration file")
    p.add_argument("--channel", type=int, help="signal channel of the record (default 0)")
    p.add_argument("--fs", type=float, dest="fs_hz", help="resample to this rate, Hz (e.g. 130)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"must be a positive integer, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0.0 and value < float("inf")):
        msg = f"must be a number of seconds >= 0, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _chunk_seconds(text: str) -> float:
    value = _seconds(text)
    if value <= 0.0:
        msg = f"must be a number of seconds > 0, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``bedside`` command."""
    parser = argparse.ArgumentParser(
        prog="bedside",
        description="Bedside cardiac monitoring edge agent (not a certified medical device).",
    )
    parser.add_argument("--version", action="version", version=f"bedside {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the live agent and publish to MQTT")
    _add_config_flags(run)
    run.add_argument(
        "--source",
        help=(
            "replay:RECORD (a WFDB record's ECG), rr:RECORD (RR intervals only: a CSV file in"
            " ms, or WFDB beat annotations with --rr-annotations) or simulate (the default)"
        ),
    )
    run.add_argument(
        "--rr-annotations", metavar="EXT", help="with rr:RECORD, read beats from RECORD.EXT"
    )
    run.add_argument("--speed", type=float, help="replay/simulation speed, 1 = real time")
    run.add_argument("--broker", help="MQTT broker URL, mqtt://HOST[:PORT]")
    run.add_argument("--bed", help="UNIT/BED, used in topics (no patient identifiers)")
    run.add_argument("--outbox", type=Path, help="SQLite outbox file for undelivered alarms")
    run.add_argument(
        "--stop-after",
        type=float,
        metavar="S",
        help="end the stream after S seconds of stream time (not wall-clock time), as a"
        " recording ends: for comparing runs across machines",
    )

    analyze = sub.add_parser("analyze", help="run the pipeline over WFDB records, fast")
    analyze.add_argument(
        "records",
        nargs="+",
        help="WFDB record paths without extension, or CSV files of RR intervals in ms (*.csv)",
    )
    analyze.add_argument("--out", type=Path, required=True, help="output folder")
    analyze.add_argument(
        "--rr-annotations",
        metavar="EXT",
        help="RR-only input: read the beats of each record from its WFDB annotation file"
        " RECORD.EXT (e.g. qrs), as a Heart Rate Service strap would deliver them",
    )
    analyze.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="records analysed at once, each in its own process (default: the number of CPUs;"
        " 1 runs everything in this process); outputs do not depend on it",
    )
    analyze.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the records as tasks on a Dask distributed cluster (tcp://HOST:8786)"
        " instead of local processes; outputs are written here, identical to a local run;"
        " the records must be readable at the same path on every worker",
    )
    analyze.add_argument(
        "--ack-after",
        type=_seconds,
        metavar="S",
        help="acknowledge every latched alarm (vfib, vtach) S seconds after it is raised, as a"
        " nurse would, so that a later episode raises its own alarm (default: never)",
    )
    analyze.add_argument(
        "--chunk-s",
        type=_chunk_seconds,
        metavar="S",
        help="read each waveform record in chunks of S seconds (default 30); the outputs do"
        " not depend on it: this is there to check that",
    )
    analyze.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress and no summary table, only errors and the final line",
    )
    _add_config_flags(analyze)

    plot = sub.add_parser("plot", help="draw an alarm's ECG strip or a tachogram to a PNG")
    plot_sub = plot.add_subparsers(dest="figure", required=True, metavar="FIGURE")
    strip = plot_sub.add_parser(
        "strip", help="an alarm's evidence strip with labelled beats, from alarms.jsonl"
    )
    strip.add_argument("alarms", type=Path, help="alarms.jsonl, or a record's output folder")
    strip.add_argument("--id", dest="alarm_id", metavar="PREFIX", help="alarm_id prefix")
    strip.add_argument("--condition", help="alarm condition, e.g. pause, vtach, afib")
    strip.add_argument(
        "--index",
        type=int,
        default=0,
        help="which matching raised event, 0-based in file order; -1 the last (default 0)",
    )
    tacho = plot_sub.add_parser(
        "tachogram", help="RR interval (ms) against time, coloured by AAMI class, from beats.csv"
    )
    tacho.add_argument("beats", type=Path, help="beats.csv, or a record's output folder")
    for p in (strip, tacho):
        p.add_argument("--out", type=Path, required=True, help="PNG file to write")
        p.add_argument("--width", type=_positive_int, default=1600, help="pixels (default 1600)")
        p.add_argument("--height", type=_positive_int, default=500, help="pixels (default 500)")

    nurse = sub.add_parser("nurse-station", help="live view of every bed on a broker")
    nurse.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://HOST[:PORT]")
    nurse.add_argument("--duration", type=float, help="stop after this many seconds")
    nurse.add_argument("--plain", action="store_true", help="log lines instead of a live view")
    nurse.add_argument(
        "--ack",
        action="append",
        default=[],
        metavar="UNIT/BED:ALARM_ID",
        help="acknowledge this alarm and exit (repeatable)",
    )
    nurse.add_argument("--station-id", default="nurse-station", help="this station's id")
    _add_broker_security_flags(nurse)
    nurse.add_argument(
        "--ack-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="--ack waits this long for the agent's confirmation (default 10 s)",
    )

    demo = sub.add_parser(
        "demo", help="broker + simulated ward + web station (prints its URL), no configuration"
    )
    demo.add_argument("--duration", type=float, help="stop after this many seconds")
    demo.add_argument("--plain", action="store_true", help="log lines instead of a live view")
    demo.add_argument("--broker", help="use this broker instead of starting mosquitto")
    demo.add_argument(
        "--terminal", action="store_true", help="one simulated agent + the terminal station"
    )
    demo.add_argument("--beds", type=_positive_int, default=6, help="web demo beds (default 6)")
    demo.add_argument("--port", type=int, default=8080, help="web demo HTTP port (default 8080)")

    from agent.station.cli import add_station_parser, add_ward_sim_parser

    add_station_parser(sub)
    add_ward_sim_parser(sub)

    prov = sub.add_parser(
        "provision",
        help="write a site CA, per-bed and per-station certificates, mosquitto.conf and ACLs",
    )
    prov.add_argument("--out", type=Path, required=True, help="site folder (keep it secret)")
    prov.add_argument(
        "--bed", action="append", default=[], metavar="UNIT/BED", help="a bed (repeatable)"
    )
    prov.add_argument(
        "--station",
        action="append",
        default=[],
        metavar="NAME[:UNIT,...]",
        help="a station and the units it serves (default: every unit of --bed; repeatable)",
    )
    prov.add_argument(
        "--broker-host",
        action="append",
        default=[],
        metavar="HOST",
        help="name or address clients use for the broker (repeatable; default localhost"
        " and 127.0.0.1)",
    )
    prov.add_argument("--port", type=int, default=8883, help="broker TLS port (default 8883)")
    prov.add_argument("--bind", default="0.0.0.0", help="broker listen address")  # noqa: S104

    validate = sub.add_parser("validate-config", help="check a TOML configuration file")
    validate.add_argument("file", type=Path)

    scan = sub.add_parser("scan", help="list nearby supported Bluetooth LE wearables")
    scan.add_argument("--timeout", type=float, default=5.0, help="scan for this many seconds")

    schema = sub.add_parser("schema", help="print the JSON Schemas of every MQTT payload")
    schema.add_argument("--out", type=Path, help="write to this file instead of stdout")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    source = getattr(args, "source", None)
    if source:
        if source == "simulate":
            out["source.kind"] = "simulate"
        elif source.startswith("replay:") and len(source) > len("replay:"):
            out["source.kind"] = "replay"
            out["source.record"] = source.removeprefix("replay:")
        elif source.startswith("rr:") and len(source) > len("rr:"):
            out["source.kind"] = "rr"
            out["source.record"] = source.removeprefix("rr:")
        else:
            msg = f"--source must be replay:RECORD, rr:RECORD or simulate, got {source!r}"
            raise ConfigError(msg, field="source")
    for flag, dotted in (
        ("speed", "source.speed"),
        ("channel", "source.channel"),
        ("fs_hz", "source.fs_hz"),
        ("broker", "mqtt.url"),
        ("outbox", "mqtt.outbox_path"),
        ("rr_annotations", "source.rr_annotations"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            out[dotted] = value
    bed = getattr(args, "bed", None)
    if bed:
        unit, sep, name = bed.partition("/")
        if not sep:
            msg = f"--bed must be UNIT/BED, got {bed!r}"
            raise ConfigError(msg, field="bed")
        out["bed.unit"] = unit
        out["bed.bed"] = name
    return out


def _cmd_run(args: argparse.Namespace) -> int:
    from agent.inference.bundle import load_models
    from agent.publish.mqtt import DELIVERY_PROBLEM_CODES, DeliveryError, MqttPublisher
    from agent.queues import StationInbox
    from agent.runtime import AgentFailureError, AgentRuntime, run_until_done
    from agent.service import PipelineWatchdog, StreamTimeLimit, SystemdNotifier, log_with_bed
    from agent.sources import make_source
    from firmware_bridge.transports import Source

    cfg = load_config(args.config, _overrides(args))
    log_with_bed(f"{cfg.bed.unit}/{cfg.bed.bed}")
    if args.stop_after is not None and not args.stop_after > 0:
        msg = f"--stop-after must be > 0 s, got {args.stop_after}"
        raise ConfigError(msg, field="stop_after")
    models = load_models(cfg.inference)
    source: Source = make_source(cfg.source)
    if args.stop_after is not None:
        source = StreamTimeLimit(source, args.stop_after)
    notifier = SystemdNotifier()
    watchdog = PipelineWatchdog(notifier)
    source = watchdog.watch(source)
    inbox = StationInbox()
    runtimes: list[AgentRuntime] = []  # the publisher reports problems to the runtime

    def on_problem(problem: DeliveryError) -> None:
        if runtimes:
            runtimes[0].report_problem(
                DELIVERY_PROBLEM_CODES[problem.kind],
                str(problem),
                fatal=problem.kind == "outbox_failed",
            )

    publisher = MqttPublisher(
        cfg.mqtt,
        cfg.bed,
        source_desc=source.describe(),
        agent_version=__version__,
        on_ack=inbox.submit_ack,
        on_observations=inbox.submit_observations,
        on_problem=on_problem,
    )
    logger.info(
        "bedside %s: %s → %s as %s/%s",
        __version__,
        source.describe(),
        cfg.mqtt.url,
        cfg.bed.unit,
        cfg.bed.bed,
    )
    runtime = AgentRuntime(
        cfg,
        source,
        publisher,
        models,
        inbox=inbox,
        backpressure=cfg.source.kind in {"replay", "rr"},
        on_output=watchdog.note_step,
    )
    runtimes.append(runtime)
    # never waits for the broker: the bed is monitored and alarms are kept from the first second
    publisher.start()

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def _stop() -> None:
            notifier.notify("STOPPING=1")
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, _stop)
        pinger = None
        if notifier.watchdog_period_s is not None:
            pinger = asyncio.create_task(watchdog.run(notifier.watchdog_period_s / 2))
        # monitoring: models loaded, stages starting; neither a broker still connecting nor a
        # missing wearable delays it (each is an alarm, not a failed start; agent/service.py)
        notifier.notify("READY=1")
        try:
            await run_until_done(runtime, stop)
        finally:
            if pinger is not None:
                pinger.cancel()
        publisher.publish_status(runtime.counters())

    try:
        asyncio.run(_main())
    except AgentFailureError as err:
        msg = f"{err} (alarms already raised are kept in the outbox {publisher.outbox_path})"
        raise AgentFailureError(msg) from err
    finally:
        publisher.close()
    return 0


class _AnalyzeProgress:
    """Reports each record of ``bedside analyze`` as it ends, on stderr.

    A rich progress bar (records done, x real time by wall clock) when stderr is a terminal,
    one plain line per record otherwise, nothing but failures when quiet. A failed record is
    always one line, ``bedside: error: <reason>``.
    """

    def __init__(self, n_records: int, *, quiet: bool) -> None:
        self._n = n_records
        self._done = 0
        self._signal_s = 0.0
        self._quiet = quiet
        self._t0 = time.perf_counter()
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        if not quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("analyze"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("records"),
                TextColumn("{task.fields[speed]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )

    def __enter__(self) -> _AnalyzeProgress:
        self._t0 = time.perf_counter()
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task("analyze", total=self._n, speed="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def record_done(self, outcome: RecordOutcome) -> None:
        """Count one finished record (result or failure) and show it."""
        from agent.batch import RecordFailure

        self._done += 1
        if isinstance(outcome, RecordFailure):
            line = f"bedside: error: {outcome.message}"
            if self._bar is not None:
                self._bar.console.print(line, markup=False, highlight=False)
            else:
                print(line, file=sys.stderr)
        else:
            self._signal_s += outcome.duration_s
        wall_s = max(time.perf_counter() - self._t0, 1e-9)
        speed = f"{self._signal_s / wall_s:.0f}x real time"
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=1, speed=speed)
        elif not self._quiet and not isinstance(outcome, RecordFailure):
            print(
                f"[{self._done}/{self._n}] {outcome.record}: {outcome.duration_s / 60:.1f} min,"
                f" {len(outcome.beats)} beats, {len(outcome.events)} alarm events ({speed})",
                file=sys.stderr,
            )


def _cmd_analyze(args: argparse.Namespace) -> int:
    from agent.batch import analyze_records, default_jobs, summarize_record, summary_table
    from agent.termination import termination_unwinds

    cfg = load_config(args.config, {})
    channel = args.channel if args.channel is not None else cfg.source.channel
    fs_hz = args.fs_hz if args.fs_hz is not None else cfg.source.fs_hz
    jobs = args.jobs if args.jobs is not None else default_jobs()
    with termination_unwinds(), _AnalyzeProgress(len(args.records), quiet=args.quiet) as progress:
        report = analyze_records(
            args.records,
            args.out,
            cfg,
            channel=channel,
            fs_hz=fs_hz,
            rr_annotations=args.rr_annotations,
            ack_after_s=args.ack_after,
            chunk_s=args.chunk_s,
            jobs=jobs,
            scheduler=args.scheduler,
            on_record=progress.record_done,
        )
    results = report.results
    if results and not args.quiet:
        for line in summary_table([summarize_record(r) for r in results]):
            print(line)
    total_s = sum(r.duration_s for r in results)
    cpu_s = sum(r.cpu_s for r in results)
    failed = f"; {len(report.failures)} record(s) failed" if report.failures else ""
    cpu_txt = f"{cpu_s:.2f}" if cpu_s < 10.0 else f"{cpu_s:.1f}"  # a short strip: not "0.0 s"
    print(
        f"analyzed {len(results)} record(s), {total_s / 60:.1f} min in {cpu_txt} s CPU"
        f" ({total_s / max(cpu_s, 1e-9):.0f}x real time) → {args.out}{failed}"
    )
    return EXIT_ERROR if report.failures else 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from agent.plot import (
        PlotInputError,
        alarm_events_file,
        load_alarm_events,
        plot_alarm_strip,
        plot_tachogram,
        select_alarm,
    )

    size = {"width_px": args.width, "height_px": args.height}
    if args.figure == "strip":
        alarms = alarm_events_file(args.alarms)
        events = load_alarm_events(alarms)  # its errors name the file already
        try:
            event = select_alarm(
                events, alarm_id=args.alarm_id, condition=args.condition, index=args.index
            )
        except PlotInputError as err:
            msg = f"{alarms}: {err}"
            raise PlotInputError(msg, alarms) from err
        out = plot_alarm_strip(event, args.out, **size)
        print(
            f"{event.condition.value} alarm {event.alarm_id[:8]} at {event.onset_s:.1f} s → {out}"
        )
    else:
        out = plot_tachogram(args.beats, args.out, **size)
        print(f"tachogram → {out}")
    return 0


def _add_broker_security_flags(p: argparse.ArgumentParser) -> None:
    """TLS identity and credentials of a station (the agent takes them from its config)."""
    p.add_argument("--ca", type=Path, help="mqtts: site CA certificate (PEM)")
    p.add_argument("--cert", type=Path, help="mqtts: this station's certificate (PEM)")
    p.add_argument("--key", type=Path, help="mqtts: this station's private key (PEM)")
    p.add_argument("--username", help="broker user name (password: BEDSIDE_MQTT__PASSWORD)")
    p.add_argument("--password-file", type=Path, help="file holding the broker password")


def _station_security(args: argparse.Namespace) -> MqttConfig:
    """Build the station's broker settings from flags and ``BEDSIDE_MQTT__PASSWORD``.

    Raises
    ------
    ConfigError
        If the URL or a combination of settings is invalid (never echoing a password).
    """
    import os

    from pydantic import ValidationError

    from agent.config import format_validation_error

    data: dict[str, Any] = {
        "url": args.broker,
        "tls_ca_file": args.ca,
        "tls_cert_file": args.cert,
        "tls_key_file": args.key,
        "username": args.username,
        "password_file": args.password_file,
    }
    password = os.environ.get("BEDSIDE_MQTT__PASSWORD")
    if password and args.password_file is None:
        data["password"] = password
    try:
        return MqttConfig.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as err:
        msg = f"invalid broker settings: {format_validation_error(err)}"
        raise ConfigError(msg, field="mqtt") from err


def _cmd_nurse(args: argparse.Namespace) -> int:
    from agent.nurse_station import run_nurse_station

    security = _station_security(args)
    return run_nurse_station(
        args.broker,
        station_id=args.station_id,
        duration_s=args.duration,
        plain=args.plain,
        ack=args.ack,
        security=security,
        ack_timeout_s=args.ack_timeout,
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from agent.demo import run_demo

    if args.terminal:
        return run_demo(duration_s=args.duration, plain=args.plain, broker=args.broker)
    from agent.demo import run_web_demo

    return run_web_demo(
        duration_s=args.duration, broker=args.broker, beds=args.beds, port=args.port
    )


def _cmd_station(args: argparse.Namespace) -> int:
    from agent.station.cli import run_station_command

    return run_station_command(args)


def _cmd_ward_sim(args: argparse.Namespace) -> int:
    from agent.station.cli import run_ward_sim_command

    return run_ward_sim_command(args)


def _cmd_provision(args: argparse.Namespace) -> int:
    from agent.provision import parse_station, provision_site

    beds: list[tuple[str, str]] = []
    for item in args.bed:
        unit, sep, bed = item.partition("/")
        if not sep:
            msg = f"--bed must be UNIT/BED, got {item!r}"
            raise ConfigError(msg, field="bed")
        beds.append((unit, bed))
    units = sorted({unit for unit, _ in beds})
    stations = [parse_station(text, units) for text in args.station]
    site = provision_site(
        args.out,
        beds,
        stations,
        broker_hosts=args.broker_host or ["localhost", "127.0.0.1"],
        port=args.port,
        bind=args.bind,
    )
    print(
        f"site {site.folder}: CA, {len(site.beds)} bed(s), {len(site.stations)} station(s);"
        f" run: mosquitto -c {site.mosquitto_conf}"
    )
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    cfg: AgentConfig = load_config(args.file, {})
    print(f"{args.file}: valid (bed {cfg.bed.unit}/{cfg.bed.bed}, source {cfg.source.kind})")
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from bleak.exc import BleakError

    from firmware_bridge.transports.ble import scan_supported

    try:
        found = asyncio.run(scan_supported(args.timeout))
    except (BleakError, OSError) as err:
        msg = f"Bluetooth scan failed ({err}); is BlueZ running and the adapter powered?"
        raise BedsideError(msg) from err
    if not found:
        print(f"no supported device seen in {args.timeout:g} s")
        return 0
    print(f"{'address':<18} {'rssi':>5}  {'kinds':<24} name")
    for dev in sorted(found, key=lambda d: -d.rssi_dbm):
        kinds = ",".join(dev.kinds)
        print(f"{dev.address:<18} {dev.rssi_dbm:>5}  {kinds:<24} {dev.name or ''}")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    text = schemas_json()
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


COMMANDS = {
    "run": _cmd_run,
    "analyze": _cmd_analyze,
    "plot": _cmd_plot,
    "nurse-station": _cmd_nurse,
    "demo": _cmd_demo,
    "station": _cmd_station,
    "ward-sim": _cmd_ward_sim,
    "validate-config": _cmd_validate,
    "provision": _cmd_provision,
    "schema": _cmd_schema,
    "scan": _cmd_scan,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bedside`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    level = logging.WARNING
    if args.command == "run":
        level = logging.INFO
    if args.verbose:
        level = logging.DEBUG if args.verbose > 1 else logging.INFO
    if args.quiet:
        level = logging.WARNING
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        return COMMANDS[args.command](args)
    except BedsideError as err:
        print(f"bedside: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
