"""One YAML loader: a bad field in any kind of file Vigil reads is named by file, line and
field (``vigil subscriptions apply`` documents: tests/test_operator_cli.py)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from services.classifier.lexicon import DEFAULT_LEXICON, LexiconError, load_lexicon
from services.notifier.subscriptions import load_subscriptions
from services.poller.sources import load_sources
from shared.settings import ConfigError
from shared.yamlfile import YamlError, load_yaml, parse_yaml


class _Target(BaseModel):
    host: str
    port: int = Field(ge=1)


class _Config(BaseModel):
    name: str
    targets: list[_Target]


DOCUMENT = """\
# a comment
name: demo
targets:
  - host: a.example
    port: 80
  - host: b.example
    port: 0
  - port: 81
"""


def test_each_problem_names_file_line_and_field() -> None:
    with pytest.raises(YamlError) as caught:
        parse_yaml(DOCUMENT, "demo.yaml").validate(_Config)
    assert str(caught.value) == (
        "demo.yaml:7: targets[1].port: Input should be greater than or equal to 1; "
        "demo.yaml:8: targets[2].host: Field required"
    )


def test_a_syntax_error_and_an_unreadable_file_are_named_too(tmp_path: Path) -> None:
    with pytest.raises(YamlError, match=r"^x\.yaml:3: not valid YAML: "):
        parse_yaml("name: demo\ntargets:\n  - [unclosed\n", "x.yaml")
    with pytest.raises(YamlError, match=r"missing\.yaml: cannot read: No such file"):
        load_yaml(tmp_path / "missing.yaml", _Config)
    assert isinstance(YamlError("x"), ConfigError), "CLIs print it as one line"


@pytest.mark.parametrize(
    ("name", "text", "load", "expected"),
    [
        ("sources.yaml",
         "sources:\n  - id: a\n    url: https://a.example/feed\n"
         "  - id: b\n    url: https://b.example/feed\n    interval: soon\n",
         load_sources, ":6: sources[1].interval: Input should be a valid number"),
        ("subscriptions.yaml",
         "subscriptions:\n  - id: desk\n    channel: console\n    filters:\n"
         "      theaters: [libya]\n      min_score: 7\n",
         load_subscriptions, ":6: subscriptions[0].filters.min_score: Input should be less"),
    ],
)  # fmt: skip
def test_sources_and_subscriptions_files(
    tmp_path: Path, name: str, text: str, load: Callable[[Path], object], expected: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}{expected}")


def test_lexicon_files(tmp_path: Path) -> None:
    lexicon = shutil.copytree(DEFAULT_LEXICON, tmp_path / "lexicon")
    (lexicon / "xx.yaml").write_text("language: xx\nmilitary:\n  strong:\n  - tro*ops\n")
    with pytest.raises(LexiconError, match=r"xx\.yaml:3: military\.strong: bad pattern"):
        load_lexicon(lexicon)
    (lexicon / "xx.yaml").unlink()
    core = lexicon / "core.yaml"
    core.write_text(core.read_text(encoding="utf-8").replace("version: 2", "version: two"))
    with pytest.raises(LexiconError, match=r"core\.yaml:2: version: Input should be"):
        load_lexicon(lexicon)
