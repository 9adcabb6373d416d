"""Settings of the web central station: broker, TLS, database, retention, HTTP.

Read from a TOML file (``bedside station --config FILE``) and ``BEDSIDE_STATION_*`` environment
variables (nested with ``__``: ``BEDSIDE_STATION_MQTT__PASSWORD``). Secrets (the MQTT password)
may also come from a file (``password_file``) so they stay out of the process list and logs.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.errors import ConfigError

__all__ = [
    "DEFAULT_DB_URL",
    "HttpSettings",
    "MqttSettings",
    "RetentionSettings",
    "StationConfig",
    "load_station_config",
]

DEFAULT_DB_URL: Final = "sqlite:///bedside-station.sqlite3"
"""One ward: an embedded SQLite file in the working directory."""


class MqttSettings(BaseModel):
    """How the station reaches the broker (MQTT v5).

    ``share_group`` names the MQTT v5 shared subscription (``$share/GROUP/...``) through which
    alarm events and vitals are written to the database: with several station processes in one
    group, the broker hands each message to one of them, so each event is stored once.
    """

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = Field(default=None, description="File holding the password.")
    ca_file: Path | None = Field(default=None, description="Site CA (PEM): turns TLS on.")
    cert_file: Path | None = Field(default=None, description="Station client certificate (PEM).")
    key_file: Path | None = Field(default=None, description="Key of the client certificate.")
    share_group: str = Field(default="bedside-stations", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    keepalive_s: int = Field(default=15, ge=5, le=600)

    def resolved_password(self) -> str | None:
        """Return the password (from ``password`` or ``password_file``), or None.

        Raises
        ------
        ConfigError
            If ``password_file`` cannot be read.
        """
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is None:
            return None
        try:
            return self.password_file.read_text(encoding="utf-8").strip()
        except OSError as err:
            msg = f"cannot read mqtt.password_file {self.password_file}: {err.strerror}"
            raise ConfigError(msg, "mqtt.password_file") from err


class RetentionSettings(BaseModel):
    """How long the database keeps what (raw ECG strips are large; trends are small)."""

    model_config = ConfigDict(extra="forbid")

    strip_days: float = Field(default=30.0, gt=0, description="ECG strips of alarm evidence.")
    trend_days: float = Field(default=365.0, gt=0, description="HR / SpO2 / NEWS2 trend rows.")
    trend_period_s: float = Field(
        default=10.0, gt=0, description="One trend row per bed at most this often, s."
    )


class HttpSettings(BaseModel):
    """Where the web station listens; HTTPS when a certificate and key are given."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    cert_file: Path | None = None
    key_file: Path | None = None
    session_hours: float = Field(default=12.0, gt=0, description="Login lifetime (one shift).")


class StationConfig(BaseSettings):
    """The whole station configuration."""

    model_config = SettingsConfigDict(
        env_prefix="BEDSIDE_STATION_", env_nested_delimiter="__", extra="forbid"
    )

    station_id: str = Field(default="station-1", pattern=r"^[A-Za-z0-9_.:@-]{1,64}$")
    db_url: str = DEFAULT_DB_URL
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)


def load_station_config(path: Path | None, **overrides: object) -> StationConfig:
    """Load the TOML file (if any), the environment, then ``overrides`` (highest).

    Raises
    ------
    ConfigError
        If the file cannot be read or parsed, or a value is invalid.
    """
    data: dict[str, object] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            msg = f"cannot read station config {path}: {err.strerror}"
            raise ConfigError(msg) from err
        except tomllib.TOMLDecodeError as err:
            msg = f"station config {path} is not valid TOML: {err}"
            raise ConfigError(msg) from err
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, name = key.partition("__")
        if name:
            sub = data.setdefault(section, {})
            if isinstance(sub, dict):
                sub[name] = value
        else:
            data[key] = value
    try:
        return StationConfig(**data)  # type: ignore[arg-type]
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        msg = f"station config: {where}: {first['msg']}"
        raise ConfigError(msg, where) from err
