"""Cutting a stretch of a PhysioNet record into a short WFDB record for a test."""

from __future__ import annotations

import asyncio
from pathlib import Path

import wfdb

import agent.analyze as analyze
from agent.config import AgentConfig
from agent.inference.bundle import load_models
from agent.messages import AlarmEvent
from tools.evaluate.alarms import beat_fold_card


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


def fold_model_events(record: Path, name: str, ectopy: dict[str, object]) -> list[AlarmEvent]:
    """Alarm events of ``bedside analyze --ack-after 30`` over a (cut) mitdb record.

    The record is labelled by the beat fold model that never saw mitdb ``name``, with 60 Hz
    mains (MIT-BIH was recorded in Boston) and ``ectopy`` as the ``alarms.ectopy`` settings.
    """
    cfg = AgentConfig.model_validate(
        {
            "dsp": {"powerline_hz": 60},
            "inference": {"beat_model": str(beat_fold_card(name))},
            "alarms": {"ectopy": ectopy},
        }
    )
    result = asyncio.run(
        analyze.analyze_record(record, cfg, load_models(cfg.inference), ack_after_s=30.0)
    )
    return list(result.events)
