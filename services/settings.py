"""The root settings: what every process is told (:mod:`shared.settings`) plus each service's
section, read from ``VIGIL_*`` variables and ``.env``.

Names are a contract with operators (see the design's settings table): keep them. Invalid values
fail at start-up with a message naming the field (:func:`load_settings`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from services.archive.settings import ArchiveSettings
from services.classifier.settings import ClassifierSettings
from services.console.settings import ConsoleSettings
from services.notifier.settings import NotifierSettings, SmtpSettings
from services.poller.settings import PollerSettings
from shared.settings import ProcessSettings, load_from_environment


class Settings(ProcessSettings):
    """Everything a Vigil process can be told; see the README for each variable."""

    sources_file: Path | None = None
    subscriptions_file: Path | None = None
    allow_private_targets: bool = False
    admin_token: SecretStr | None = None
    smtp: SmtpSettings = SmtpSettings()
    poller: PollerSettings = PollerSettings()
    classifier: ClassifierSettings = ClassifierSettings()
    notifier: NotifierSettings = NotifierSettings()
    archive: ArchiveSettings = ArchiveSettings()
    console: ConsoleSettings = ConsoleSettings()


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, raising ``ConfigError`` on invalid values."""
    return load_from_environment(Settings, **overrides)
