"""The classifier's settings (``VIGIL_CLASSIFIER__*``): detector threshold and lexicon."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field

from shared.settings import SettingsSection


class ClassifierSettings(SettingsSection):
    """Detector threshold and lexicon location."""

    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    lexicon_dir: Path | None = Field(
        default=None,
        # LEXICON_FILE is the name from when the lexicon was one file; still read.
        validation_alias=AliasChoices("lexicon_dir", "lexicon_file"),
        description="a lexicon folder (core.yaml and one LANG.yaml per language)",
    )
