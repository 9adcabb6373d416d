"""Run a fake BlueZ with simulated wearables, for manual runs and the demo.

Examples
--------
Start a private bus and a Polar H10 streaming mitdb 232 ten times faster than real time::

    python -m tests.fake_bluez --device h10 --record ../shared/data/mitdb/232 --speed 10

It prints ``DBUS_SYSTEM_BUS_ADDRESS=...``; export that in another shell and bleak (``bedside
scan``, ``bedside run`` with a BLE source) talks to the fake. Several ``--device`` options
simulate several devices; ``--bus-address`` joins an existing bus instead of starting one;
``--specs-json`` (used by the pytest fixture) gives full :class:`DeviceSpec` lists.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys

from tests.fake_bluez.bus import PrivateBus
from tests.fake_bluez.devices import SIMULATORS, DeviceKind, DeviceSpec
from tests.fake_bluez.server import DEFAULT_DEVICES, serve


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fake_bluez",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--device",
        action="append",
        choices=sorted(SIMULATORS),
        default=[],
        help="simulate this device (repeatable)",
    )
    parser.add_argument("--record", help="WFDB record: H10 ECG, HRS beats (without extension)")
    parser.add_argument("--annotator", default="qrs", help="HRS beat annotator (qrs, else atr)")
    parser.add_argument("--speed", type=float, default=1.0, help="device clock x real time")
    parser.add_argument("--start-s", type=float, default=0.0, help="start offset in the record")
    parser.add_argument("--bus-address", help="join this bus instead of starting a private one")
    parser.add_argument("--specs-json", help="JSON list of DeviceSpec dicts (fixture use)")
    parser.add_argument("--verbose", action="store_true", help="log at DEBUG")
    return parser.parse_args(argv)


def _specs(args: argparse.Namespace) -> list[DeviceSpec]:
    if args.specs_json:
        return [DeviceSpec.from_json(d) for d in json.loads(args.specs_json)]
    kinds: list[DeviceKind] = args.device or ["h10"]
    specs = []
    for kind in kinds:
        address, name = DEFAULT_DEVICES[kind]
        record = args.record if kind in ("h10", "hrs") else None
        specs.append(
            DeviceSpec(
                kind=kind,
                address=address,
                name=name,
                speed=args.speed,
                record=record,
                annotator=args.annotator,
                start_s=args.start_s,
            )
        )
    return specs


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    specs = _specs(args)
    private: PrivateBus | None = None
    address = args.bus_address
    if address is None:
        private = PrivateBus.start()
        address = private.address

    def ready() -> None:
        print(f"DBUS_SYSTEM_BUS_ADDRESS={address}", flush=True)
        for spec in specs:
            print(f"DEVICE {spec.kind} {spec.address} {spec.name!r}", flush=True)
        print("READY", flush=True)

    try:
        asyncio.run(serve(address, specs, ready))
    except KeyboardInterrupt:
        pass
    finally:
        if private is not None:
            private.stop()
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalisation (~0.7 s with scipy loaded): everything is already
    # closed, and the fixture waits for this exit at every teardown.
    os._exit(status)
