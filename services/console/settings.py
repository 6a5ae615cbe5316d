"""The console's settings (``VIGIL_CONSOLE__*``): sessions and login throttling."""

from __future__ import annotations

from pydantic import Field

from shared.settings import SettingsSection


class ConsoleSettings(SettingsSection):
    """The web console served next to the admin API (services/console)."""

    session_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="a login lasts this long"
    )
    login_attempts: int = Field(
        default=10, ge=1, description="failed logins per address in 10 minutes before a pause"
    )
