"""The bedside agent: asyncio runtime, streaming DSP, alarms, MQTT publishing and CLI."""

__version__ = "0.1.0"
