"""VitalsStore (latest value per parameter, staleness) and the ManualObservations payload."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from agent.messages import Consciousness, ManualObservations, SpO2Scale
from agent.vitals.news2 import ClinicalRisk, Param
from agent.vitals.observations import VitalsStore, stream_time_s

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def _manual(**fields: object) -> ManualObservations:
    return ManualObservations.model_validate({"ts_utc": T0.isoformat(), **fields})


def test_manual_observations_round_trip_json() -> None:
    obs = _manual(
        systolic_bp_mmhg=118,
        consciousness="A",
        supplemental_o2=False,
        spo2_scale=2,
        respiration_rate_per_min=18,
        temperature_c=37.2,
        entered_by="rn-station-3",
    )
    again = ManualObservations.model_validate_json(obs.model_dump_json())
    assert again == obs
    assert again.consciousness is Consciousness.ALERT
    assert again.spo2_scale is SpO2Scale.SCALE_2
    assert again.schema_version == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("systolic_bp_mmhg", 400),
        ("systolic_bp_mmhg", -1),
        ("respiration_rate_per_min", -2),
        ("respiration_rate_per_min", 200),
        ("temperature_c", 4.0),
        ("temperature_c", 50.0),
        ("consciousness", "X"),
        ("spo2_scale", 3),
        ("supplemental_o2", "maybe"),
        ("entered_by", "Jane Doe, bed 4"),  # spaces: a name, not a role/station id
        ("entered_by", ""),
        ("schema_version", 2),
        ("heart_rate_bpm", 80),  # extra="forbid"
    ],
)
def test_manual_observations_bad_field_is_named(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as err:
        _manual(**{"temperature_c": 37.0, field: value})
    locs = [e["loc"] for e in err.value.errors()]
    assert (field,) in locs, locs


def test_manual_observations_need_an_aware_time_and_an_observation() -> None:
    with pytest.raises(ValidationError, match="ts_utc"):
        ManualObservations.model_validate({"ts_utc": "2024-05-01T08:00:00", "temperature_c": 37})
    with pytest.raises(ValidationError, match="no observation"):
        _manual(entered_by="rn")


def test_manual_observations_frozen() -> None:
    obs = _manual(temperature_c=37.0)
    with pytest.raises(ValidationError):
        obs.temperature_c = 38.0


def test_store_accepts_manual_observations_and_scores_them() -> None:
    store = VitalsStore()
    msg = _manual(
        systolic_bp_mmhg=95,  # 2
        consciousness="A",
        supplemental_o2=True,  # 2
        respiration_rate_per_min=22,  # 2
        temperature_c=38.05,  # 38.1 -> 1
        entered_by="station-3",
    )
    t_s = stream_time_s(msg.ts_utc, T0 - timedelta(seconds=10))
    assert t_s == 10.0
    stored = store.add_manual(msg, t_s=t_s)
    assert stored == [
        Param.SYSTOLIC_BP,
        Param.CONSCIOUSNESS,
        Param.AIR_OR_OXYGEN,
        Param.RESPIRATION_RATE,
        Param.TEMPERATURE,
    ]
    store.put_pulse(72, source="ecg", t_s=20.0)
    store.put_spo2(95, source="ble:plx:AA:BB:CC:DD:EE:FF", t_s=20.0)  # 1
    r = store.news2(now_s=25.0)
    assert r.complete
    assert r.total == 2 + 2 + 2 + 1 + 1
    assert r.risk is ClinicalRisk.HIGH
    assert r.emergency
    sources = {p.param: p.source for p in r.parameters}
    assert sources[Param.SYSTOLIC_BP] == "manual:station-3"
    assert sources[Param.PULSE] == "ecg"


def test_store_keeps_the_latest_by_measurement_time() -> None:
    store = VitalsStore()
    assert store.put_pulse(80, source="ecg", t_s=10.0)
    assert not store.put_pulse(140, source="ble:hr", t_s=9.0)  # delayed, older: ignored
    latest = store.latest(Param.PULSE)
    assert latest is not None
    assert latest.value == 80.0
    assert store.put_pulse(85, source="ble:hr", t_s=11.0)
    assert store.snapshot().pulse_bpm is not None
    assert store.snapshot().pulse_bpm.source == "ble:hr"  # type: ignore[union-attr]


def test_store_staleness_defaults_and_overrides() -> None:
    store = VitalsStore()
    store.put_pulse(120, source="ecg", t_s=0.0)
    store.put_respiration_rate(26, source="edr", t_s=0.0)
    store.put_temperature(39.5, source="manual", t_s=0.0)
    r = store.news2(now_s=45.0)  # pulse > 30 s: stale; EDR < 60 s: fresh
    assert r.stale == [Param.PULSE]
    assert r.total == 3 + 2
    r = store.news2(now_s=61.0)
    assert r.stale == [Param.RESPIRATION_RATE, Param.PULSE]
    assert r.total == 2

    strict = VitalsStore(
        max_age_s={Param.PULSE: 120.0}, manual_max_age_s={Param.TEMPERATURE: 3600.0}
    )
    strict.put_pulse(120, source="ecg", t_s=0.0)
    strict.put_temperature(39.5, source="manual", t_s=0.0)
    assert strict.news2(now_s=100.0).total == 2 + 2
    r = strict.news2(now_s=3601.0)
    assert r.stale == [Param.PULSE, Param.TEMPERATURE]
    assert r.total is None
    stale_temp = next(p for p in r.parameters if p.param is Param.TEMPERATURE)
    assert stale_temp.value == 39.5
    assert stale_temp.age_s == pytest.approx(3601.0)


def test_store_rejects_implausible_values_naming_them() -> None:
    store = VitalsStore()
    with pytest.raises(ValueError, match=r"^spo2: "):
        store.put_spo2(104, source="ble:plx", t_s=0.0)
    with pytest.raises(ValueError, match=r"^respiration_rate: "):
        store.put_respiration_rate(-3, source="edr", t_s=0.0)
    with pytest.raises(ValueError, match="consciousness"):
        store.put_consciousness("Z", source="manual", t_s=0.0)
    with pytest.raises(TypeError, match="air_or_oxygen"):
        store.put_supplemental_o2(1, source="manual", t_s=0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max age of pulse"):
        VitalsStore(max_age_s={Param.PULSE: 0.0})
    assert store.news2(now_s=0.0).total is None  # nothing was stored


def test_store_spo2_scale_from_nurse_station() -> None:
    store = VitalsStore()
    store.put_spo2(97, source="ble:plx", t_s=0.0)
    store.put_supplemental_o2(True, source="manual", t_s=0.0)
    assert store.news2(now_s=1.0).total == 0 + 2  # scale 1
    store.add_manual(_manual(spo2_scale=2), t_s=1.0)
    assert store.spo2_scale is SpO2Scale.SCALE_2
    assert store.news2(now_s=2.0).total == 3 + 2  # scale 2, on oxygen, >= 97


def test_manual_observations_json_schema_is_strict() -> None:
    schema = ManualObservations.model_json_schema()
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["ts_utc"]
    text = json.dumps(schema)
    assert "never patient data" in text
