"""The archive's settings (``VIGIL_ARCHIVE__*``): how much alert history Redis keeps."""

from __future__ import annotations

from pydantic import Field

from shared.settings import SettingsSection


class ArchiveSettings(SettingsSection):
    """The alert archive the console reads (services/archive): how much history Redis keeps."""

    days: float = Field(default=30.0, gt=0, description="alerts older than this are dropped")
    max_alerts: int = Field(
        default=100_000, ge=100, description="the oldest alerts beyond this many are dropped"
    )
    trim_interval_seconds: float = Field(default=60.0, gt=0)
