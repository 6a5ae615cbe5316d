"""The poller's settings (``VIGIL_POLLER__*``): fetching and scheduling of sources."""

from __future__ import annotations

from pydantic import Field

from shared.settings import SettingsSection


class PollerSettings(SettingsSection):
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
