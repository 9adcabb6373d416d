"""Cutting a stretch of a PhysioNet record into a short WFDB record for a test."""

from __future__ import annotations

from pathlib import Path

import wfdb


def cut_record(data_dir: Path, db: str, name: str, start_s: int, end_s: int, folder: Path) -> Path:
    """Write samples ``start_s``-``end_s`` of channel 0 of ``db/name`` as a WFDB record.

    The digital samples, gain and baseline are copied unchanged (``physical=False``), so the
    agent sees the same signal as in the whole record. Returns the new record's path without
    extension, ``folder / name``.

    Raises
    ------
    FileNotFoundError
        If the record is not under ``data_dir / db``.
    """
    fs = int(wfdb.rdheader(str(data_dir / db / name)).fs)
    rec = wfdb.rdrecord(
        str(data_dir / db / name),
        sampfrom=start_s * fs,
        sampto=end_s * fs,
        channels=[0],
        physical=False,
    )
    rec.wrsamp(write_dir=str(folder))
    return folder / name
