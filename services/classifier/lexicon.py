"""The detection lexicon: YAML data validated at load and compiled into fast matchers.

Every list of the lexicon becomes one compiled regular expression over *folded* text (see
:mod:`services.classifier.patterns`), so a document is scanned once per list, whatever the
number of patterns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.classifier.patterns import LabeledMatcher, fold, trie_regex
from shared.models import THEATERS, Theater

DEFAULT_LEXICON = Path(__file__).with_name("lexicon.yaml")
_PATTERN_SHAPE = re.compile(r"^(?:[\w'.&-]+\??[\w'.&-]*\*?)(?: [\w'.&-]+\??[\w'.&-]*\*?)*$")


class LexiconError(Exception):
    """The lexicon file is missing, not YAML, or not a valid lexicon (the message says where)."""


Patterns = list[str]


def _check_patterns(value: Patterns) -> Patterns:
    for pattern in value:
        if not pattern.strip() or not _PATTERN_SHAPE.match(fold(pattern.strip())):
            raise ValueError(f"bad pattern {pattern!r} (words, spaces, and ? or * inside a word)")
    return [p.strip() for p in value]


class _Military(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strong: Patterns = Field(min_length=1)
    weak: Patterns = Field(default_factory=list)

    _check = field_validator("strong", "weak")(_check_patterns)


class _Claimant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    turkish: bool = False
    media: bool = False
    patterns: Patterns = Field(min_length=1)

    _check = field_validator("patterns")(_check_patterns)


class LexiconFile(BaseModel):
    """The YAML document, validated."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=1)
    turkey: Patterns = Field(min_length=1)
    turkish_products: Patterns
    turkish_actors: Patterns = Field(min_length=1)
    turkish_forces: Patterns = Field(min_length=1)
    military: _Military
    arms_trade: Patterns
    off_topic: Patterns
    threat: Patterns
    denial: Patterns
    speech: Patterns
    theaters: dict[Theater, Patterns]
    abroad: Patterns
    domestic: Patterns
    claimants: list[_Claimant] = Field(min_length=1)

    _check = field_validator(
        "turkey", "turkish_products", "turkish_actors", "turkish_forces", "arms_trade", "off_topic", "threat",
        "denial", "speech", "abroad", "domestic",
    )(_check_patterns)  # fmt: skip

    @field_validator("theaters")
    @classmethod
    def _every_theater(cls, value: dict[Theater, Patterns]) -> dict[Theater, Patterns]:
        missing = [t for t in THEATERS if t not in value]
        if missing:
            raise ValueError(f"no places for theaters {missing}")
        return {theater: _check_patterns(places) for theater, places in value.items()}


@dataclass(frozen=True)
class Claimant:
    """Someone who can make a claim, and which side they speak for."""

    name: str
    turkish: bool
    media: bool


@dataclass(frozen=True)
class Lexicon:
    """Compiled matchers, ready for the detector."""

    turkey: re.Pattern[str]
    mentions: re.Pattern[str]
    turkish_actors: re.Pattern[str]
    turkish_forces: re.Pattern[str]
    military_strong: re.Pattern[str]
    military_weak: re.Pattern[str]
    arms_trade: re.Pattern[str]
    off_topic: re.Pattern[str]
    threat: re.Pattern[str]
    denial: re.Pattern[str]
    speech: re.Pattern[str]
    abroad: re.Pattern[str]
    domestic: re.Pattern[str]
    places: LabeledMatcher[Theater]
    claimants: LabeledMatcher[Claimant]

    @classmethod
    def compile(cls, data: LexiconFile) -> Lexicon:
        place_theater = {p: t for t, places in data.theaters.items() for p in places}
        claimant_of: dict[str, Claimant] = {}
        for entry in data.claimants:
            who = Claimant(entry.name, entry.turkish, entry.media)
            for pattern in entry.patterns:
                claimant_of.setdefault(pattern, who)
        return cls(
            turkey=trie_regex(data.turkey + data.turkish_products),
            mentions=trie_regex(data.turkey),
            turkish_actors=trie_regex(data.turkish_actors),
            turkish_forces=trie_regex(data.turkish_forces),
            military_strong=trie_regex(data.military.strong),
            military_weak=trie_regex(data.military.weak),
            arms_trade=trie_regex(data.arms_trade),
            off_topic=trie_regex(data.off_topic),
            threat=trie_regex(data.threat),
            denial=trie_regex(data.denial),
            speech=trie_regex(data.speech),
            abroad=trie_regex(data.abroad),
            domestic=trie_regex(data.domestic),
            places=LabeledMatcher.build(place_theater),
            claimants=LabeledMatcher.build(claimant_of),
        )


def load_lexicon(path: Path | None = None) -> Lexicon:
    """Read, validate and compile a lexicon; the bundled one when ``path`` is None."""
    path = path or DEFAULT_LEXICON
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise LexiconError(f"{path}: cannot read lexicon: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise LexiconError(f"{path}: not valid YAML: {error}") from error
    try:
        data = LexiconFile.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise LexiconError(f"{path}: {where}: {first['msg']}") from error
    try:
        return Lexicon.compile(data)
    except re.error as error:
        raise LexiconError(f"{path}: a pattern does not compile: {error}") from error
