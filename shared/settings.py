"""Configuration from ``VIGIL_*`` environment variables and an optional ``.env`` file.

Names here are a contract with operators (see the design's settings table): keep them.
Invalid values fail at start-up with a message naming the field (:func:`load_settings`).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from dotenv import dotenv_values
from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from shared.redis_url import parse_redis_url


class ConfigError(Exception):
    """Configuration that cannot be used; its message names the offending field or file."""


class HttpSettings(BaseModel):
    """Where health, metrics and the admin API listen."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class SmtpSettings(BaseModel):
    """Outgoing mail."""

    host: str = "localhost"
    port: int = Field(default=25, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["none", "starttls", "tls"] = "none"
    from_: str = Field(default="vigil@localhost", alias="from")
    timeout_seconds: float = Field(default=30.0, gt=0)
    ca_file: Path | None = Field(
        default=None, description="CA bundle to verify the server's certificate (private CAs)"
    )

    model_config = {"populate_by_name": True}

    @model_validator(mode="after")
    def _no_clear_text_password(self) -> SmtpSettings:
        """A password over an unencrypted connection could be read by anyone on the path."""
        if self.password is not None and self.security == "none" and not _is_loopback(self.host):
            raise ValueError(
                f"a password with security=none would cross the network to {self.host} in "
                "clear text: set VIGIL_SMTP__SECURITY to starttls or tls"
            )
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class LogSettings(BaseModel):
    """Log rendering: JSON lines for machines, console for people."""

    format: Literal["console", "json", "auto"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class BusSettings(BaseModel):
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


class PollerSettings(BaseModel):
    """Fetching and scheduling of sources."""

    default_interval_seconds: float = Field(default=300.0, ge=1)
    min_interval_seconds: float = Field(default=30.0, ge=0.1)
    max_interval_seconds: float = Field(default=3600.0, ge=1)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    total_timeout_seconds: float = Field(default=30.0, gt=0)
    max_redirects: int = Field(default=5, ge=0, le=20)
    global_concurrency: int = Field(default=64, ge=1)
    per_host_concurrency: int = Field(default=2, ge=1)
    dedupe_ttl_days: float = Field(default=30.0, gt=0)
    user_agent: str = "Vigil/0.1 (+https://github.com/vigil-news/vigil; news monitoring)"
    # Poller (issue 3): read timeout, retries, memory bounds and WebSub.
    read_timeout_seconds: float = Field(default=15.0, gt=0)
    retry_base_seconds: float = Field(default=15.0, gt=0)
    dedupe_max_entries: int = Field(default=2_000_000, ge=1000)
    future_skew_seconds: float = Field(default=600.0, ge=0)
    websub_callback_url: str | None = Field(
        default=None, description="public base URL of this poller's HTTP server, for WebSub"
    )
    websub_lease_seconds: int = Field(default=86_400, ge=60)
    # Poller (issue 17): CPU work off the event loop, memory bounded under big documents.
    parse_workers: int = Field(
        default=2, ge=1, le=64, description="threads that parse documents and build articles"
    )
    large_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="a body past this size waits for one of parse_workers large-body slots",
    )


class ClassifierSettings(BaseModel):
    """Detector threshold and lexicon location."""

    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    lexicon_dir: Path | None = Field(
        default=None,
        # LEXICON_FILE is the name from when the lexicon was one file; still read.
        validation_alias=AliasChoices("lexicon_dir", "lexicon_file"),
        description="a lexicon folder (core.yaml and one LANG.yaml per language)",
    )


class NotifierSettings(BaseModel):
    """Delivery behaviour."""

    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    chat_timeout_seconds: float = Field(
        default=10.0, gt=0, description="connect and read timeouts of one chat notification"
    )
    retry_schedule_seconds: list[float] = Field(
        default=[5, 300, 1800, 7200, 18000, 36000, 86400], min_length=1
    )
    retry_jitter: float = Field(default=0.2, ge=0.0, lt=1.0, description="+/- fraction")
    dedupe_ttl_days: float = Field(default=7.0, gt=0)
    concurrency: int = Field(default=64, ge=1, le=10_000)
    poll_interval_seconds: float = Field(
        default=1.0, gt=0, description="how often due retries are looked for"
    )
    # The endpoint policy (services/notifier/policy.py, docs/notifier.md).
    circuit_window_seconds: float = Field(
        default=600.0, gt=0, description="how far back the breaker looks at attempts"
    )
    circuit_min_attempts: int = Field(
        default=10, ge=1, description="attempts in the window before the breaker may open"
    )
    circuit_failure_ratio: float = Field(
        default=0.5, gt=0.0, le=1.0, description="share of failed attempts that opens it"
    )
    circuit_min_failing_periods: int = Field(
        default=3,
        ge=1,
        le=10,
        description="tenths of the window with a failure (one burst never opens the breaker)",
    )
    circuit_open_seconds: float = Field(
        default=300.0, gt=0, description="how long an open circuit waits before a probe"
    )
    circuit_disable_after_seconds: float = Field(
        default=5 * 86_400.0,
        gt=0,
        description="an endpoint whose every probe failed for this long is disabled",
    )
    lease_margin_seconds: float = Field(
        default=15.0, gt=0, description="a claimed job returns if unsettled this long after a send"
    )
    unsubscribe_url: str | None = Field(
        default=None, description="base URL for email List-Unsubscribe links"
    )
    delivery_log_length: int = Field(
        default=1000, ge=10, description="attempts kept per subscriber for the console's log"
    )


class ArchiveSettings(BaseModel):
    """The alert archive the console reads (services/archive): how much history Redis keeps."""

    days: float = Field(default=30.0, gt=0, description="alerts older than this are dropped")
    max_alerts: int = Field(
        default=100_000, ge=100, description="the oldest alerts beyond this many are dropped"
    )
    trim_interval_seconds: float = Field(default=60.0, gt=0)


class ConsoleSettings(BaseModel):
    """The web console served next to the admin API (services/console)."""

    session_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="a login lasts this long"
    )
    login_attempts: int = Field(
        default=10, ge=1, description="failed logins per address in 10 minutes before a pause"
    )


class Settings(BaseSettings):
    """Everything a Vigil process can be told; see the README for each variable."""

    model_config = SettingsConfigDict(
        env_prefix="VIGIL_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    redis_url: str | None = None
    data_dir: Path = Path(".vigil")
    sources_file: Path | None = None
    subscriptions_file: Path | None = None
    allow_private_targets: bool = False
    admin_token: SecretStr | None = None
    consumer_name: str = Field(
        default_factory=socket.gethostname,
        description="stable per replica, so a restarted consumer resumes its own pending entries",
    )
    http: HttpSettings = HttpSettings()
    smtp: SmtpSettings = SmtpSettings()
    log: LogSettings = LogSettings()
    bus: BusSettings = BusSettings()
    poller: PollerSettings = PollerSettings()
    classifier: ClassifierSettings = ClassifierSettings()
    notifier: NotifierSettings = NotifierSettings()
    archive: ArchiveSettings = ArchiveSettings()
    console: ConsoleSettings = ConsoleSettings()

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        """One of the forms of :mod:`shared.redis_url`; the message never repeats the URL."""
        if value:
            parse_redis_url(value)  # raises RedisUrlError (a ValueError) naming the problem
        return value or None


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


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, raising :class:`ConfigError` on invalid values."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(f"invalid configuration: {describe_validation_error(error)}") from error
    except SettingsError as error:
        # pydantic-settings names only the top-level field ("notifier"): find the variable.
        raise ConfigError(f"invalid configuration: {_unparsable_variable(error)}") from error


def _unparsable_variable(error: SettingsError) -> str:
    """``VIGIL_X__Y: not valid JSON (...)`` for the variable a JSON-valued setting failed on."""
    for name, value in _variables():
        path = name.removeprefix("VIGIL_").lower().split("__")
        if _takes_json(path):
            try:
                json.loads(value)
            except ValueError as bad:
                return f"{name}: not valid JSON ({bad})"
    return str(error)


def _variables() -> Iterator[tuple[str, str]]:
    """``VIGIL_*`` variables from the environment, then from ``.env`` (the environment wins)."""
    seen = set()
    for name, value in os.environ.items():
        if name.upper().startswith("VIGIL_"):
            seen.add(name.upper())
            yield name.upper(), value
    env_file = Path(str(Settings.model_config.get("env_file") or ".env"))
    if env_file.is_file():
        for name, stored in dotenv_values(env_file).items():
            if name.upper().startswith("VIGIL_") and name.upper() not in seen and stored:
                yield name.upper(), stored


def _takes_json(path: list[str]) -> bool:
    """Whether the setting at ``path`` (e.g. ``["notifier", "retry_schedule_seconds"]``) is a
    list, a mapping or a nested model, which pydantic-settings parses as JSON."""
    model: Any = Settings
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
