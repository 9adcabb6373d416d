"""NEWS2 against RCP 2017 chart 1 (every band edge) and chart 2 (risk, triggers)."""

from __future__ import annotations

import math

import pytest

from agent.vitals.news2 import (
    ClinicalRisk,
    Consciousness,
    Observation,
    Observations,
    Param,
    SpO2Scale,
    chart_round,
    clinical_risk,
    news2,
    score_air_or_oxygen,
    score_consciousness,
    score_pulse,
    score_respiration_rate,
    score_spo2,
    score_systolic_bp,
    score_temperature,
)

# (value, score) at both sides of every band edge of chart 1, plus the range ends.
RESPIRATION = [(0, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3),
               (60, 3)]  # fmt: skip
SPO2_SCALE_1 = [(0, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)]
SPO2_SCALE_2_BELOW_93 = [(0, 3), (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0)]
SPO2_SCALE_2_ON_AIR = [(93, 0), (94, 0), (96, 0), (97, 0), (100, 0)]
SPO2_SCALE_2_ON_OXYGEN = [(93, 1), (94, 1), (95, 2), (96, 2), (97, 3), (100, 3)]
SYSTOLIC = [(0, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0),
            (220, 3), (300, 3)]  # fmt: skip
PULSE = [(0, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2),
         (130, 2), (131, 3), (250, 3)]  # fmt: skip
TEMPERATURE = [(25.0, 3), (35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1),
               (39.0, 1), (39.1, 2), (42.0, 2)]  # fmt: skip


@pytest.mark.parametrize(("value", "score"), RESPIRATION)
def test_respiration_rate_bands(value: float, score: int) -> None:
    assert score_respiration_rate(value) == score


@pytest.mark.parametrize(("value", "score"), SPO2_SCALE_1)
@pytest.mark.parametrize("o2", [None, False, True])
def test_spo2_scale_1_bands_ignore_oxygen(value: float, score: int, o2: bool | None) -> None:
    assert score_spo2(value, SpO2Scale.SCALE_1, supplemental_o2=o2) == score


@pytest.mark.parametrize(("value", "score"), SPO2_SCALE_2_BELOW_93)
@pytest.mark.parametrize("o2", [None, False, True])
def test_spo2_scale_2_below_93_same_on_air_and_oxygen(
    value: float, score: int, o2: bool | None
) -> None:
    assert score_spo2(value, SpO2Scale.SCALE_2, supplemental_o2=o2) == score


@pytest.mark.parametrize(("value", "score"), SPO2_SCALE_2_ON_AIR)
def test_spo2_scale_2_on_air(value: float, score: int) -> None:
    assert score_spo2(value, SpO2Scale.SCALE_2, supplemental_o2=False) == score


@pytest.mark.parametrize(("value", "score"), SPO2_SCALE_2_ON_OXYGEN)
def test_spo2_scale_2_on_oxygen(value: float, score: int) -> None:
    assert score_spo2(value, SpO2Scale.SCALE_2, supplemental_o2=True) == score


def test_spo2_scale_2_at_93_needs_air_or_oxygen() -> None:
    with pytest.raises(ValueError, match=r"spo2.*air or oxygen"):
        score_spo2(93, SpO2Scale.SCALE_2)
    assert score_spo2(92.4, SpO2Scale.SCALE_2) == 0  # rounds to 92: decidable


@pytest.mark.parametrize(("value", "score"), SYSTOLIC)
def test_systolic_bp_bands(value: float, score: int) -> None:
    assert score_systolic_bp(value) == score


@pytest.mark.parametrize(("value", "score"), PULSE)
def test_pulse_bands(value: float, score: int) -> None:
    assert score_pulse(value) == score


@pytest.mark.parametrize(("value", "score"), TEMPERATURE)
def test_temperature_bands(value: float, score: int) -> None:
    assert score_temperature(value) == score


@pytest.mark.parametrize(
    ("level", "score"),
    [(Consciousness.ALERT, 0), ("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3)],
)
def test_consciousness_acvpu(level: Consciousness | str, score: int) -> None:
    assert score_consciousness(level) == score


def test_air_or_oxygen() -> None:
    assert score_air_or_oxygen(False) == 0
    assert score_air_or_oxygen(True) == 2


@pytest.mark.parametrize(
    ("scorer", "value", "expected"),
    [
        # Half away from zero at the chart's resolution, in decimal.
        (score_respiration_rate, 20.4, 0),
        (score_respiration_rate, 20.5, 2),
        (score_respiration_rate, 8.49, 3),
        (score_respiration_rate, 8.5, 1),
        (score_respiration_rate, 24.5, 3),
        (score_temperature, 38.04, 0),
        (score_temperature, 38.05, 1),  # the binary float is 38.0499999...; charted 38.1
        (score_temperature, 35.05, 1),
        (score_temperature, 35.04, 3),
        (score_temperature, 39.05, 2),
        (score_pulse, 90.5, 1),
        (score_pulse, 130.49, 2),
        (score_systolic_bp, 110.5, 0),
        (score_systolic_bp, 219.5, 3),
    ],
)
def test_values_between_bands_round_to_chart_resolution(
    scorer: object, value: float, expected: int
) -> None:
    assert callable(scorer)
    assert scorer(value) == expected


def test_spo2_rounding_edges() -> None:
    assert score_spo2(95.5) == 0
    assert score_spo2(95.49) == 1
    assert score_spo2(87.5, SpO2Scale.SCALE_2) == 0
    assert score_spo2(96.5, SpO2Scale.SCALE_2, supplemental_o2=True) == 3


def test_chart_round_is_decimal_half_up() -> None:
    assert chart_round(Param.TEMPERATURE, 38.05) == pytest.approx(38.1)
    assert chart_round(Param.TEMPERATURE, 36.95) == pytest.approx(37.0)
    assert chart_round(Param.RESPIRATION_RATE, 12.5) == 13.0  # not banker's 12


@pytest.mark.parametrize(
    ("scorer", "value", "name"),
    [
        (score_respiration_rate, -1.0, "respiration_rate"),
        (score_respiration_rate, math.nan, "respiration_rate"),
        (score_spo2, 100.5, "spo2"),
        (score_spo2, -0.1, "spo2"),
        (score_systolic_bp, 400.0, "systolic_bp"),
        (score_pulse, math.inf, "pulse"),
        (score_pulse, -5.0, "pulse"),
        (score_temperature, 5.0, "temperature"),
        (score_temperature, 50.0, "temperature"),
    ],
)
def test_implausible_values_name_the_parameter(scorer: object, value: float, name: str) -> None:
    assert callable(scorer)
    with pytest.raises(ValueError, match=f"^{name}: "):
        scorer(value)


def test_consciousness_rejects_unknown_letter() -> None:
    with pytest.raises(ValueError, match="consciousness"):
        score_consciousness("X")


def test_bool_is_not_a_number() -> None:
    with pytest.raises(TypeError, match="pulse"):
        score_pulse(True)


# ---------------------------------------------------------------------- aggregate


def _obs(
    *,
    rr: float | None = 16,
    spo2: float | None = 97,
    o2: bool | None = False,
    sbp: float | None = 120,
    pulse: float | None = 70,
    acvpu: Consciousness | None = Consciousness.ALERT,
    temp: float | None = 37.0,
    scale: SpO2Scale = SpO2Scale.SCALE_1,
    t_s: float = 100.0,
    source: str = "manual",
) -> Observations:
    def ob(v: float | None) -> Observation[float] | None:
        return None if v is None else Observation(float(v), source, t_s)

    return Observations(
        respiration_rate_per_min=ob(rr),
        spo2_pct=ob(spo2),
        supplemental_o2=None if o2 is None else Observation(o2, source, t_s),
        systolic_bp_mmhg=ob(sbp),
        pulse_bpm=ob(pulse),
        consciousness=None if acvpu is None else Observation(acvpu, source, t_s),
        temperature_c=ob(temp),
        spo2_scale=scale,
    )


def test_all_normal_is_zero_low_risk_complete() -> None:
    r = news2(_obs(), now_s=100.0)
    assert r.total == 0
    assert r.complete
    assert r.missing == []
    assert r.stale == []
    assert [p.param for p in r.parameters] == list(Param)
    assert all(p.score == 0 and not p.stale for p in r.parameters)
    assert r.risk is ClinicalRisk.LOW
    assert not r.urgent
    assert not r.emergency
    assert not r.any_single_3


@pytest.mark.parametrize(
    ("kwargs", "total", "risk", "urgent", "emergency"),
    [
        # 4: RR 22 (2) + pulse 95 (1) + temp 38.5 (1): low
        ({"rr": 22, "pulse": 95, "temp": 38.5}, 4, ClinicalRisk.LOW, False, False),
        # a single red score (RR 7 -> 3) with total 3: low-medium, urgent ward response
        ({"rr": 7}, 3, ClinicalRisk.LOW_MEDIUM, True, False),
        # a red score from consciousness alone
        ({"acvpu": Consciousness.CONFUSION}, 3, ClinicalRisk.LOW_MEDIUM, True, False),
        # 5: on oxygen (2) + SpO2 93 scale 1 (2) + pulse 95 (1): medium
        ({"o2": True, "spo2": 93, "pulse": 95}, 5, ClinicalRisk.MEDIUM, True, False),
        # 6: medium
        ({"o2": True, "spo2": 93, "pulse": 115}, 6, ClinicalRisk.MEDIUM, True, False),
        # 7: high, emergency
        ({"o2": True, "spo2": 93, "pulse": 115, "temp": 38.5}, 7, ClinicalRisk.HIGH, True, True),
        # 20: the maximum of chart 1
        (
            {
                "rr": 30,
                "spo2": 85,
                "o2": True,
                "sbp": 80,
                "pulse": 150,
                "acvpu": Consciousness.UNRESPONSIVE,
                "temp": 34.0,
            },
            20,
            ClinicalRisk.HIGH,
            True,
            True,
        ),
    ],
)
def test_totals_and_triggers(
    kwargs: dict[str, object], total: int, risk: ClinicalRisk, urgent: bool, emergency: bool
) -> None:
    r = news2(_obs(**kwargs), now_s=100.0)  # type: ignore[arg-type]
    assert r.total == total
    assert r.risk is risk
    assert r.urgent is urgent
    assert r.emergency is emergency
    assert r.complete


def test_scale_2_on_oxygen_scores_both_rows() -> None:
    # Hypercapnic patient on oxygen at 97 %: SpO2 3 (over-oxygenated) + oxygen 2 = 5.
    r = news2(_obs(spo2=97, o2=True, scale=SpO2Scale.SCALE_2), now_s=100.0)
    assert r.scores[Param.SPO2] == 3
    assert r.scores[Param.AIR_OR_OXYGEN] == 2
    assert r.total == 5
    assert r.any_single_3
    assert r.spo2_scale is SpO2Scale.SCALE_2
    # Same saturation on air: 0.
    assert news2(_obs(spo2=97, o2=False, scale=SpO2Scale.SCALE_2), now_s=100.0).total == 0


@pytest.mark.parametrize(
    ("total", "red", "risk"),
    [
        (0, False, ClinicalRisk.LOW),
        (4, False, ClinicalRisk.LOW),
        (3, True, ClinicalRisk.LOW_MEDIUM),
        (4, True, ClinicalRisk.LOW_MEDIUM),
        (5, False, ClinicalRisk.MEDIUM),
        (6, True, ClinicalRisk.MEDIUM),
        (7, False, ClinicalRisk.HIGH),
        (20, True, ClinicalRisk.HIGH),
    ],
)
def test_clinical_risk_chart_2(total: int, red: bool, risk: ClinicalRisk) -> None:
    assert clinical_risk(total, any_single_3=red) is risk


def test_missing_parameters_give_a_partial_lower_bound() -> None:
    r = news2(_obs(sbp=None, acvpu=None, pulse=120), now_s=100.0)
    assert r.missing == [Param.SYSTOLIC_BP, Param.CONSCIOUSNESS]
    assert not r.complete
    assert r.total == 2  # pulse 120 only
    assert r.risk is ClinicalRisk.LOW
    assert [p.param for p in r.parameters] == [
        Param.RESPIRATION_RATE,
        Param.SPO2,
        Param.AIR_OR_OXYGEN,
        Param.PULSE,
        Param.TEMPERATURE,
    ]


def test_partial_total_still_triggers() -> None:
    r = news2(Observations(pulse_bpm=Observation(35.0, "ecg", 99.0)), now_s=100.0)
    assert r.total == 3
    assert not r.complete
    assert len(r.missing) == 6
    assert r.urgent
    assert r.risk is ClinicalRisk.LOW_MEDIUM


def test_nothing_observed() -> None:
    r = news2(Observations(), now_s=0.0)
    assert r.total is None
    assert r.risk is None
    assert not r.urgent
    assert not r.emergency
    assert r.missing == list(Param)
    assert r.parameters == []


def test_stale_parameters_are_shown_not_scored() -> None:
    obs = Observations(
        respiration_rate_per_min=Observation(30.0, "edr", 0.0),  # 100 s old > 60 s: stale
        pulse_bpm=Observation(120.0, "ecg", 95.0),  # 5 s old: fresh
        spo2_pct=Observation(90.0, "ble:plx:AA:BB", 69.0),  # 31 s old > 30 s: stale
        systolic_bp_mmhg=Observation(85.0, "manual", 100.0 - 4 * 3600.0),  # exactly 4 h: fresh
    )
    r = news2(obs, now_s=100.0)
    assert r.stale == [Param.RESPIRATION_RATE, Param.SPO2]
    by_param = {p.param: p for p in r.parameters}
    rr = by_param[Param.RESPIRATION_RATE]
    assert rr.stale
    assert rr.score is None
    assert rr.value == 30.0
    assert rr.age_s == pytest.approx(100.0)
    assert rr.source == "edr"
    assert "stale" in rr.note
    assert r.total == 2 + 3  # pulse 120 + SBP 85
    assert not r.complete
    assert r.urgent


def test_max_age_override() -> None:
    obs = Observations(respiration_rate_per_min=Observation(30.0, "edr", 0.0))
    assert news2(obs, now_s=100.0).total is None
    r = news2(obs, now_s=100.0, max_age_s={Param.RESPIRATION_RATE: 120.0})
    assert r.total == 3
    assert r.stale == []


def test_manual_values_age_slower_than_sensor_values() -> None:
    manual = Observations(pulse_bpm=Observation(70.0, "manual:station-3", 0.0))
    sensor = Observations(pulse_bpm=Observation(70.0, "ecg", 0.0))
    assert news2(manual, now_s=3600.0).stale == []
    assert news2(sensor, now_s=3600.0).stale == [Param.PULSE]


def test_future_timestamp_has_zero_age() -> None:
    r = news2(Observations(pulse_bpm=Observation(70.0, "ecg", 105.0)), now_s=100.0)
    assert r.parameters[0].age_s == 0.0
    assert r.total == 0


def test_scale_2_high_spo2_without_oxygen_status_is_unscored() -> None:
    obs = _obs(spo2=95, o2=None, scale=SpO2Scale.SCALE_2)
    r = news2(obs, now_s=100.0)
    assert Param.AIR_OR_OXYGEN in r.missing
    spo2 = next(p for p in r.parameters if p.param is Param.SPO2)
    assert spo2.score is None
    assert not spo2.stale
    assert r.unscored == [Param.SPO2]
    assert not r.complete
    assert r.total == 0


def test_scale_2_with_stale_oxygen_status_is_unscored() -> None:
    obs = Observations(
        spo2_pct=Observation(97.0, "ble:plx", 99.0),
        supplemental_o2=Observation(True, "manual", 100.0 - 5 * 3600.0),
        spo2_scale=SpO2Scale.SCALE_2,
    )
    r = news2(obs, now_s=100.0)
    assert r.stale == [Param.AIR_OR_OXYGEN]
    assert r.unscored == [Param.SPO2]
    assert r.total is None


def test_invalid_value_raises_even_when_stale() -> None:
    obs = Observations(spo2_pct=Observation(101.0, "ble:plx", 0.0))
    with pytest.raises(ValueError, match=r"^spo2: 101\.0 % is outside"):
        news2(obs, now_s=1000.0)
