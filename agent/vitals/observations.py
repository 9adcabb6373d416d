"""The latest vital signs of one bed, with where and when each was measured, and NEWS2 on them.

Values arrive from several places: the ECG pipeline (``pulse`` from ``"ecg"``, respiration
from ``"edr"``), BLE wearables (``"ble:plx:AA:BB:..."`` for SpO2 and pulse, a thermometer),
and the nurse station, which publishes a :class:`~agent.messages.ManualObservations` on
``bedside/v1/{unit}/{bed}/observations`` for what no sensor measures (blood pressure,
consciousness, oxygen, a counted respiration rate, a temperature). That payload, like every
wire payload, is defined in :mod:`agent.messages`; this module only stores what it carries.

:class:`VitalsStore` keeps the latest value of each NEWS2 parameter with its source and stream
time. "Latest" is by measurement time: a value older than the one held is ignored (a
delayed MQTT message does not overwrite a newer sensor value). Stale values are shown, not
silently reused: :meth:`VitalsStore.news2` lists them with ``stale=True`` and does not score
them (defaults: :data:`agent.vitals.news2.DEFAULT_SENSOR_MAX_AGE_S` and
:data:`~agent.vitals.news2.DEFAULT_MANUAL_MAX_AGE_S`, configurable per parameter).

Pure and synchronous: no I/O, no wall clock; times are stream seconds given by the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

from agent.messages import Consciousness, ManualObservations, SpO2Scale
from agent.vitals.news2 import (
    MANUAL_SOURCE,
    OBSERVATION_FIELD,
    AnyObservation,
    News2Result,
    Observation,
    Observations,
    Param,
    check_plausible,
    default_max_age_s,
    is_manual_source,
    news2,
    score_consciousness,
)

__all__ = [
    "VitalsStore",
    "stream_time_s",
]

logger = logging.getLogger(__name__)


def stream_time_s(ts_utc: datetime, stream_start_utc: datetime) -> float:
    """Convert a UTC time to stream seconds, given the UTC time of stream time 0.

    Raises
    ------
    TypeError
        If either datetime is naive (no time zone).
    """
    return (ts_utc - stream_start_utc).total_seconds()


class VitalsStore:
    """Latest value, source and stream time of each NEWS2 parameter of one bed.

    Parameters
    ----------
    max_age_s
        Maximum age per parameter for sensor values, s; missing keys use
        :data:`agent.vitals.news2.DEFAULT_SENSOR_MAX_AGE_S`.
    manual_max_age_s
        Maximum age per parameter for nurse-station values (source ``manual`` or
        ``manual:...``), s; missing keys use
        :data:`agent.vitals.news2.DEFAULT_MANUAL_MAX_AGE_S`.
    spo2_scale
        The SpO2 scale until the nurse station sets one (scale 1, RCP 2017 default).

    Raises
    ------
    ValueError
        If a maximum age is not positive.
    """

    def __init__(
        self,
        *,
        max_age_s: Mapping[Param, float] | None = None,
        manual_max_age_s: Mapping[Param, float] | None = None,
        spo2_scale: SpO2Scale = SpO2Scale.SCALE_1,
    ) -> None:
        for table in (max_age_s or {}, manual_max_age_s or {}):
            for param, age in table.items():
                if not age > 0:
                    msg = f"max age of {Param(param).value} must be > 0 s, got {age!r}"
                    raise ValueError(msg)
        self._max_age_s = dict(max_age_s or {})
        self._manual_max_age_s = dict(manual_max_age_s or {})
        self._obs = Observations(spo2_scale=SpO2Scale(spo2_scale))

    # ------------------------------------------------------------------ inputs
    def _put(self, param: Param, obs: AnyObservation) -> bool:
        held = self._obs.get(param)
        if held is not None and obs.t_s < held.t_s:
            logger.debug("ignored %s from %s: older than the value held", param, obs.source)
            return False
        update: dict[str, Any] = {OBSERVATION_FIELD[param]: obs}  # this parameter's field
        self._obs = replace(self._obs, **update)
        return True

    def _put_number(self, param: Param, value: float, source: str, t_s: float) -> bool:
        check_plausible(param, value)  # ValueError / TypeError naming the parameter
        return self._put(param, Observation(float(value), source, float(t_s)))

    def put_respiration_rate(self, rr_per_min: float, *, source: str, t_s: float) -> bool:
        """Record a respiration rate, breaths/min, measured at stream time ``t_s``.

        Returns
        -------
        bool
            True if stored, False if older than the value held (ignored).

        Raises
        ------
        ValueError
            If the value is not finite or outside the plausible range (0-120 /min).
        """
        return self._put_number(Param.RESPIRATION_RATE, rr_per_min, source, t_s)

    def put_spo2(self, spo2_pct: float, *, source: str, t_s: float) -> bool:
        """Record an SpO2, % (see :meth:`put_respiration_rate`; range 0-100 %)."""
        return self._put_number(Param.SPO2, spo2_pct, source, t_s)

    def put_supplemental_o2(self, on_oxygen: bool, *, source: str, t_s: float) -> bool:
        """Record whether the patient is on supplemental oxygen (see put_respiration_rate).

        Raises
        ------
        TypeError
            If ``on_oxygen`` is not a bool.
        """
        if not isinstance(cast(object, on_oxygen), bool):  # untyped callers
            msg = f"air_or_oxygen: expected a bool (True = on oxygen), got {on_oxygen!r}"
            raise TypeError(msg)
        return self._put(Param.AIR_OR_OXYGEN, Observation(on_oxygen, source, float(t_s)))

    def put_systolic_bp(self, systolic_bp_mmhg: float, *, source: str, t_s: float) -> bool:
        """Record a systolic blood pressure, mmHg (range 0-350 mmHg)."""
        return self._put_number(Param.SYSTOLIC_BP, systolic_bp_mmhg, source, t_s)

    def put_pulse(self, pulse_bpm: float, *, source: str, t_s: float) -> bool:
        """Record a pulse / heart rate, beats/min (range 0-350 /min)."""
        return self._put_number(Param.PULSE, pulse_bpm, source, t_s)

    def put_consciousness(self, level: Consciousness | str, *, source: str, t_s: float) -> bool:
        """Record an ACVPU level.

        Raises
        ------
        ValueError
            If ``level`` is not an ACVPU letter.
        """
        score_consciousness(level)  # validates
        return self._put(Param.CONSCIOUSNESS, Observation(Consciousness(level), source, t_s))

    def put_temperature(self, temperature_c: float, *, source: str, t_s: float) -> bool:
        """Record a body temperature, °C (range 10-46 °C)."""
        return self._put_number(Param.TEMPERATURE, temperature_c, source, t_s)

    def set_spo2_scale(self, scale: SpO2Scale) -> None:
        """Set which NEWS2 SpO2 scale applies (a clinician's decision; never goes stale)."""
        self._obs = replace(self._obs, spo2_scale=SpO2Scale(scale))

    def add_manual(self, obs: ManualObservations, *, t_s: float, source: str = "") -> list[Param]:
        """Store the observations of a nurse-station message.

        Parameters
        ----------
        obs
            The validated message.
        t_s
            Stream time of ``obs.ts_utc`` (see :func:`stream_time_s`), s.
        source
            Source label; default ``"manual"``, or ``"manual:<entered_by>"`` when given.

        Returns
        -------
        list[Param]
            The parameters stored (older ones than those held are left out).
        """
        if not source:
            source = f"{MANUAL_SOURCE}:{obs.entered_by}" if obs.entered_by else MANUAL_SOURCE
        stored: list[Param] = []
        if obs.spo2_scale is not None:
            self.set_spo2_scale(obs.spo2_scale)
        if obs.systolic_bp_mmhg is not None and self.put_systolic_bp(
            obs.systolic_bp_mmhg, source=source, t_s=t_s
        ):
            stored.append(Param.SYSTOLIC_BP)
        if obs.consciousness is not None and self.put_consciousness(
            obs.consciousness, source=source, t_s=t_s
        ):
            stored.append(Param.CONSCIOUSNESS)
        if obs.supplemental_o2 is not None and self.put_supplemental_o2(
            obs.supplemental_o2, source=source, t_s=t_s
        ):
            stored.append(Param.AIR_OR_OXYGEN)
        if obs.respiration_rate_per_min is not None and self.put_respiration_rate(
            obs.respiration_rate_per_min, source=source, t_s=t_s
        ):
            stored.append(Param.RESPIRATION_RATE)
        if obs.temperature_c is not None and self.put_temperature(
            obs.temperature_c, source=source, t_s=t_s
        ):
            stored.append(Param.TEMPERATURE)
        return stored

    # ------------------------------------------------------------------ outputs
    @property
    def spo2_scale(self) -> SpO2Scale:
        """The SpO2 scale in use."""
        return self._obs.spo2_scale

    def latest(self, param: Param) -> AnyObservation | None:
        """Return the latest observation of ``param`` (None if never observed)."""
        return self._obs.get(param)

    def holds_any(self, params: Iterable[Param]) -> bool:
        """Whether any of ``params`` has been observed (fresh or stale)."""
        return any(self._obs.get(p) is not None for p in params)

    def max_age_s(self, param: Param, source: str) -> float:
        """Maximum age of ``param`` from ``source`` under this store's configuration, s."""
        table = self._manual_max_age_s if is_manual_source(source) else self._max_age_s
        return table.get(param, default_max_age_s(param, source))

    def snapshot(self) -> Observations:
        """Return the latest observations as :class:`~agent.vitals.news2.Observations`."""
        return self._obs

    def news2(self, now_s: float) -> News2Result:
        """NEWS2 of the latest observations at stream time ``now_s`` (RCP 2017).

        Each held value's maximum age follows its source (sensor or manual table).

        Raises
        ------
        ValueError
            Never for stored values (they were validated when stored).
        """
        ages = {
            param: self.max_age_s(param, ob.source)
            for param in Param
            if (ob := self._obs.get(param)) is not None
        }
        return news2(self.snapshot(), now_s=now_s, max_age_s=ages)
