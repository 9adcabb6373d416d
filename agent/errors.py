"""Errors raised by the agent; all derive from :class:`BedsideError`."""

from __future__ import annotations

from firmware_bridge.errors import BedsideError

__all__ = [
    "BedsideError",
    "BrokerUnreachableError",
    "ConfigError",
    "InsufficientDataError",
]


class ConfigError(BedsideError):
    """A configuration file or value is invalid.

    Attributes
    ----------
    field : str
        Dotted path of the offending field (``alarms.hr_high_bpm``), or ``""`` for file errors.
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class BrokerUnreachableError(BedsideError, ConnectionError):
    """The MQTT broker could not be reached when the agent started.

    Attributes
    ----------
    url : str
        The broker URL that was tried.
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach MQTT broker {url}: {reason}")
        self.url = url
        self.reason = reason


class InsufficientDataError(BedsideError, ValueError):
    """An input is too short for the requested computation."""
