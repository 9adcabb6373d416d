"""The live ECG topic (DESIGN.md: ``bedside/v1/{unit}/{bed}/ecg``, off by default).

:mod:`agent.messages` names the ``ecg`` topic but has no payload model for it yet, so the
station and ``bedside ward-sim`` agree on these two until the agent adopts them:

- :class:`EcgChunk` on ``.../ecg`` (QoS 0): consecutive samples of the live waveform.
- :class:`EcgControl` on ``.../ecg/control`` (QoS 1, from a station): turn the stream on for
  ``lease_s`` seconds. A station renews the lease every :data:`ECG_LEASE_RENEW_S` while someone
  watches the bed and sends ``on=False`` when the last viewer leaves; if the station dies, the
  stream stops by itself when the lease runs out. Several stations may watch one bed: the
  agent keeps one lease per ``station_id``.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.messages import SCHEMA_VERSION, TOPIC_ROOT, validate_bed_segment

__all__ = [
    "ECG_LEASE_RENEW_S",
    "ECG_LEASE_S",
    "EcgChunk",
    "EcgControl",
    "ecg_control_topic",
    "ecg_topic",
]

ECG_LEASE_S: Final = 30.0
"""A live ECG stream stops this long after the last lease renewal (a station that died)."""

ECG_LEASE_RENEW_S: Final = 10.0
"""A watching station renews its lease this often (three renewals per lease)."""


class EcgChunk(BaseModel):
    """Consecutive live ECG samples of one bed (``.../ecg``, QoS 0)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = Field(default=SCHEMA_VERSION)
    device_id: str
    fs_hz: float = Field(gt=0, description="Sampling rate, Hz.")
    t0_s: float = Field(description="Stream time of samples_uv[0], s.")
    samples_uv: list[int] = Field(description="ECG, µV, rounded to integers.")
    beats_t_s: list[float] = Field(default_factory=list, description="R-peaks in the chunk, s.")


class EcgControl(BaseModel):
    """A station turning a bed's live ECG on (for ``lease_s``) or off."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = Field(default=SCHEMA_VERSION)
    station_id: str = Field(pattern=r"^[A-Za-z0-9_.:@-]{1,64}$")
    on: bool
    lease_s: float = Field(default=ECG_LEASE_S, gt=0, le=600)


def ecg_topic(unit: str, bed: str) -> str:
    """Return ``bedside/v1/{unit}/{bed}/ecg``.

    Raises
    ------
    ValueError
        If ``unit`` or ``bed`` is not a valid topic segment.
    """
    validate_bed_segment(unit, "unit")
    validate_bed_segment(bed, "bed")
    return f"{TOPIC_ROOT}/{unit}/{bed}/ecg"


def ecg_control_topic(unit: str, bed: str) -> str:
    """Return ``bedside/v1/{unit}/{bed}/ecg/control``.

    Raises
    ------
    ValueError
        If ``unit`` or ``bed`` is not a valid topic segment.
    """
    return ecg_topic(unit, bed) + "/control"
