"""A fake BlueZ on a private D-Bus, with simulated wearables, for testing BLE code without a radio.

Unmodified bleak (3.1.0) talks to it exactly as to ``bluetoothd``: it scans, connects, resolves
services, reads, writes and receives notifications. Pieces:

- :mod:`~tests.fake_bluez.bus`: a private ``dbus-daemon`` (Debian package ``dbus-daemon``);
- :mod:`~tests.fake_bluez.bluez`: ``org.bluez`` (Adapter1, Device1, GattService1,
  GattCharacteristic1) with BlueZ's behaviour where bleak depends on it;
- :mod:`~tests.fake_bluez.devices`: Polar H10 (PMD ECG from a WFDB record), Heart Rate
  Service strap (RR from annotations), pulse oximeter, thermometer;
- :mod:`~tests.fake_bluez.wire`: the simulated firmware's encoders, written apart from
  :mod:`firmware_bridge.codecs` on purpose;
- :mod:`~tests.fake_bluez.control`: faults on command (drop, silence, malformed frames,
  contact, battery, SpO2, temperature, advertising);
- :mod:`~tests.fake_bluez.fixtures`: the ``fake_bluez`` pytest fixture;
- ``python -m tests.fake_bluez --device h10 --record ../shared/data/mitdb/232 --speed 10``:
  a standalone fake for manual runs and the demo (prints ``DBUS_SYSTEM_BUS_ADDRESS=...``).
"""
