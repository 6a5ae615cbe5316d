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

from services.classifier.patterns import Scanner, fold, trie_regex
from shared.models import THEATERS, Theater
from shared.settings import describe_validation_error

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
    turkish_reaction: Patterns
    claimants: list[_Claimant] = Field(min_length=1)

    _check = field_validator(
        "turkey", "turkish_products", "turkish_actors", "turkish_forces", "arms_trade",
        "off_topic", "threat", "denial", "speech", "abroad", "domestic", "turkish_reaction",
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
    """Compiled matchers, ready for the detector.

    ``prefilter`` finds any mention of Turkey (the cheap first test); ``scanner`` finds every
    other list in one pass, as :class:`Hit` kinds named after the lists: ``mentions``,
    ``actors``, ``forces``, ``strong``, ``weak``, ``arms_trade``, ``off_topic``, ``threat``,
    ``denial``, ``speech``, ``abroad``, ``domestic``, ``reaction``, ``place`` (labelled with
    its theater)
    and ``claimant`` (labelled with a :class:`Claimant`).
    """

    prefilter: re.Pattern[str]
    scanner: Scanner

    @classmethod
    def compile(cls, data: LexiconFile) -> Lexicon:
        claimant_of: dict[str, object] = {}
        for entry in data.claimants:
            who = Claimant(entry.name, entry.turkish, entry.media)
            for pattern in entry.patterns:
                claimant_of.setdefault(pattern, who)
        plain = {
            # First: a place inside Turkey covers the Turkish words it contains (the detector
            # drops the mentions, actors and places that such a phrase holds).
            "domestic": data.domestic, "reaction": data.turkish_reaction,
            "mentions": data.turkey, "actors": data.turkish_actors, "forces": data.turkish_forces,
            "strong": data.military.strong, "weak": data.military.weak,
            "arms_trade": data.arms_trade, "off_topic": data.off_topic, "threat": data.threat,
            "denial": data.denial, "speech": data.speech, "abroad": data.abroad,
        }  # fmt: skip
        kinds: dict[str, dict[str, object]] = {
            kind: dict.fromkeys(patterns, True) for kind, patterns in plain.items()
        }
        kinds["place"] = {p: t for t, places in data.theaters.items() for p in places}
        kinds["claimant"] = claimant_of
        return cls(
            prefilter=trie_regex(data.turkey + data.turkish_products),
            scanner=Scanner.build(kinds),
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
        raise LexiconError(f"{path}: {describe_validation_error(error, prefix='')}") from error
    try:
        return Lexicon.compile(data)
    except re.error as error:
        raise LexiconError(f"{path}: a pattern does not compile: {error}") from error
