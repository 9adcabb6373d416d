"""A fake ``org.bluez`` service: adapter, devices and GATT objects over D-Bus.

It exports exactly what unmodified bleak 3.1.0 reads (``bleak/backends/bluezdbus/manager.py``,
``client.py``, ``scanner.py``), with BlueZ's own behaviour where bleak depends on it:

- ``/org/bluez/hci0`` implements ``org.bluez.Adapter1`` (``Powered``, ``Roles`` with
  ``central``, ``Discovering``; ``SetDiscoveryFilter``, ``StartDiscovery``, ``StopDiscovery``,
  ``RemoveDevice``). Discovery sessions are per D-Bus sender, as in BlueZ's ``adapter.c``: a
  second ``StartDiscovery`` from the same sender fails with ``org.bluez.Error.InProgress`` and a
  ``StopDiscovery`` without a session with ``org.bluez.Error.Failed``.
- A device appears (``InterfacesAdded`` of ``org.bluez.Device1``) the first time a discovery
  sees it advertise, and then re-emits ``RSSI`` every advertising interval while discovery
  runs and it is not connected (bleak's scanner only reports devices whose properties change).
- ``Device1.Connect`` exports the GATT objects, then sets ``Connected`` and then
  ``ServicesResolved``. A disconnect (asked for, or a simulated link loss) clears
  ``ServicesResolved`` and ``Connected`` and removes the GATT objects, as BlueZ does for a
  device that is not bonded, so each connection resolves services afresh.
- A notification is a ``PropertiesChanged`` of ``GattCharacteristic1.Value``, sent only while
  ``Notifying`` (``StartNotify``); a disconnect resets ``Notifying``.

References
----------
.. [1] BlueZ D-Bus API: ``doc/org.bluez.Adapter.rst``, ``org.bluez.Device.rst``,
   ``org.bluez.GattCharacteristic.rst`` (BlueZ 5.66).
"""

# No `from __future__ import annotations`: dbus-fast reads `-> None` as an object here.
import asyncio
import logging
import random
from typing import TYPE_CHECKING, Annotated

from dbus_fast import DBusError, Message, Variant
from dbus_fast.annotations import (
    DBusBool,
    DBusBytes,
    DBusDict,
    DBusInt16,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
    DBusUInt16,
)
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

if TYPE_CHECKING:
    from dbus_fast.aio import MessageBus

    from tests.fake_bluez.devices import SimDevice

logger = logging.getLogger(__name__)

ADAPTER_PATH = "/org/bluez/hci0"
ADAPTER_ADDRESS = "00:1A:7D:DA:71:13"

ADVERTISING_INTERVAL_S = 0.1
"""How often a device that is not connected re-emits ``RSSI`` during discovery (real straps
advertise every 20 ms to 1 s)."""

CONNECT_LATENCY_S = 0.02
"""Delay between ``Connect`` and ``Connected`` (a real LE connection takes 50-500 ms)."""

DEFAULT_MTU = 247
"""ATT MTU reported on characteristics (BlueZ >= 5.62 ``MTU`` property); a Polar H10 negotiates
232 so that one 73-sample ECG frame (229 bytes) fits in one notification."""

ERROR_FAILED = "org.bluez.Error.Failed"
ERROR_IN_PROGRESS = "org.bluez.Error.InProgress"
ERROR_NOT_CONNECTED = "org.bluez.Error.NotConnected"
ERROR_NOT_PERMITTED = "org.bluez.Error.NotPermitted"
ERROR_NOT_SUPPORTED = "org.bluez.Error.NotSupported"
ERROR_DOES_NOT_EXIST = "org.bluez.Error.DoesNotExist"

DBusStrList = Annotated[list[str], DBusSignature("as")]
DBusManufacturerData = Annotated[dict[int, Variant], DBusSignature("a{qv}")]


def device_path(address: str) -> str:
    """Return BlueZ's object path for a device address (``/org/bluez/hci0/dev_AA_BB_...``)."""
    return f"{ADAPTER_PATH}/dev_{address.upper().replace(':', '_')}"


class GattCharacteristic(ServiceInterface):
    """``org.bluez.GattCharacteristic1`` of a simulated device."""

    def __init__(
        self, path: str, uuid: str, service_path: str, flags: tuple[str, ...], owner: "FakeDevice"
    ) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self.path = path
        self.uuid = uuid
        self.service_path = service_path
        self.flags = flags
        self.owner = owner
        self.value = b""
        self.notifying = False

    @dbus_property(PropertyAccess.READ, name="UUID")
    def uuid_prop(self) -> DBusStr:
        return self.uuid

    @dbus_property(PropertyAccess.READ, name="Service")
    def service_prop(self) -> DBusObjectPath:
        return self.service_path

    @dbus_property(PropertyAccess.READ, name="Value")
    def value_prop(self) -> DBusBytes:
        return self.value

    @dbus_property(PropertyAccess.READ, name="Notifying")
    def notifying_prop(self) -> DBusBool:
        return self.notifying

    @dbus_property(PropertyAccess.READ, name="Flags")
    def flags_prop(self) -> DBusStrList:
        return list(self.flags)

    @dbus_property(PropertyAccess.READ, name="MTU")
    def mtu_prop(self) -> DBusUInt16:
        return DEFAULT_MTU

    @dbus_method(name="ReadValue")
    def read_value(self, options: DBusDict) -> DBusBytes:
        del options
        if "read" not in self.flags:
            raise DBusError(ERROR_NOT_PERMITTED, "Read not permitted")
        self.value = self.owner.sim.read(self.uuid)
        return self.value

    @dbus_method(name="WriteValue")
    def write_value(self, value: DBusBytes, options: DBusDict) -> None:
        del options
        if "write" not in self.flags and "write-without-response" not in self.flags:
            raise DBusError(ERROR_NOT_PERMITTED, "Write not permitted")
        self.owner.sim.write(self.uuid, bytes(value))

    @dbus_method(name="StartNotify")
    def start_notify(self) -> None:
        if "notify" not in self.flags and "indicate" not in self.flags:
            raise DBusError(ERROR_NOT_SUPPORTED, "Operation is not supported")
        self.owner.sim.stats["start_notify_calls"] += 1
        if self.notifying:
            # BlueZ answers success to a client already subscribed (gatt-client.c)
            self.owner.sim.stats["start_notify_repeated"] += 1
            return
        self.notifying = True
        self.emit_properties_changed({"Notifying": True})

    @dbus_method(name="StopNotify")
    def stop_notify(self) -> None:
        if not self.notifying:
            raise DBusError(ERROR_FAILED, "No notify session started")
        self.notifying = False
        self.emit_properties_changed({"Notifying": False})

    def send(self, value: bytes) -> bool:
        """Notify ``value`` if a client subscribed; return whether it was sent."""
        self.value = value
        if not self.notifying:
            return False
        self.emit_properties_changed({"Value": value})
        return True


class GattService(ServiceInterface):
    """``org.bluez.GattService1`` of a simulated device."""

    def __init__(self, uuid: str, device: str) -> None:
        super().__init__("org.bluez.GattService1")
        self.uuid = uuid
        self.device = device

    @dbus_property(PropertyAccess.READ, name="UUID")
    def uuid_prop(self) -> DBusStr:
        return self.uuid

    @dbus_property(PropertyAccess.READ, name="Device")
    def device_prop(self) -> DBusObjectPath:
        return self.device

    @dbus_property(PropertyAccess.READ, name="Primary")
    def primary_prop(self) -> DBusBool:
        return True


class FakeDevice(ServiceInterface):
    """``org.bluez.Device1``: the BlueZ side of one simulated peripheral."""

    def __init__(self, fake: "FakeBluez", sim: "SimDevice") -> None:
        super().__init__("org.bluez.Device1")
        self.fake = fake
        self.sim = sim
        self.path = device_path(sim.address)
        self.connected = False
        self.services_resolved = False
        self.rssi = sim.rssi_dbm
        self.exported = False
        self.gatt: list[tuple[str, ServiceInterface]] = []
        self.chars: dict[str, GattCharacteristic] = {}

    @dbus_property(PropertyAccess.READ, name="Address")
    def address_prop(self) -> DBusStr:
        return self.sim.address

    @dbus_property(PropertyAccess.READ, name="AddressType")
    def address_type_prop(self) -> DBusStr:
        return "public"

    @dbus_property(PropertyAccess.READ, name="Name")
    def name_prop(self) -> DBusStr:
        return self.sim.name

    @dbus_property(PropertyAccess.READ, name="Alias")
    def alias_prop(self) -> DBusStr:
        return self.sim.name

    @dbus_property(PropertyAccess.READ, name="Adapter")
    def adapter_prop(self) -> DBusObjectPath:
        return ADAPTER_PATH

    @dbus_property(PropertyAccess.READ, name="Connected")
    def connected_prop(self) -> DBusBool:
        return self.connected

    @dbus_property(PropertyAccess.READ, name="ServicesResolved")
    def services_resolved_prop(self) -> DBusBool:
        return self.services_resolved

    @dbus_property(PropertyAccess.READ, name="Paired")
    def paired_prop(self) -> DBusBool:
        return False

    @dbus_property(PropertyAccess.READ, name="Bonded")
    def bonded_prop(self) -> DBusBool:
        return False

    @dbus_property(PropertyAccess.READ, name="Trusted")
    def trusted_prop(self) -> DBusBool:
        return False

    @dbus_property(PropertyAccess.READ, name="Blocked")
    def blocked_prop(self) -> DBusBool:
        return False

    @dbus_property(PropertyAccess.READ, name="LegacyPairing")
    def legacy_pairing_prop(self) -> DBusBool:
        return False

    @dbus_property(PropertyAccess.READ, name="RSSI")
    def rssi_prop(self) -> DBusInt16:
        return self.rssi

    @dbus_property(PropertyAccess.READ, name="UUIDs")
    def uuids_prop(self) -> DBusStrList:
        return list(self.sim.advertised_uuids)

    @dbus_property(PropertyAccess.READ, name="ManufacturerData")
    def manufacturer_data_prop(self) -> DBusManufacturerData:
        return {cid: Variant("ay", data) for cid, data in self.sim.manufacturer_data.items()}

    @dbus_method(name="Connect")
    async def connect(self) -> None:
        if self.connected:
            return
        await asyncio.sleep(CONNECT_LATENCY_S)
        if self.gatt:  # a concurrent Connect finished first
            return
        self._export_gatt()
        self.connected = True
        self.emit_properties_changed({"Connected": True})
        self.services_resolved = True
        self.emit_properties_changed({"ServicesResolved": True})
        self.sim.stats["connects"] += 1
        self.sim.on_connect()
        logger.info("%s connected", self.sim.address)

    @dbus_method(name="Disconnect")
    def disconnect(self) -> None:
        self.drop("disconnect requested")

    @dbus_method(name="Pair")
    def pair(self) -> None:
        raise DBusError(ERROR_NOT_SUPPORTED, "pairing is not simulated")

    def drop(self, reason: str) -> None:
        """End the link (asked for by the client, or a simulated loss of the radio link)."""
        if not self.connected:
            return
        for char in self.chars.values():
            char.notifying = False
        self.services_resolved = False
        self.emit_properties_changed({"ServicesResolved": False})
        self.connected = False
        self.emit_properties_changed({"Connected": False})
        self._unexport_gatt()
        self.sim.stats["disconnects"] += 1
        self.sim.on_disconnect()
        logger.info("%s disconnected (%s)", self.sim.address, reason)

    def advertise(self) -> None:
        """One advertisement seen by a running discovery."""
        if not self.exported:
            self.fake.bus.export(self.path, self)
            self.exported = True
            return
        # RSSI jitters by a few dB between advertisements, as a real radio's does
        self.rssi = self.sim.rssi_dbm + random.randint(-3, 3)
        self.emit_properties_changed({"RSSI": self.rssi})

    def notify(self, char_uuid: str, value: bytes) -> bool:
        """Notify ``value`` on a characteristic; return whether a subscribed client got it."""
        char = self.chars.get(char_uuid)
        if not self.connected or char is None:
            return False
        return char.send(value)

    def is_notifying(self, char_uuid: str) -> bool:
        """Whether a client has subscribed to notifications of ``char_uuid``."""
        char = self.chars.get(char_uuid)
        return self.connected and char is not None and char.notifying

    def _export_gatt(self) -> None:
        handle = 0x000A
        for service_def in self.sim.services:
            service_path = f"{self.path}/service{handle:04x}"
            service = GattService(service_def.uuid, self.path)
            self.fake.bus.export(service_path, service)
            self.gatt.append((service_path, service))
            handle += 1
            for char_def in service_def.chars:
                char_path = f"{service_path}/char{handle:04x}"
                char = GattCharacteristic(
                    char_path, char_def.uuid, service_path, char_def.flags, self
                )
                char.value = self.sim.read(char_def.uuid) if "read" in char_def.flags else b""
                self.fake.bus.export(char_path, char)
                self.gatt.append((char_path, char))
                self.chars[char_def.uuid] = char
                handle += 3  # declaration, value, CCCD
            handle += 1

    def _unexport_gatt(self) -> None:
        for path, interface in reversed(self.gatt):
            self.fake.bus.unexport(path, interface)
        self.gatt.clear()
        self.chars.clear()


class FakeAdapter(ServiceInterface):
    """``org.bluez.Adapter1`` at ``/org/bluez/hci0``."""

    def __init__(self, fake: "FakeBluez") -> None:
        super().__init__("org.bluez.Adapter1")
        self.fake = fake
        self.sessions: set[str] = set()
        self.filters: dict[str, dict[str, Variant]] = {}

    @dbus_property(PropertyAccess.READ, name="Address")
    def address_prop(self) -> DBusStr:
        return ADAPTER_ADDRESS

    @dbus_property(PropertyAccess.READ, name="AddressType")
    def address_type_prop(self) -> DBusStr:
        return "public"

    @dbus_property(PropertyAccess.READ, name="Name")
    def name_prop(self) -> DBusStr:
        return "bedside-fake"

    @dbus_property(PropertyAccess.READ, name="Alias")
    def alias_prop(self) -> DBusStr:
        return "bedside-fake"

    @dbus_property(PropertyAccess.READ, name="Powered")
    def powered_prop(self) -> DBusBool:
        return True

    @dbus_property(PropertyAccess.READ, name="Discoverable")
    def discoverable_prop(self) -> DBusBool:
        return False

    @dbus_property(PropertyAccess.READ, name="Pairable")
    def pairable_prop(self) -> DBusBool:
        return False

    @dbus_property(PropertyAccess.READ, name="Discovering")
    def discovering_prop(self) -> DBusBool:
        return bool(self.sessions)

    @dbus_property(PropertyAccess.READ, name="Roles")
    def roles_prop(self) -> DBusStrList:
        return ["central", "peripheral"]

    @dbus_property(PropertyAccess.READ, name="UUIDs")
    def uuids_prop(self) -> DBusStrList:
        return []

    @dbus_method(name="SetDiscoveryFilter")
    def set_discovery_filter(self, filters: DBusDict) -> None:
        sender = self.fake.current_sender
        if filters:
            self.filters[sender] = dict(filters)
        else:
            self.filters.pop(sender, None)

    @dbus_method(name="StartDiscovery")
    def start_discovery(self) -> None:
        sender = self.fake.current_sender
        if sender in self.sessions:
            raise DBusError(ERROR_IN_PROGRESS, "Operation already in progress")
        was_discovering = bool(self.sessions)
        self.sessions.add(sender)
        if not was_discovering:
            self.emit_properties_changed({"Discovering": True})
            self.fake.start_advertising()

    @dbus_method(name="StopDiscovery")
    def stop_discovery(self) -> None:
        sender = self.fake.current_sender
        if sender not in self.sessions:
            raise DBusError(ERROR_FAILED, "No discovery started")
        self.sessions.discard(sender)
        if not self.sessions:
            self.emit_properties_changed({"Discovering": False})
            self.fake.stop_advertising()

    @dbus_method(name="RemoveDevice")
    def remove_device(self, device: DBusObjectPath) -> None:
        for fake_device in self.fake.devices.values():
            if fake_device.path == device:
                if fake_device.connected:
                    fake_device.drop("device removed")
                if fake_device.exported:
                    self.fake.bus.unexport(fake_device.path, fake_device)
                    fake_device.exported = False
                return
        raise DBusError(ERROR_DOES_NOT_EXIST, "Does Not Exist")

    @dbus_method(name="GetDiscoveryFilters")
    def get_discovery_filters(self) -> DBusStrList:
        return ["UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData", "Discoverable"]

    def forget_sender(self, sender: str) -> None:
        """End the discovery session of a client that left the bus (BlueZ watches NameOwner)."""
        self.filters.pop(sender, None)
        if sender in self.sessions:
            self.sessions.discard(sender)
            if not self.sessions:
                self.emit_properties_changed({"Discovering": False})
                self.fake.stop_advertising()


class FakeBluez:
    """The fake BlueZ daemon: one adapter and the simulated devices, on one bus connection.

    Parameters
    ----------
    bus : MessageBus
        A connected dbus-fast bus (the private system bus); the caller requests ``org.bluez``.
    sims : list[SimDevice]
        The simulated peripherals.
    """

    def __init__(self, bus: "MessageBus", sims: list["SimDevice"]) -> None:
        self.bus = bus
        self.adapter = FakeAdapter(self)
        self.devices: dict[str, FakeDevice] = {}
        self.current_sender = ""
        self._advertiser: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        for sim in sims:
            fake_device = FakeDevice(self, sim)
            sim.attach(fake_device)
            self.devices[sim.address.upper()] = fake_device
        bus.add_message_handler(self._track_sender)
        bus.export(ADAPTER_PATH, self.adapter)

    def _track_sender(self, message: Message) -> bool | None:
        """Remember who sent the method call being dispatched (discovery is per sender)."""
        if message.sender and message.member in {
            "StartDiscovery",
            "StopDiscovery",
            "SetDiscoveryFilter",
        }:
            self.current_sender = message.sender
        if (
            message.member == "NameOwnerChanged"
            and message.body
            and len(message.body) == 3
            and message.body[2] == ""
        ):
            self.adapter.forget_sender(str(message.body[0]))
        return None

    def start(self) -> None:
        """Start each device's own clock (its stream runs whether or not anyone listens)."""
        for fake_device in self.devices.values():
            self._tasks.append(asyncio.create_task(fake_device.sim.run()))

    async def watch_name_owners(self) -> None:
        """Subscribe to ``NameOwnerChanged`` so a client that dies loses its discovery."""
        reply = await self.bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=["type='signal',interface='org.freedesktop.DBus',member='NameOwnerChanged'"],
            )
        )
        del reply

    def start_advertising(self) -> None:
        """Start re-emitting advertisements (discovery went from idle to running)."""
        if self._advertiser is None or self._advertiser.done():
            self._advertiser = asyncio.create_task(self._advertise())

    def stop_advertising(self) -> None:
        """Stop advertising (the last discovery session ended)."""
        if self._advertiser is not None:
            self._advertiser.cancel()
            self._advertiser = None

    async def _advertise(self) -> None:
        while True:
            for fake_device in self.devices.values():
                if not fake_device.connected and fake_device.sim.advertising:
                    fake_device.advertise()
            await asyncio.sleep(ADVERTISING_INTERVAL_S)

    def device(self, address: str) -> "FakeDevice":
        """Return the device with ``address``.

        Raises
        ------
        DBusError
            ``org.bluez.Error.DoesNotExist`` if there is none.
        """
        try:
            return self.devices[address.upper()]
        except KeyError:
            raise DBusError(ERROR_DOES_NOT_EXIST, f"no simulated device {address}") from None

    async def stop(self) -> None:
        """Cancel the device clocks and the advertiser."""
        self.stop_advertising()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                logger.exception("simulated device failed")
