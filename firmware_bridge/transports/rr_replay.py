"""Replay RR intervals as a strap with no waveform would send them (BLE Heart Rate Service).

Many wearables send only RR intervals: the Heart Rate Measurement characteristic (0x2A37)
carries, about once a second, the RR intervals that ended since the last notification. This
source turns a recording of beats into that stream, so the agent's RR-only path (heart rate,
pauses, atrial fibrillation) can be run and measured end to end:

- a **WFDB beat-annotation file** (``record`` + ``annotations="qrs"``, e.g. afdb's ``.qrs``
  files, which come without signals); the beat times are the annotated beats' samples,
  read with ``wfdb.rdann``;
- a **CSV of RR intervals in ms**: one interval a row, in a column named ``rr_ms`` (or the
  only column); the first R-peak is at stream time 0.

Bad input is refused with one line, never analysed silently: an annotation file without the
WFDB end-of-file marker (truncated in a copy) and a CSV value outside the RR plausibility gate
(:data:`~firmware_bridge.limits.RR_MIN_PLAUSIBLE_MS` ..
:data:`~firmware_bridge.limits.RR_MAX_PLAUSIBLE_MS`, 100 ms .. 30 s, the gate the BLE transport
applies to 0x2A37 values) raise :class:`RecordReadError` naming the file and line. A CSV is typed
or exported by hand, so an out-of-range value is an entry error, and the intervals after it have
no trustworthy stream time: the file is refused rather than replayed with a guessed timeline.
Intervals between *annotated* beats are not gated: their times are the reference annotation's
(afdb ``.qrs`` has 8 intervals under 100 ms in 1.2 million; mitdb 207 ``.atr`` a 100 s gap over an
unreadable segment), and the outputs recorded from them stay comparable.

Frames are :class:`~firmware_bridge.frames.RrIntervals`: every ``frame_s`` seconds of stream
time, the intervals whose R-peak fell in that period, stamped with the stream time of the last
one (as a strap does; Bluetooth SIG Heart Rate Service 1.0, 3.1.1.5 "RR-Interval").
"""

from __future__ import annotations

import csv
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import numpy as np
import wfdb
from numpy.typing import NDArray

from firmware_bridge.errors import RecordNotFoundError, RecordReadError
from firmware_bridge.frames import DeviceEvent, DeviceEventKind, Frame, RrIntervals
from firmware_bridge.limits import RR_MAX_PLAUSIBLE_MS, RR_MIN_PLAUSIBLE_MS
from firmware_bridge.transports.clock import Clock, MonotonicClock, StreamPacer, validate_pacing

logger = logging.getLogger(__name__)

BEAT_SYMBOLS: Final = frozenset("NLRBAaJSVrFejnE/fQ?")
"""WFDB annotation codes that mark a beat (PhysioNet ``ecgcodes``, ANSI/AAMI EC57 Table 1)."""

_PACER_HZ: Final = 1000.0  # RR streams are paced on a 1 ms grid

_ANNOTATION_EOF: Final = b"\x00\x00"
"""End of a WFDB (MIT-format) annotation file: a byte pair with annotation code 0 and time 0.

Every annotation file ends with it (PhysioNet WFDB ``annot(5)``, "MIT format": "the end of the
file is marked by a pair of null bytes"; ``wfdb.wrann`` writes it too). ``wfdb.rdann`` does not
check it: it drops the last byte pair unread, so a copy cut at an even length loses its tail
without a word and one cut at an odd length fails with a numpy reshape message.
"""


def check_annotation_complete(path: Path) -> None:
    """Refuse a WFDB annotation file that does not end with the end-of-file marker.

    Parameters
    ----------
    path
        The annotation file (``04015.qrs``).

    Raises
    ------
    RecordReadError
        If the file has an odd number of bytes or does not end with the two null bytes of
        :data:`_ANNOTATION_EOF` (WFDB ``annot(5)``): it was truncated.
    OSError
        If it cannot be read.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        if size >= len(_ANNOTATION_EOF):
            fh.seek(size - len(_ANNOTATION_EOF))
        tail = fh.read()
    if size % 2 or tail != _ANNOTATION_EOF:
        raise RecordReadError(
            str(path),
            f"annotation file is truncated ({size} bytes, no WFDB end-of-file marker)",
        )


def read_rr_csv(path: Path) -> NDArray[np.float64]:
    """Read RR intervals (ms) from a CSV file.

    The file has a header row; the intervals are in the ``rr_ms`` column, or in the only
    column when there is one.

    Returns
    -------
    NDArray[np.float64]
        Shape ``(n_intervals,)``, RR intervals in ms.

    Raises
    ------
    RecordNotFoundError
        If the file does not exist.
    RecordReadError
        If there is no ``rr_ms`` column, a value is not a number or lies outside the
        plausibility gate ``RR_MIN_PLAUSIBLE_MS`` .. ``RR_MAX_PLAUSIBLE_MS`` (100 ms .. 30 s;
        :mod:`firmware_bridge.limits`; the line is named), or the file holds no interval.
    """
    if not path.is_file():
        raise RecordNotFoundError(str(path))
    values: list[float] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        column = "rr_ms" if "rr_ms" in fields else (fields[0] if len(fields) == 1 else None)
        if column is None:
            raise RecordReadError(str(path), f"no rr_ms column (columns: {', '.join(fields)})")
        for line, row in enumerate(reader, start=2):
            text = (row.get(column) or "").strip()
            try:
                value = float(text)
            except ValueError:
                raise RecordReadError(str(path), f"line {line}: {text!r} is not a number") from None
            if not (np.isfinite(value) and value > 0):
                raise RecordReadError(str(path), f"line {line}: RR {text} ms is not positive")
            if not RR_MIN_PLAUSIBLE_MS <= value <= RR_MAX_PLAUSIBLE_MS:
                raise RecordReadError(
                    str(path),
                    f"line {line}: RR {text} ms is not plausible"
                    f" (accepted {RR_MIN_PLAUSIBLE_MS:g}-{RR_MAX_PLAUSIBLE_MS:g} ms)",
                )
            values.append(value)
    if not values:
        raise RecordReadError(str(path), "no RR intervals")
    return np.asarray(values, dtype=np.float64)


def read_beat_annotations(record: str | Path, extension: str) -> tuple[NDArray[np.int64], float]:
    """Read the beat samples of a WFDB annotation file.

    Parameters
    ----------
    record
        Record path without extension (``../shared/data/afdb/04015``).
    extension
        Annotation file extension (``qrs``, ``atr``).

    Returns
    -------
    tuple[NDArray[np.int64], float]
        Beat sample indices (sorted, beats only: non-beat annotations such as rhythm changes
        are skipped) and the annotation's sampling rate, Hz.

    Raises
    ------
    RecordNotFoundError
        If the annotation file does not exist.
    RecordReadError
        If it is truncated (:func:`check_annotation_complete`), cannot be parsed or holds
        fewer than two beats.
    """
    base = Path(record)
    if base.suffix in {".hea", ".dat", f".{extension}"}:
        base = base.with_suffix("")
    path = base.with_name(f"{base.name}.{extension}")
    if not path.is_file():
        raise RecordNotFoundError(str(path))
    try:
        check_annotation_complete(path)
        ann = wfdb.rdann(str(base), extension)
    except (OSError, ValueError, IndexError, KeyError, TypeError, EOFError) as err:
        raise RecordReadError(str(path), str(err)) from err
    symbols = np.asarray(ann.symbol)
    samples = np.asarray(ann.sample, dtype=np.int64)
    is_beat = np.fromiter((s in BEAT_SYMBOLS for s in symbols), dtype=bool, count=len(symbols))
    beats = np.sort(samples[is_beat])
    fs = float(ann.fs) if ann.fs else 0.0
    if not fs:
        try:
            fs = float(wfdb.rdheader(str(base)).fs)
        except (OSError, ValueError) as err:
            raise RecordReadError(str(path), f"no sampling rate: {err}") from err
    if len(beats) < 2:
        raise RecordReadError(str(path), f"{len(beats)} beat annotations, need at least 2")
    return beats, fs


class RrReplaySource:
    """A recording of beats, replayed as Heart-Rate-Service RR notifications.

    Parameters
    ----------
    path
        WFDB record path without extension (with ``annotations``), or a CSV file of RR
        intervals in ms.
    annotations
        WFDB annotation extension to read beats from (``"qrs"``), or None for a CSV file.
    speed
        Multiple of real time; None = as fast as possible.
    frame_s
        Stream time covered by each notification, s (a strap notifies about once a second).
    clock
        Injected clock (tests).

    Raises
    ------
    RecordNotFoundError, RecordReadError
        Eagerly, if the input does not exist or cannot be read.
    ValueError
        If ``speed`` or ``frame_s`` is not positive.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        annotations: str | None = None,
        speed: float | None = 1.0,
        frame_s: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        validate_pacing(speed, frame_s)
        self._speed = speed
        self._frame_s = frame_s
        self._clock: Clock = clock or MonotonicClock()
        base = Path(path)
        if annotations is None:
            self._rr_ms = read_rr_csv(base)
            self._beat_s = np.concatenate([[0.0], np.cumsum(self._rr_ms) / 1000.0])
            self._fs_hz = 1000.0
            self._name = base.stem
        else:
            samples, fs = read_beat_annotations(base, annotations)
            self._beat_s = samples / fs
            self._rr_ms = np.diff(samples) / fs * 1000.0
            self._fs_hz = fs
            self._name = base.name
        self._annotations = annotations

    @property
    def record_name(self) -> str:
        """Name of the record or CSV file (without extension)."""
        return self._name

    @property
    def fs_hz(self) -> float:
        """Rate of the beat sample numbers (the annotation's rate; 1000 for CSV input), Hz."""
        return self._fs_hz

    @property
    def beat_times_s(self) -> NDArray[np.float64]:
        """Stream times of every R-peak, s, shape ``(n_beats,)``."""
        return self._beat_s

    @property
    def duration_s(self) -> float:
        """Stream time of the last R-peak, s."""
        return float(self._beat_s[-1])

    def counters(self) -> dict[str, int]:
        """Return no counters: a recording or a simulation has nothing to count."""
        return {}

    def describe(self) -> str:
        """Return e.g. ``"rr-replay:04015.qrs x1"``."""
        speed = "xmax" if self._speed is None else f"x{self._speed:g}"
        what = f"{self._name}.{self._annotations}" if self._annotations else f"{self._name}.csv"
        return f"rr-replay:{what} {speed}"

    async def frames(self) -> AsyncIterator[Frame]:
        """Yield :class:`RrIntervals` notifications, then ``END_OF_STREAM``.

        The first R-peak only starts the first interval; each later R-peak contributes its
        RR interval to the notification of the ``frame_s`` period it falls in.
        """
        pacer = StreamPacer(fs_hz=_PACER_HZ, speed=self._speed, clock=self._clock)
        beat_s = self._beat_s
        rr_ms = self._rr_ms
        period = np.floor(beat_s[1:] / self._frame_s).astype(np.int64)
        # indices (into rr_ms) where a new notification period starts
        bounds = np.flatnonzero(np.diff(period)) + 1
        starts = np.concatenate([[0], bounds])
        stops = np.concatenate([bounds, [len(rr_ms)]])
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
            t_s = float(beat_s[b])  # R-peak ending the last interval of this notification
            t0_ns = await pacer.wait_for_sample(round(t_s * _PACER_HZ))
            yield RrIntervals(
                rr_ms=tuple(float(v) for v in rr_ms[a:b]),
                t_s=t_s,
                t0_monotonic_ns=t0_ns,
            )
        t_end_ns = await pacer.wait_for_sample(round(self.duration_s * _PACER_HZ))
        yield DeviceEvent(
            kind=DeviceEventKind.END_OF_STREAM,
            t_s=self.duration_s,
            t0_monotonic_ns=t_end_ns,
            detail=f"{self.describe()} ended after {len(rr_ms)} RR intervals",
        )


__all__ = [
    "BEAT_SYMBOLS",
    "RrReplaySource",
    "check_annotation_complete",
    "read_beat_annotations",
    "read_rr_csv",
]
