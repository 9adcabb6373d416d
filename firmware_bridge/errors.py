"""The project's root exception and the errors raised by sources and codecs.

`BedsideError` lives here, in the lowest layer, because `firmware_bridge` never imports
`agent`; `agent.errors` re-exports it so that every project error derives from one root.
"""

from __future__ import annotations


class BedsideError(Exception):
    """Root of every error raised on purpose by bedside."""


class SourceError(BedsideError):
    """A source cannot be opened or cannot go on (missing record, unreadable file)."""


class RecordNotFoundError(SourceError, FileNotFoundError):
    """A WFDB record (its ``.hea`` header) does not exist.

    Attributes
    ----------
    record : str
        The record path as given, without extension.
    """

    def __init__(self, record: str) -> None:
        super().__init__(f"WFDB record not found: {record} (no {record}.hea)")
        self.record = record


class RecordReadError(SourceError):
    """A WFDB record exists but cannot be read (truncated or corrupt signal file).

    Attributes
    ----------
    record : str
        The record path as given, without extension.
    """

    def __init__(self, record: str, reason: str) -> None:
        super().__init__(f"cannot read WFDB record {record}: {reason}")
        self.record = record
        self.reason = reason


class FrameDecodeError(BedsideError, ValueError):
    """A byte string is not a valid frame of the expected kind.

    Attributes
    ----------
    raw : bytes
        The offending bytes, as received.
    offset : int
        Byte offset at which decoding failed.
    """

    def __init__(self, message: str, raw: bytes, offset: int = 0) -> None:
        super().__init__(f"{message} (offset {offset}, {len(raw)} bytes: {raw[:32].hex()})")
        self.raw = raw
        self.offset = offset
