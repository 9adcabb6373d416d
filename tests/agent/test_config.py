from pathlib import Path

import pytest

from agent.config import AgentConfig, load_config, parse_mqtt_url
from agent.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bedside.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_are_a_working_config() -> None:
    cfg = load_config()
    assert cfg.source.kind == "simulate"
    assert cfg.dsp.powerline_hz == 50
    assert cfg.mqtt.port == 1883


def test_unknown_key_names_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "[alarms]\nhr_hihg_bpm = 130\n")
    with pytest.raises(ConfigError, match=r"alarms\.hr_hihg_bpm") as info:
        load_config(path)
    assert info.value.field == "alarms.hr_hihg_bpm"


def test_out_of_range_names_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "[alarms]\nhr_high_bpm = 900\n")
    with pytest.raises(ConfigError, match=r"alarms\.hr_high_bpm: Input should be less"):
        load_config(path)


def test_cross_field_rule(tmp_path: Path) -> None:
    path = _write(tmp_path, "[alarms]\nhr_low_bpm = 100\nhr_high_bpm = 90\n")
    with pytest.raises(ConfigError, match="extreme_brady_bpm < hr_low_bpm"):
        load_config(path)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[alarms\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_precedence_flags_over_env_over_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "[source]\nspeed = 3\n[alarms]\nhr_high_bpm = 130\n")
    assert load_config(path).source.speed == 3
    monkeypatch.setenv("BEDSIDE_SOURCE__SPEED", "7")
    cfg = load_config(path)
    assert cfg.source.speed == 7
    assert cfg.alarms.hr_high_bpm == 130
    assert load_config(path, {"source.speed": 50}).source.speed == 50


def test_replay_needs_record() -> None:
    with pytest.raises(ConfigError, match=r"source\.record is required"):
        load_config(overrides={"source.kind": "replay"})


def test_bed_segments_refuse_wildcards() -> None:
    with pytest.raises(ConfigError, match="unit must be"):
        load_config(overrides={"bed.unit": "ward/#"})


def test_mqtt_url() -> None:
    assert parse_mqtt_url("mqtt://broker.local") == ("broker.local", 1883)
    assert parse_mqtt_url("mqtt://127.0.0.1:2883") == ("127.0.0.1", 2883)
    with pytest.raises(ValueError, match="mqtt://HOST"):
        parse_mqtt_url("http://x")
    with pytest.raises(ConfigError, match=r"mqtt\.url"):
        load_config(overrides={"mqtt.url": "tcp://x:1"})


def test_password_needs_user() -> None:
    with pytest.raises(ConfigError, match="username"):
        load_config(overrides={"mqtt.password": "s"})
    assert AgentConfig.model_validate({"mqtt": {"username": "u", "password": "s"}}).mqtt.username


def test_shipped_examples_are_valid() -> None:
    from agent.config import load_config
    from tests.conftest import REPO_ROOT

    for name in ("bedside.toml", "ble-bed.toml"):
        cfg = load_config(REPO_ROOT / "examples" / name)
        assert cfg.bed.unit == "ward1"
    ble = load_config(REPO_ROOT / "examples" / "ble-bed.toml")
    assert [d.kind for d in ble.source.devices] == ["polar_h10", "plx", "thermometer"]


def test_an_optional_limit_is_switched_off_with_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TOML and environment variables cannot write None: "off" switches a test off; any other
    word still names the field."""
    cfg = load_config(
        _write(
            tmp_path,
            '[alarms.ectopy]\nrun_onset_premature = "off"\nv_template_match = "Off"\n'
            '[inference]\ns_premature = "none"\n',
        )
    )
    assert cfg.alarms.ectopy.run_onset_premature is None
    assert cfg.alarms.ectopy.v_template_match is None
    assert cfg.inference.s_premature is None
    assert load_config().alarms.ectopy.run_onset_premature == 0.9
    monkeypatch.setenv("BEDSIDE_INFERENCE__S_PREMATURE", "off")
    assert load_config().inference.s_premature is None
    bad = _write(tmp_path, '[alarms.ectopy]\nrun_onset_premature = "early"\n')
    with pytest.raises(ConfigError, match=r"alarms\.ectopy\.run_onset_premature"):
        load_config(bad)
