"""Device configuration models: which wearables to follow and how (pydantic, no I/O).

Kept apart from :mod:`firmware_bridge.transports.ble` so that the agent's configuration tree
(:mod:`agent.config`) can embed them without importing bleak, its D-Bus backend or asyncio:
validating a config file, or running from a WFDB record, needs no Bluetooth stack.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from firmware_bridge.limits import BATTERY_LOW_PCT

__all__ = ["BleDeviceConfig", "BleKind"]

BleKind = Literal["polar_h10", "hrs", "plx", "thermometer"]
"""Device kinds the BLE transport drives."""


class BleDeviceConfig(BaseModel):
    """One BLE wearable to follow (embedded in the agent's config tree).

    Exactly one of ``address`` and ``name`` identifies the device.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: BleKind = Field(description="What the device is and which services to use.")
    address: str | None = Field(
        default=None,
        pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$",
        description="Bluetooth address, AA:BB:CC:DD:EE:FF.",
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=248,  # Core spec: a local name is at most 248 octets
        description="Advertised local name (e.g. 'Polar H10 ABCD1234').",
    )
    label: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Id used in frames, stats and logs; default: the name, else the address.",
    )
    silence_s: float = Field(
        default=5.0,
        gt=0.0,
        le=600.0,
        description="Seconds without a decoded measurement before reconnecting (watchdog).",
    )
    battery_low_pct: int = Field(
        default=BATTERY_LOW_PCT, ge=0, le=100, description="Battery level (%) reported as low."
    )
    scan_timeout_s: float = Field(
        default=10.0, gt=0.0, le=120.0, description="Scan time per connection attempt, s."
    )
    connect_attempts: int = Field(
        default=3, ge=1, le=10, description="Attempts per establish_connection call."
    )
    reconnect_initial_s: float = Field(
        default=0.5, gt=0.0, le=60.0, description="First reconnection backoff, s."
    )
    reconnect_max_s: float = Field(
        default=10.0, gt=0.0, le=300.0, description="Reconnection backoff cap, s."
    )
    emit_rr: bool | None = Field(
        default=None,
        description="Yield RrIntervals from 0x2A37; default: yes for 'hrs', no for 'polar_h10'"
        " (whose beats come from the ECG).",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.address is None) == (self.name is None):
            msg = "give exactly one of 'address' and 'name'"
            raise ValueError(msg)
        if self.reconnect_initial_s > self.reconnect_max_s:
            msg = "reconnect_initial_s must not exceed reconnect_max_s"
            raise ValueError(msg)
        return self

    @property
    def device_id(self) -> str:
        """The id frames and stats carry: ``label``, else ``name``, else ``address``."""
        return self.label or self.name or self.address or ""

    @property
    def rr_enabled(self) -> bool:
        """Whether RR intervals from 0x2A37 are yielded."""
        return self.emit_rr if self.emit_rr is not None else self.kind == "hrs"
