"""The ``bedside`` command: run, analyze, nurse-station, demo, validate-config, schema.

Every error the user can cause (missing record, truncated file, bad config, unreachable
broker) ends as one line on stderr, ``bedside: error: ...``, and exit status 2; tracebacks
are for bugs only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent import __version__
from agent.config import AgentConfig, load_config
from agent.errors import BedsideError, ConfigError
from agent.messages import schemas_json

logger = logging.getLogger("agent")

EXIT_ERROR = 2


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML configuration file")
    p.add_argument("--channel", type=int, help="signal channel of the record (default 0)")
    p.add_argument("--fs", type=float, dest="fs_hz", help="resample to this rate, Hz (e.g. 130)")


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
    _add_config_flags(analyze)

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

    demo = sub.add_parser(
        "demo", help="broker + simulated patient + nurse station, no configuration needed"
    )
    demo.add_argument("--duration", type=float, help="stop after this many seconds")
    demo.add_argument("--plain", action="store_true", help="log lines instead of a live view")
    demo.add_argument("--broker", help="use this broker instead of starting mosquitto")

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
    from agent.publish.mqtt import MqttPublisher
    from agent.queues import StationInbox
    from agent.runtime import AgentRuntime, run_until_done
    from agent.sources import make_source

    cfg = load_config(args.config, _overrides(args))
    models = load_models(cfg.inference)
    source = make_source(cfg.source)
    inbox = StationInbox()
    publisher = MqttPublisher(
        cfg.mqtt,
        cfg.bed,
        source_desc=source.describe(),
        agent_version=__version__,
        on_ack=inbox.submit_ack,
        on_observations=inbox.submit_observations,
    )
    try:
        publisher.connect()
    except BedsideError:
        publisher.close()
        raise
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
    )

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_until_done(runtime, stop)
        publisher.publish_status(runtime.counters())

    try:
        asyncio.run(_main())
    finally:
        publisher.close()
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from agent.analyze import analyze_records
    from agent.inference.bundle import load_models

    cfg = load_config(args.config, {})
    models = load_models(cfg.inference)
    channel = args.channel if args.channel is not None else cfg.source.channel
    fs_hz = args.fs_hz if args.fs_hz is not None else cfg.source.fs_hz
    results = analyze_records(
        args.records,
        args.out,
        cfg,
        models,
        channel=channel,
        fs_hz=fs_hz,
        rr_annotations=args.rr_annotations,
    )
    total_s = sum(r.duration_s for r in results)
    cpu_s = sum(r.cpu_s for r in results)
    print(
        f"analyzed {len(results)} record(s), {total_s / 60:.1f} min in {cpu_s:.1f} s CPU"
        f" ({total_s / max(cpu_s, 1e-9):.0f}x real time) → {args.out}"
    )
    return 0


def _cmd_nurse(args: argparse.Namespace) -> int:
    from agent.nurse_station import run_nurse_station

    return run_nurse_station(
        args.broker,
        station_id=args.station_id,
        duration_s=args.duration,
        plain=args.plain,
        ack=args.ack,
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from agent.demo import run_demo

    return run_demo(duration_s=args.duration, plain=args.plain, broker=args.broker)


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
    "nurse-station": _cmd_nurse,
    "demo": _cmd_demo,
    "validate-config": _cmd_validate,
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
