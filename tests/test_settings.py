"""Settings from ``VIGIL_*`` variables: an unknown name within a known section (a typo, a
setting that was removed) fails at start-up naming the variable, like a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.settings import load_settings
from shared.settings import ConfigError


@pytest.mark.parametrize(
    "variable",
    ["VIGIL_NOTIFIER__CIRCUIT_FAILURES", "VIGIL_POLLER__USER_AGNET", "vigil_http__hots",
     "VIGIL_SMTP__SENDER", "VIGIL_BUS__BATCH"],
)  # fmt: skip
def test_an_unknown_setting_in_a_section_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "5")
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    assert str(caught.value) == (
        f"invalid configuration: {variable.upper()}: Extra inputs are not permitted"
    )


def test_an_unknown_setting_in_the_env_file_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("VIGIL_NOTIFIER__CONCURRENCY=8\nVIGIL_NOTIFIER__CIRCUIT_FAILURES=5\n")
    with pytest.raises(ConfigError, match="VIGIL_NOTIFIER__CIRCUIT_FAILURES: Extra inputs"):
        load_settings(_env_file=env_file)


def test_every_documented_spelling_is_still_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Aliases (``__FROM``, the old ``LEXICON_FILE``) and JSON values are settings too."""
    for name, value in {
        "VIGIL_SMTP__FROM": "alerts@example.org",
        "VIGIL_CLASSIFIER__LEXICON_FILE": "/srv/lexicon",
        "VIGIL_NOTIFIER__RETRY_SCHEDULE_SECONDS": "[1, 2]",
        "VIGIL_BUS": '{"concurrency": 3}',
        "VIGIL_NOT_A_SECTION": "ignored, like any variable outside the sections",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(_env_file=None)
    assert settings.smtp.from_ == "alerts@example.org"
    assert settings.classifier.lexicon_dir == Path("/srv/lexicon")
    assert settings.notifier.retry_schedule_seconds == [1.0, 2.0]
    assert settings.bus.concurrency == 3
