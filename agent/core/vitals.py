"""The vitals message of a stream: what the nurse station shows once a second."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from agent.messages import AlarmCode, News2Parameter, News2Summary, VitalsMessage
from agent.vitals.news2 import News2Result, Param

if TYPE_CHECKING:
    from agent.core.monitor import MonitorCore


def news2_summary(result: News2Result) -> News2Summary:
    """Return the wire form of a NEWS2 result (RCP 2017 chart 1 scores, sources, ages)."""
    return News2Summary(
        total=result.total,
        complete=result.complete,
        risk=None if result.risk is None else str(result.risk),
        urgent=result.urgent,
        emergency=result.emergency,
        spo2_scale=int(result.spo2_scale),
        missing=[str(p) for p in result.missing],
        stale=[str(p) for p in result.stale],
        parameters=[
            News2Parameter(
                param=str(ps.param),
                value=ps.value if isinstance(ps.value, bool | int | float) else str(ps.value),
                score=ps.score,
                source=ps.source,
                age_s=round(max(ps.age_s, 0.0), 1),
                stale=ps.stale,
            )
            for ps in result.parameters
        ],
    )


def vitals_message(core: MonitorCore, device_id: str, ts_utc: datetime) -> VitalsMessage:
    """Return the current vitals of ``core``.

    HR per IEC 60601-2-27 averaging (0 during asystole), last RR, signal quality, leads-off,
    active alarms, SpO2, respiration, temperature, NEWS2 and rhythm. Call it only while
    nothing else steps the core (the runtime's driver holds its lock).
    """
    asystole = core.engine.is_active(AlarmCode.ASYSTOLE)
    hr = 0.0 if asystole else core.rules.hr_bpm
    rr = core.rules.rr_ms
    vit = core.vitals_in
    resp_rate, resp_source = vit.respiration(core.committed_s)
    sqi = core.sqi()
    return VitalsMessage(
        device_id=device_id,
        ts_utc=ts_utc,
        t_s=round(core.committed_s, 3),
        hr_bpm=None if hr is None else round(hr, 1),
        rr_ms=round(rr[-1], 1) if rr else None,
        beats_total=core.beats_total,
        signal_quality=None if sqi is None else round(sqi, 3),
        leads_off=core.rules.leads_off,
        active_alarms=[e.condition for e in core.engine.active],
        spo2_pct=vit.latest(Param.SPO2),
        respiration_rate_per_min=resp_rate,
        respiration_source=resp_source,
        temperature_c=vit.latest(Param.TEMPERATURE),
        news2=None if vit.news2 is None else news2_summary(vit.news2),
        rhythm=core.current_rhythm(),
    )
