"""The notifier's settings: delivery (``VIGIL_NOTIFIER__*``) and outgoing mail
(``VIGIL_SMTP__*``)."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from shared.settings import SettingsSection


class SmtpSettings(SettingsSection):
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


class NotifierSettings(SettingsSection):
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
