"""Commanding the fake: a small D-Bus interface next to ``org.bluez``, and its client.

The fake owns a second bus name, ``org.bedside.FakeBlueZ``, and exports
``org.bedside.FakeControl1`` at ``/org/bedside/FakeControl``. Tests (in another process than
the fake) call it with :class:`FakeBluezControl`; bleak never sees it (it only listens below
``/org/bluez``).
"""

# No `from __future__ import annotations`: dbus-fast reads `-> None` as an object here.
import json
from types import TracebackType
from typing import TYPE_CHECKING, Any

from dbus_fast import DBusError, Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusBool, DBusByte, DBusDouble, DBusStr, DBusUInt32
from dbus_fast.service import ServiceInterface, dbus_method

if TYPE_CHECKING:
    from tests.fake_bluez.bluez import FakeBluez

CONTROL_BUS_NAME = "org.bedside.FakeBlueZ"
CONTROL_PATH = "/org/bedside/FakeControl"
CONTROL_INTERFACE = "org.bedside.FakeControl1"
ERROR_INVALID = "org.bedside.Error.Invalid"


class FakeControlError(RuntimeError):
    """A control command failed (unknown device, command the device does not support)."""


class FakeControlInterface(ServiceInterface):
    """Server side of the control channel (runs inside the fake's process)."""

    def __init__(self, fake: "FakeBluez") -> None:
        super().__init__(CONTROL_INTERFACE)
        self.fake = fake

    @dbus_method(name="Drop")
    def drop(self, address: DBusStr) -> None:
        """Lose the radio link: ``Connected`` becomes False, as when the strap goes out of range."""
        self.fake.device(address).drop("link lost (simulated)")

    @dbus_method(name="Silence")
    def silence(self, address: DBusStr, seconds: DBusDouble) -> None:
        """Stop notifying for ``seconds`` with the link up (the H10's stall on Linux)."""
        self.fake.device(address).sim.silence(seconds)

    @dbus_method(name="SendMalformed")
    async def send_malformed(self, address: DBusStr, count: DBusUInt32) -> DBusUInt32:
        """Send ``count`` undecodable notifications; return how many reached a subscriber."""
        return await self.fake.device(address).sim.send_malformed(count)

    @dbus_method(name="SetContact")
    def set_contact(self, address: DBusStr, contact: DBusBool) -> None:
        """Skin contact lost (False) or restored (True)."""
        self.fake.device(address).sim.set_contact(contact)

    @dbus_method(name="SetBattery")
    def set_battery(self, address: DBusStr, level_pct: DBusByte) -> None:
        """Set and notify the battery level (%)."""
        self.fake.device(address).sim.set_battery(level_pct)

    @dbus_method(name="SetSpo2")
    def set_spo2(self, address: DBusStr, target_pct: DBusDouble, ramp_s: DBusDouble) -> None:
        """Move SpO2 linearly to ``target_pct`` over ``ramp_s`` device seconds."""
        try:
            self.fake.device(address).sim.set_spo2(target_pct, ramp_s)
        except ValueError as err:
            raise DBusError(ERROR_INVALID, str(err)) from err

    @dbus_method(name="SetTemperature")
    def set_temperature(self, address: DBusStr, temperature_c: DBusDouble) -> None:
        """Set the body temperature (°C)."""
        try:
            self.fake.device(address).sim.set_temperature(temperature_c)
        except ValueError as err:
            raise DBusError(ERROR_INVALID, str(err)) from err

    @dbus_method(name="SetAdvertising")
    def set_advertising(self, address: DBusStr, advertising: DBusBool) -> None:
        """Start or stop advertising (a strap switched off or out of range)."""
        self.fake.device(address).sim.advertising = advertising

    @dbus_method(name="Describe")
    def describe(self, address: DBusStr) -> DBusStr:
        """JSON state and counters of one device (or all, for an empty address)."""
        if address:
            return json.dumps(self.fake.device(address).sim.describe())
        return json.dumps([d.sim.describe() for d in self.fake.devices.values()])


class FakeBluezControl:
    """Client for :class:`FakeControlInterface` (async context manager).

    Parameters
    ----------
    bus_address : str
        The private bus address (``DBUS_SYSTEM_BUS_ADDRESS`` of the fixture).
    """

    def __init__(self, bus_address: str) -> None:
        self.bus_address = bus_address
        self._bus: MessageBus | None = None

    async def __aenter__(self) -> "FakeBluezControl":
        self._bus = await MessageBus(bus_address=self.bus_address).connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Disconnect from the bus (idempotent)."""
        if self._bus is not None:
            bus, self._bus = self._bus, None
            bus.disconnect()
            await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]

    async def _call(self, member: str, signature: str, *body: Any) -> list[Any]:
        if self._bus is None:
            self._bus = await MessageBus(bus_address=self.bus_address).connect()
        reply = await self._bus.call(
            Message(
                destination=CONTROL_BUS_NAME,
                path=CONTROL_PATH,
                interface=CONTROL_INTERFACE,
                member=member,
                signature=signature,
                body=list(body),
            )
        )
        if reply.message_type == MessageType.ERROR:
            msg = f"{member}{body}: {reply.error_name}: {reply.body}"
            raise FakeControlError(msg)
        return list(reply.body)

    async def drop(self, address: str) -> None:
        """Simulate loss of the radio link."""
        await self._call("Drop", "s", address)

    async def silence(self, address: str, seconds: float) -> None:
        """Stop notifications for ``seconds`` (link stays up)."""
        await self._call("Silence", "sd", address, seconds)

    async def send_malformed(self, address: str, count: int) -> int:
        """Send ``count`` malformed frames; return how many reached the subscriber."""
        (delivered,) = await self._call("SendMalformed", "su", address, count)
        return int(delivered)

    async def set_contact(self, address: str, contact: bool) -> None:
        """Lose (False) or restore (True) skin contact."""
        await self._call("SetContact", "sb", address, contact)

    async def set_battery(self, address: str, level_pct: int) -> None:
        """Set the battery level, notified to a subscriber."""
        await self._call("SetBattery", "sy", address, level_pct)

    async def set_spo2(self, address: str, target_pct: float, ramp_s: float = 0.0) -> None:
        """Move SpO2 to ``target_pct`` over ``ramp_s`` device seconds."""
        await self._call("SetSpo2", "sdd", address, target_pct, ramp_s)

    async def set_temperature(self, address: str, temperature_c: float) -> None:
        """Set the thermometer's temperature."""
        await self._call("SetTemperature", "sd", address, temperature_c)

    async def set_advertising(self, address: str, advertising: bool) -> None:
        """Start or stop advertising."""
        await self._call("SetAdvertising", "sb", address, advertising)

    async def describe(self, address: str) -> dict[str, Any]:
        """State and counters of one device (``stats``: sent, lost, malformed_sent, ...)."""
        (text,) = await self._call("Describe", "s", address)
        data: dict[str, Any] = json.loads(text)
        return data
