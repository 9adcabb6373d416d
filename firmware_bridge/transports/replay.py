"""Replay a WFDB (PhysioNet) record as a live ECG source.

The record is opened, checked and read eagerly in the constructor, so that a missing or broken
record fails at start-up (``bedside run`` / ``bedside analyze``) and never in the middle of a
pipeline. Reading is delegated to the ``wfdb`` library; this module only checks what ``wfdb``
does not (the signal file holds as many samples as the header declares) and turns every failure
into one of the project's :class:`~firmware_bridge.errors.SourceError` subclasses.

Notes
-----
Samples are streamed exactly as ``wfdb.rdrecord(...).p_signal`` gives them, converted to µV.
No baseline is removed: the MIT-BIH Noise Stress Test records (``nstdb/118e*``, ``119e*``)
declare a header baseline of 1024 while their samples are centred near 0, so their physical
signal sits at about -5 mV. That is how PhysioNet distributes them; the conditioner's high-pass
filter removes it, as it removes any electrode offset from a live device.

References
----------
.. [1] Xie C, McCullum L, Johnson A, Pollard T, Gow B, Moody B. Waveform Database Software
   Package (WFDB) for Python (version 4.1.0). PhysioNet (2023). doi:10.13026/9njx-6322
.. [2] Goldberger AL et al. PhysioBank, PhysioToolkit, and PhysioNet: components of a new
   research resource for complex physiologic signals. Circulation 101(23):e215-e220 (2000).
.. [3] WFDB header and signal file formats:
   https://physionet.org/physiotools/wag/header-5.htm, https://physionet.org/physiotools/wag/signal-5.htm

Length: one transport; WFDB and CSV replay share pacing, resampling and the mapping of read
errors.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from numpy.typing import NDArray
from scipy.signal import resample_poly

from firmware_bridge.errors import RecordNotFoundError, RecordReadError
from firmware_bridge.frames import DeviceEvent, DeviceEventKind, EcgChunk, Frame
from firmware_bridge.transports.clock import Clock, MonotonicClock, StreamPacer, validate_pacing

if TYPE_CHECKING:
    import wfdb

logger = logging.getLogger(__name__)

# Bytes per sample of each uncompressed WFDB signal format (signal-5 man page, ref. [3]).
# Used to check that a signal file is as long as its header says; wfdb itself may return fewer
# samples, raise a bare ValueError, or (when only a slice is read) not notice at all.
WFDB_BYTES_PER_SAMPLE: dict[str, Fraction] = {
    "8": Fraction(1),
    "16": Fraction(2),
    "24": Fraction(3),
    "32": Fraction(4),
    "61": Fraction(2),
    "80": Fraction(1),
    "160": Fraction(2),
    "212": Fraction(3, 2),  # two 12-bit samples in three bytes
    "310": Fraction(4, 3),  # three 10-bit samples in four bytes
    "311": Fraction(4, 3),
}

# Physical units accepted in a header, and the factor that turns them into µV. WFDB headers
# without units mean millivolts (header-5 man page); wfdb-python reports them as "mV".
UV_PER_UNIT: dict[str, float] = {
    "mv": 1_000.0,
    "uv": 1.0,
    "µv": 1.0,  # MICRO SIGN
    "μv": 1.0,  # GREEK SMALL LETTER MU
    "v": 1_000_000.0,
}

# Largest numerator/denominator accepted for the resampling ratio. 360 -> 130 Hz is 13/36 and
# 250 -> 360 Hz is 36/25; a ratio like 997/1000 would make resample_poly's filter needlessly long.
MAX_RESAMPLE_FACTOR = 1_000

# Exceptions that wfdb (and numpy under it) raises on unreadable or inconsistent files.
_WFDB_READ_ERRORS = (OSError, ValueError, IndexError, KeyError, TypeError, EOFError)


def _record_base(record: str | Path) -> Path:
    """Return the record path without a ``.hea``/``.dat`` extension."""
    path = Path(record)
    return path.with_suffix("") if path.suffix in {".hea", ".dat"} else path


def _resample_ratio(source_fs_hz: float, fs_hz: float) -> tuple[int, int]:
    """Return ``(up, down)`` with ``fs_hz / source_fs_hz == up / down`` in lowest terms.

    Raises
    ------
    ValueError
        If the ratio is not a simple fraction (numerator or denominator above
        ``MAX_RESAMPLE_FACTOR``).
    """
    ratio = Fraction(fs_hz).limit_denominator(MAX_RESAMPLE_FACTOR) / Fraction(
        source_fs_hz
    ).limit_denominator(MAX_RESAMPLE_FACTOR)
    if ratio.numerator > MAX_RESAMPLE_FACTOR or ratio.denominator > MAX_RESAMPLE_FACTOR:
        msg = (
            f"cannot resample {source_fs_hz:g} Hz to {fs_hz:g} Hz: ratio {ratio} is not a"
            f" simple fraction (terms above {MAX_RESAMPLE_FACTOR})"
        )
        raise ValueError(msg)
    return ratio.numerator, ratio.denominator


def resample_uv(samples_uv: NDArray[np.float32], up: int, down: int) -> NDArray[np.float32]:
    """Resample by ``up / down`` with a polyphase FIR filter, keeping invalid samples invalid.

    ``NaN`` samples (WFDB invalid samples) are bridged by linear interpolation before
    filtering, and every output sample whose neighbouring input samples include a ``NaN`` is set
    back to ``NaN``, so resampling never invents signal where the device had none.

    Parameters
    ----------
    samples_uv : NDArray[np.float32]
        Shape ``(n_samples,)``, ECG in µV at the source rate.
    up, down : int
        Resampling factors; the output rate is ``source_rate * up / down``.

    Returns
    -------
    NDArray[np.float32]
        Shape ``(ceil(n_samples * up / down),)``, ECG in µV at the output rate.

    References
    ----------
    .. [1] scipy.signal.resample_poly (Kaiser-windowed FIR, ``padtype="line"`` so that an
       electrode offset, e.g. the -5 mV of nstdb records, does not ring at the edges).
    """
    x = samples_uv.astype(np.float64)
    invalid = np.isnan(x)
    if invalid.all():
        n_out = math.ceil(len(x) * up / down)
        return np.full(n_out, np.nan, dtype=np.float32)
    if invalid.any():
        idx = np.arange(len(x))
        x[invalid] = np.interp(idx[invalid], idx[~invalid], x[~invalid])
    y = resample_poly(x, up, down, padtype="line")
    if invalid.any():
        pos = np.arange(len(y)) * down / up
        lo = np.clip(np.floor(pos).astype(np.int64), 0, len(x) - 1)
        hi = np.clip(np.ceil(pos).astype(np.int64), 0, len(x) - 1)
        y[invalid[lo] | invalid[hi]] = np.nan
    return np.asarray(y, dtype=np.float32)


_CHILD: Final = "from firmware_bridge.transports.replay import _child_main; _child_main()"
"""What the reader process runs (see :func:`_open_in_subprocess`)."""


def _child_main() -> None:
    """Reader process: open the record named in ``sys.argv``, write it to stdout, exit.

    Writes one JSON line (what :class:`WfdbReplaySource` learnt while opening the record, or
    the error it raised) followed by the samples as raw little-endian float32.
    """
    record, channel, fs_hz, start_s, stop_s = sys.argv[1:6]
    out = sys.stdout.buffer
    try:
        src = WfdbReplaySource(
            record,
            channel=int(channel),
            speed=None,
            fs_hz=float(fs_hz) if fs_hz else None,
            start_s=float(start_s),
            stop_s=float(stop_s) if stop_s else None,
        )
    except RecordNotFoundError as err:
        out.write(json.dumps({"error": "not_found", "record": err.record}).encode() + b"\n")
    except RecordReadError as err:
        msg = {"error": "read", "record": err.record, "reason": err.reason}
        out.write(json.dumps(msg).encode() + b"\n")
    except ValueError as err:
        out.write(json.dumps({"error": "value", "message": str(err)}).encode() + b"\n")
    else:
        meta = {
            "source_fs_hz": src.source_fs_hz,
            "signal_name": src.signal_name,
            "sampfrom": src._sampfrom,
            "fs_hz": src.fs_hz,
            "up": src._up,
            "down": src._down,
            "n": src.n_samples,
        }
        out.write(json.dumps(meta).encode() + b"\n")
        out.write(np.ascontiguousarray(src.samples_uv, dtype="<f4").tobytes())
    out.flush()


def _open_in_subprocess(
    base: Path, *, channel: int, fs_hz: float | None, start_s: float, stop_s: float | None
) -> tuple[dict[str, Any], NDArray[np.float32]]:
    """Open ``base`` in a child Python process; return what it learnt and the samples.

    Raises
    ------
    RecordNotFoundError, RecordReadError, ValueError
        As the child's :class:`WfdbReplaySource` raised them; :class:`RecordReadError` also if
        the child fails or its output is incomplete.
    """
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])  # this firmware_bridge, not another
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    args = [
        sys.executable,
        "-c",
        _CHILD,
        str(base),
        str(channel),
        "" if fs_hz is None else repr(float(fs_hz)),
        repr(float(start_s)),
        "" if stop_s is None else repr(float(stop_s)),
    ]
    proc = subprocess.run(args, stdout=subprocess.PIPE, env=env, check=False)
    head, _, body = proc.stdout.partition(b"\n")
    try:
        meta: dict[str, Any] = json.loads(head) if proc.returncode == 0 else {}
    except ValueError:
        meta = {}
    if not meta:
        reason = f"the reader process failed (exit status {proc.returncode})"
        raise RecordReadError(str(base), reason)
    if meta.get("error") == "not_found":
        raise RecordNotFoundError(meta["record"])
    if meta.get("error") == "read":
        raise RecordReadError(meta["record"], meta["reason"])
    if meta.get("error") == "value":
        raise ValueError(meta["message"])
    samples = np.frombuffer(body, dtype="<f4").astype(np.float32)
    if len(samples) != meta["n"]:
        reason = f"the reader process sent {len(samples)} of {meta['n']} samples"
        raise RecordReadError(str(base), reason)
    return meta, samples


class WfdbReplaySource:
    """Stream one channel of a WFDB record as :class:`~firmware_bridge.frames.EcgChunk` frames.

    Parameters
    ----------
    record : str | Path
        Record path without extension (``.../mitdb/100``); a trailing ``.hea`` is accepted.
    channel : int
        Signal (column) to stream, 0-based. Channel 0 is MLII in most MIT-BIH records.
    speed : float | None
        Playback speed as a multiple of real time (1.0 = live, 50.0 = fifty times faster),
        paced against the monotonic clock without drift: chunk ``k`` is emitted at
        ``t_start + k * chunk_s / speed``. ``None`` = as fast as possible (offline analysis);
        control still returns to the event loop between chunks.
    fs_hz : float | None
        Output sampling rate in Hz. ``None`` keeps the record's rate; otherwise the whole
        signal is resampled once, here, with a rational polyphase filter
        (e.g. 360 -> 130 Hz = 13/36).
    chunk_s : float
        Chunk length in seconds; each chunk holds ``round(chunk_s * fs_hz)`` samples (the last
        one of a pass may be shorter).
    loop : bool
        Start over at the end instead of ending; stream indices and times keep increasing.
    start_utc : datetime | None
        Timezone-aware wall-clock time of the first sample; ``None`` = the time the first
        frame is emitted.
    start_s, stop_s : float, float | None
        Replay only ``[start_s, stop_s)`` seconds of the record (``stop_s=None`` = to the end).
        ``source_sample_idx`` still counts from the start of the record.
    clock : Clock | None
        Time source for pacing; ``None`` = the real monotonic clock.
    read_in_subprocess : bool
        Read, check and resample the record in a short-lived child Python process (the same
        code, so the same samples, bit for bit) and keep only the resampled samples here. The
        live agent (``bedside run``) does: ``wfdb`` imports pandas, about 34 MB of resident
        memory for the rest of the process, plus the record's float64 copies while it is read,
        for what a wearable-fed agent never needs (issue 11). Costs a second or two at start.

    Raises
    ------
    RecordNotFoundError
        If ``RECORD.hea`` does not exist.
    RecordReadError
        If the header cannot be parsed, the record is multi-segment, the channel does not
        exist, the signal file is missing, shorter than the header declares (truncated) or
        unreadable, its units are not a voltage, or ``[start_s, stop_s)`` is empty.
    ValueError
        If ``speed``, ``fs_hz`` or ``chunk_s`` is not positive, ``start_utc`` is naive, or the
        two rates have no simple rational ratio.

    References
    ----------
    .. [1] Xie C et al. Waveform Database Software Package (WFDB) for Python. PhysioNet (2023).
       doi:10.13026/9njx-6322
    """

    def __init__(
        self,
        record: str | Path,
        *,
        channel: int = 0,
        speed: float | None = 1.0,
        fs_hz: float | None = None,
        chunk_s: float = 0.25,
        loop: bool = False,
        start_utc: datetime | None = None,
        start_s: float = 0.0,
        stop_s: float | None = None,
        clock: Clock | None = None,
        read_in_subprocess: bool = False,
    ) -> None:
        validate_pacing(speed, chunk_s)
        if fs_hz is not None and not fs_hz > 0:
            msg = f"fs_hz must be > 0 or None (keep the record's rate), got {fs_hz}"
            raise ValueError(msg)
        if start_utc is not None and start_utc.utcoffset() is None:
            msg = "start_utc must be timezone-aware (e.g. datetime.now(UTC))"
            raise ValueError(msg)

        self._base = _record_base(record)
        self._speed = speed
        self._chunk_s = chunk_s
        self._loop = loop
        self._start_utc = start_utc
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._channel = channel

        if read_in_subprocess:
            opened, self._samples_uv = _open_in_subprocess(
                self._base, channel=channel, fs_hz=fs_hz, start_s=start_s, stop_s=stop_s
            )
            self._source_fs_hz = float(opened["source_fs_hz"])
            self._signal_name = str(opened["signal_name"])
            self._sampfrom = int(opened["sampfrom"])
            self._fs_hz = float(opened["fs_hz"])
            self._up, self._down = int(opened["up"]), int(opened["down"])
        else:
            self._open_here(fs_hz, start_s, stop_s)
        self._chunk_len = max(1, round(chunk_s * self._fs_hz))
        logger.info(
            "opened %s: %d samples (%.1f s)", self.describe(), self.n_samples, self.duration_s
        )

    # -- opening ------------------------------------------------------------------------------

    def _open_here(self, fs_hz: float | None, start_s: float, stop_s: float | None) -> None:
        """Read, check and resample the record in this process (see ``read_in_subprocess``)."""
        header = self._read_header()
        self._source_fs_hz = float(header.fs)
        self._signal_name = str(header.sig_name[self._channel])
        self._sampfrom = round(start_s * self._source_fs_hz)
        sampto = header.sig_len if stop_s is None else round(stop_s * self._source_fs_hz)
        sampto = min(sampto, header.sig_len)
        if not 0 <= self._sampfrom < sampto:
            raise RecordReadError(
                str(self._base),
                f"empty slice: start_s={start_s}, stop_s={stop_s} in a record of"
                f" {header.sig_len / self._source_fs_hz:.1f} s",
            )
        source_uv = self._read_samples_uv(self._sampfrom, sampto)

        self._fs_hz = float(fs_hz) if fs_hz is not None else self._source_fs_hz
        if self._fs_hz == self._source_fs_hz:
            self._up, self._down = 1, 1
            self._samples_uv = source_uv
        else:
            self._up, self._down = _resample_ratio(self._source_fs_hz, self._fs_hz)
            self._samples_uv = resample_uv(source_uv, self._up, self._down)

    def _read_header(self) -> wfdb.Record:
        """Read and check the header; return it (a single-segment ``wfdb.Record``)."""
        import wfdb  # here, not at module level: wfdb brings pandas (~34 MB; issue 11)

        record = str(self._base)
        if not self._base.with_name(self._base.name + ".hea").is_file():
            raise RecordNotFoundError(record)
        try:
            header = wfdb.rdheader(record)
        except _WFDB_READ_ERRORS as err:
            raise RecordReadError(record, f"header cannot be parsed: {err}") from err
        if isinstance(header, wfdb.MultiRecord):
            raise RecordReadError(record, "multi-segment records are not supported")
        n_sig = int(header.n_sig or 0)
        if n_sig == 0 or not header.fs or not header.sig_len:
            raise RecordReadError(
                record, "header declares no signals, no sampling rate or no length"
            )
        if not 0 <= self._channel < n_sig:
            names = ", ".join(f"{i}: {name}" for i, name in enumerate(header.sig_name))
            raise RecordReadError(
                record,
                f"channel {self._channel} does not exist; the record has {n_sig}"
                f" channel{'s' if n_sig != 1 else ''} ({names})",
            )
        self._check_signal_file(header)
        return header

    def _check_signal_file(self, header: wfdb.Record) -> None:
        """Check that the channel's signal file exists and is as long as the header says."""
        record = str(self._base)
        file_name = str(header.file_name[self._channel])
        dat_path = self._base.parent / file_name
        if not dat_path.is_file():
            raise RecordReadError(record, f"signal file {file_name} is missing")
        # Every signal stored in the same file contributes to each frame of that file.
        bytes_per_frame = Fraction(0)
        for i in range(int(header.n_sig)):
            if header.file_name[i] != file_name:
                continue
            fmt = str(header.fmt[i])
            if fmt not in WFDB_BYTES_PER_SAMPLE:
                return  # compressed (FLAC) formats: rely on the sample count check only
            spf = int(header.samps_per_frame[i] or 1)
            bytes_per_frame += WFDB_BYTES_PER_SAMPLE[fmt] * spf
        byte_offset = int(header.byte_offset[self._channel] or 0)
        expected_bytes = byte_offset + math.ceil(bytes_per_frame * int(header.sig_len))
        actual_bytes = dat_path.stat().st_size
        if actual_bytes < expected_bytes:
            n_frames = int((actual_bytes - byte_offset) / bytes_per_frame)
            raise RecordReadError(
                record,
                f"signal file {file_name} is truncated: {actual_bytes} bytes, the header"
                f" declares {header.sig_len} samples per signal ({expected_bytes} bytes);"
                f" the file holds about {max(n_frames, 0)}",
            )

    def _read_samples_uv(self, sampfrom: int, sampto: int) -> NDArray[np.float32]:
        """Read ``[sampfrom, sampto)`` of the channel, in µV, with ``NaN`` for invalid samples."""
        import wfdb

        record = str(self._base)
        try:
            rec = wfdb.rdrecord(record, channels=[self._channel], sampfrom=sampfrom, sampto=sampto)
        except _WFDB_READ_ERRORS as err:
            raise RecordReadError(record, f"signal file cannot be read: {err}") from err
        p_signal = rec.p_signal
        n_expected = sampto - sampfrom
        if p_signal is None or p_signal.ndim != 2 or p_signal.shape[0] != n_expected:
            n_got = 0 if p_signal is None else p_signal.shape[0]
            raise RecordReadError(
                record,
                f"signal file is truncated: read {n_got} samples where the header declares"
                f" {n_expected}",
            )
        units = str(rec.units[0] if rec.units and rec.units[0] else "mV")
        scale_uv = UV_PER_UNIT.get(units.strip().lower())
        if scale_uv is None:
            raise RecordReadError(
                record,
                f"channel {self._channel} is in {units!r}, not a voltage (mV, uV or V)",
            )
        return np.asarray(p_signal[:, 0] * scale_uv, dtype=np.float32)

    # -- properties ---------------------------------------------------------------------------

    @property
    def fs_hz(self) -> float:
        """Output sampling rate in Hz."""
        return self._fs_hz

    @property
    def source_fs_hz(self) -> float:
        """The record's own sampling rate in Hz."""
        return self._source_fs_hz

    @property
    def n_samples(self) -> int:
        """Number of samples in one pass, at the output rate."""
        return len(self._samples_uv)

    @property
    def duration_s(self) -> float:
        """Duration of one pass in seconds."""
        return self.n_samples / self._fs_hz

    @property
    def record_name(self) -> str:
        """Base name of the record, e.g. ``"232"``."""
        return self._base.name

    @property
    def signal_name(self) -> str:
        """Name of the streamed signal in the header, e.g. ``"MLII"``."""
        return self._signal_name

    @property
    def channel(self) -> int:
        """The streamed channel (0-based)."""
        return self._channel

    @property
    def samples_uv(self) -> NDArray[np.float32]:
        """Shape ``(n_samples,)``: the whole pass in µV at ``fs_hz`` (read-only view)."""
        view = self._samples_uv.view()
        view.flags.writeable = False
        return view

    def source_sample_idx(self, sample_idx: int) -> int:
        """Map an index within one pass (output rate) to the record's sample number.

        Parameters
        ----------
        sample_idx : int
            Sample index within a pass, at ``fs_hz``.

        Returns
        -------
        int
            The nearest sample number at ``source_fs_hz``, counted from the start of the record
            (so it includes ``start_s``).
        """
        return self._sampfrom + (2 * sample_idx * self._down + self._up) // (2 * self._up)

    def counters(self) -> dict[str, int]:
        """Return no counters: a recording or a simulation has nothing to count."""
        return {}

    def describe(self) -> str:
        """Return e.g. ``"replay:232 ch0 MLII 360Hz→130Hz x50"`` (``xmax`` = unpaced)."""
        rate = f"{self._source_fs_hz:g}Hz"
        if self._fs_hz != self._source_fs_hz:
            rate += f"→{self._fs_hz:g}Hz"
        speed = "xmax" if self._speed is None else f"x{self._speed:g}"
        loop = " loop" if self._loop else ""
        name = f"{self.record_name} ch{self._channel} {self._signal_name}"
        return f"replay:{name} {rate} {speed}{loop}"

    # -- streaming ----------------------------------------------------------------------------

    async def frames(self) -> AsyncIterator[Frame]:
        """Yield the record as contiguous :class:`EcgChunk` frames, then ``END_OF_STREAM``.

        Each call starts a new stream from the first sample.

        Yields
        ------
        EcgChunk
            ``samples_uv`` float32 µV, shape ``(n,)`` with ``n = round(chunk_s * fs_hz)``
            (the last chunk of a pass may be shorter); ``first_sample_idx`` counts at
            ``fs_hz`` from 0 across loops; ``source_sample_idx`` is the record's sample number
            at ``source_fs_hz``; ``t0_monotonic_ns`` is the emission time; ``t0_utc`` is
            ``start_utc`` plus the stream time of the first sample.
        DeviceEvent
            One ``END_OF_STREAM`` at stream time ``n_samples / fs_hz`` when ``loop`` is false.
        """
        pacer = StreamPacer(fs_hz=self._fs_hz, speed=self._speed, clock=self._clock)
        start_utc = self._start_utc
        stream_idx = 0
        while True:
            for pass_idx in range(0, self.n_samples, self._chunk_len):
                t0_ns = await pacer.wait_for_sample(stream_idx)
                if start_utc is None:
                    start_utc = datetime.now(UTC)
                chunk = self._samples_uv[pass_idx : pass_idx + self._chunk_len].copy()
                yield EcgChunk(
                    samples_uv=chunk,
                    fs_hz=self._fs_hz,
                    first_sample_idx=stream_idx,
                    t0_monotonic_ns=t0_ns,
                    t0_utc=start_utc + timedelta(seconds=stream_idx / self._fs_hz),
                    source_sample_idx=self.source_sample_idx(pass_idx),
                    source_fs_hz=self._source_fs_hz,
                )
                stream_idx += len(chunk)
            if not self._loop:
                break
            logger.debug("%s: looping at stream sample %d", self.describe(), stream_idx)
        t_end_ns = await pacer.wait_for_sample(stream_idx)
        yield DeviceEvent(
            kind=DeviceEventKind.END_OF_STREAM,
            t_s=stream_idx / self._fs_hz,
            t0_monotonic_ns=t_end_ns,
            detail=f"{self.describe()} ended after {stream_idx} samples",
        )
