"""Shared wire helpers for the codecs: a bounds-checked little-endian reader and SIG UUIDs.

Every multi-octet field of the Bluetooth SIG characteristics and of Polar PMD is little-endian
(fields are listed "LSO to MSO" throughout the GATT Specification Supplement v5; Polar's
Measurement Data Specification and SDK read every field little-endian). :class:`ByteReader`
reads such fields and turns every short read into
:class:`~firmware_bridge.errors.FrameDecodeError` carrying the byte offset, so that decoders
never slice past the end of a notification and never raise ``IndexError``/``struct.error``.
"""

from __future__ import annotations

from firmware_bridge.errors import FrameDecodeError

# Bluetooth Base UUID (Core Specification v5.3, Vol 3, Part B, §2.5.1): a 16-bit assigned
# number ``0xNNNN`` stands for ``0000NNNN-0000-1000-8000-00805F9B34FB``.
RawValue = bytes | bytearray | memoryview
"""What a decoder accepts: ``bytes``, or the ``bytearray`` bleak hands to notify callbacks."""

_SIG_BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"
_UINT16_MAX = 0xFFFF


def uuid16(n: int) -> str:
    """Expand a 16-bit SIG assigned number to its full 128-bit UUID string.

    Parameters
    ----------
    n : int
        The assigned number, ``0 <= n <= 0xFFFF`` (e.g. ``0x2A37`` for Heart Rate Measurement).

    Returns
    -------
    str
        The lower-case 128-bit UUID on the Bluetooth Base UUID, e.g.
        ``"00002a37-0000-1000-8000-00805f9b34fb"`` (the form bleak reports).

    Raises
    ------
    ValueError
        If ``n`` is not a 16-bit unsigned integer.

    References
    ----------
    .. [1] Bluetooth Core Specification v5.3, Vol 3, Part B, §2.5.1 "UUID".
    """
    if not 0 <= n <= _UINT16_MAX:
        msg = f"a 16-bit UUID must be in 0..0xFFFF, got {n:#x}"
        raise ValueError(msg)
    return f"0000{n:04x}{_SIG_BASE_UUID_SUFFIX}"


class ByteReader:
    """Sequential, bounds-checked reader of little-endian fields.

    Parameters
    ----------
    data : bytes | bytearray | memoryview
        The raw characteristic value, as received (copied to ``bytes``).
    what : str
        Name of the characteristic, used in error messages (``"Heart Rate Measurement"``).

    Notes
    -----
    Every ``read_*`` method raises :class:`~firmware_bridge.errors.FrameDecodeError` when fewer
    octets remain than the field needs; the error's ``offset`` is the start of that field.
    """

    __slots__ = ("_data", "_pos", "_what")

    def __init__(self, data: RawValue, what: str) -> None:
        self._data = bytes(data)
        self._pos = 0
        self._what = what

    @property
    def data(self) -> bytes:
        """The whole raw value being read."""
        return self._data

    @property
    def offset(self) -> int:
        """Offset (octets) of the next unread octet."""
        return self._pos

    @property
    def remaining(self) -> int:
        """Number of octets not yet read."""
        return len(self._data) - self._pos

    def error(self, message: str, offset: int | None = None) -> FrameDecodeError:
        """Build (not raise) a decode error for this value.

        Parameters
        ----------
        message : str
            What is wrong, without the characteristic name (it is prefixed).
        offset : int | None
            Octet offset of the faulty field; defaults to the current position.

        Returns
        -------
        FrameDecodeError
            The error to raise, carrying ``raw`` and ``offset``.
        """
        at = self._pos if offset is None else offset
        return FrameDecodeError(f"{self._what}: {message}", self._data, at)

    def read_bytes(self, n: int, field: str) -> bytes:
        """Read ``n`` octets.

        Raises
        ------
        FrameDecodeError
            If fewer than ``n`` octets remain.
        """
        if self.remaining < n:
            msg = f"too short for {field} ({n} octets needed, {self.remaining} left)"
            raise self.error(msg)
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def read_uint(self, n: int, field: str) -> int:
        """Read an ``n``-octet unsigned little-endian integer.

        Raises
        ------
        FrameDecodeError
            If fewer than ``n`` octets remain.
        """
        return int.from_bytes(self.read_bytes(n, field), "little", signed=False)

    def read_sint(self, n: int, field: str) -> int:
        """Read an ``n``-octet two's-complement signed little-endian integer.

        Raises
        ------
        FrameDecodeError
            If fewer than ``n`` octets remain.
        """
        return int.from_bytes(self.read_bytes(n, field), "little", signed=True)

    def read_rest(self) -> bytes:
        """Read every remaining octet (possibly none)."""
        chunk = self._data[self._pos :]
        self._pos = len(self._data)
        return chunk

    def expect_end(self) -> None:
        """Check that every octet has been consumed.

        Raises
        ------
        FrameDecodeError
            If octets remain that the layout does not define (trailing garbage).
        """
        if self.remaining:
            msg = f"{self.remaining} unexpected trailing octet(s)"
            raise self.error(msg)
