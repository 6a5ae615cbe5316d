"""Configuration from ``VIGIL_*`` environment variables and an optional ``.env`` file: what every
Vigil process is told (Redis, HTTP, logs, the stream bus) and how settings are loaded.

Each service's own section lives in its package (``services/<service>/settings.py``); the root
settings that compose them all are ``services.settings.Settings``. Names here are a contract with
operators (see the design's settings table): keep them. Invalid values fail at start-up with a
message naming the field (:func:`load_from_environment`).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from shared.redis_url import parse_redis_url


class ConfigError(Exception):
    """Configuration that cannot be used; its message names the offending field or file."""


class SettingsSection(BaseModel):
    """One ``VIGIL_SECTION__*`` group: an unknown key in it (a typo, a removed setting) fails
    like a bad value, naming the variable, instead of being silently ignored."""

    model_config = ConfigDict(extra="forbid")


class HttpSettings(SettingsSection):
    """Where health, metrics and the admin API listen."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class LogSettings(SettingsSection):
    """Log rendering: JSON lines for machines, console for people."""

    format: Literal["console", "json", "auto"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class BusSettings(SettingsSection):
    """Stream bus behaviour shared by every consumer."""

    stream_maxlen: int = Field(default=100_000, ge=100)
    dead_maxlen: int = Field(default=100_000, ge=100)
    batch_size: int = Field(default=32, ge=1, le=1000)
    concurrency: int = Field(default=16, ge=1, le=1000)
    block_ms: int = Field(default=2000, ge=10, le=60_000)
    claim_idle_ms: int = Field(default=60_000, ge=100)
    claim_interval_seconds: float = Field(default=5.0, gt=0)
    max_deliveries: int = Field(default=5, ge=1)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    consumer_idle_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="a consumer idle this long with nothing pending is removed",
    )
    consumer_sweep_seconds: float = Field(
        default=300.0, gt=0, description="how often each consumer looks for such consumers"
    )
    wait_replicas: int = Field(
        default=0,
        ge=0,
        description="replicas that must acknowledge a relied-on write (WAIT, shared/durability.py)",
    )
    wait_timeout_ms: int = Field(default=500, ge=1, le=60_000)


class ProcessSettings(BaseSettings):
    """What every Vigil process is told: where Redis is, where it listens, how it logs and how
    its stream consumers behave. The root settings add each service's section."""

    model_config = SettingsConfigDict(
        env_prefix="VIGIL_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    redis_url: str | None = None
    data_dir: Path = Path(".vigil")
    consumer_name: str = Field(
        default_factory=socket.gethostname,
        description="stable per replica, so a restarted consumer resumes its own pending entries",
    )
    http: HttpSettings = HttpSettings()
    log: LogSettings = LogSettings()
    bus: BusSettings = BusSettings()

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        """One of the forms of :mod:`shared.redis_url`; the message never repeats the URL."""
        if value:
            parse_redis_url(value)  # raises RedisUrlError (a ValueError) naming the problem
        return value or None


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def describe_validation_error(error: ValidationError, prefix: str = "VIGIL_") -> str:
    """One line naming each bad field as the operator wrote it, e.g. ``VIGIL_HTTP__PORT``."""
    parts = []
    for item in error.errors():
        name = (
            prefix + "__".join(str(p) for p in item["loc"]).upper()
            if prefix
            else ".".join(str(p) for p in item["loc"])
        )
        parts.append(f"{name}: {item['msg']}")
    return "; ".join(parts)


def load_from_environment(model: type[SettingsT], **overrides: object) -> SettingsT:
    """Read ``model`` from the environment, raising :class:`ConfigError` on invalid values."""
    try:
        return model(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(f"invalid configuration: {describe_validation_error(error)}") from error
    except SettingsError as error:
        # pydantic-settings names only the top-level field ("notifier"): find the variable.
        raise ConfigError(f"invalid configuration: {_unparsable_variable(model, error)}") from error


def _unparsable_variable(model: type[BaseSettings], error: SettingsError) -> str:
    """``VIGIL_X__Y: not valid JSON (...)`` for the variable a JSON-valued setting failed on."""
    for name, value in _variables(model):
        path = name.removeprefix("VIGIL_").lower().split("__")
        if _takes_json(model, path):
            try:
                json.loads(value)
            except ValueError as bad:
                return f"{name}: not valid JSON ({bad})"
    return str(error)


def _variables(model: type[BaseSettings]) -> Iterator[tuple[str, str]]:
    """``VIGIL_*`` variables from the environment, then from ``.env`` (the environment wins)."""
    seen = set()
    for name, value in os.environ.items():
        if name.upper().startswith("VIGIL_"):
            seen.add(name.upper())
            yield name.upper(), value
    env_file = Path(str(model.model_config.get("env_file") or ".env"))
    if env_file.is_file():
        for name, stored in dotenv_values(env_file).items():
            if name.upper().startswith("VIGIL_") and name.upper() not in seen and stored:
                yield name.upper(), stored


def _takes_json(model: Any, path: list[str]) -> bool:
    """Whether the setting at ``path`` (e.g. ``["notifier", "retry_schedule_seconds"]``) of
    ``model`` is a list, a mapping or a nested model, which pydantic-settings parses as JSON."""
    annotation: Any = None
    for part in path:
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return False
        annotation = fields[part].annotation
        model = annotation
    candidates = [annotation, *get_args(annotation)]
    return any(
        get_origin(c) in (list, dict) or (isinstance(c, type) and issubclass(c, BaseModel))
        for c in candidates
    )
