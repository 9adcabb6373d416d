"""Run the fake BlueZ on a bus until SIGTERM (the body of ``python -m tests.fake_bluez``)."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable

from dbus_fast import RequestNameReply
from dbus_fast.aio import MessageBus

from tests.fake_bluez.bluez import FakeBluez
from tests.fake_bluez.control import CONTROL_BUS_NAME, CONTROL_PATH, FakeControlInterface
from tests.fake_bluez.devices import DeviceKind, DeviceSpec, build_device

logger = logging.getLogger(__name__)

BLUEZ_BUS_NAME = "org.bluez"

DEFAULT_DEVICES: dict[DeviceKind, tuple[str, str]] = {
    "h10": ("A0:9E:1A:AB:CD:12", "Polar H10 ABCD1234"),
    "hrs": ("C4:7C:8D:6A:11:22", "HRS Strap 1122"),
    "plx": ("00:1C:05:12:34:56", "Oximeter 3456"),
    "thermometer": ("5C:31:3E:00:78:9A", "Thermometer 789A"),
}
"""Default address and advertised name of each simulated kind."""


async def serve(
    bus_address: str, specs: list[DeviceSpec], on_ready: Callable[[], None] | None = None
) -> None:
    """Own ``org.bluez`` on ``bus_address``, simulate ``specs`` and run until SIGTERM/SIGINT.

    Raises
    ------
    RuntimeError
        If another process already owns ``org.bluez`` on that bus.
    """
    bus = await MessageBus(bus_address=bus_address).connect()
    fake = FakeBluez(bus, [build_device(spec) for spec in specs])
    bus.export(CONTROL_PATH, FakeControlInterface(fake))
    await fake.watch_name_owners()
    for name in (BLUEZ_BUS_NAME, CONTROL_BUS_NAME):
        reply = await bus.request_name(name)
        if reply is not RequestNameReply.PRIMARY_OWNER:
            msg = f"cannot own {name} on {bus_address}: {reply.name}"
            raise RuntimeError(msg)
    now = time.monotonic()
    for fake_device in fake.devices.values():
        fake_device.sim.clock_start = now
    fake.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if on_ready is not None:
        on_ready()
    await stop.wait()
    await fake.stop()
    bus.disconnect()
