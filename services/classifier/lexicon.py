"""The detection lexicon: YAML data validated at load and compiled into fast matchers.

Every list of the lexicon becomes one compiled regular expression over *folded* text (see
:func:`fold`), so a document is scanned once per list, whatever the number of patterns.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.models import THEATERS, Theater

DEFAULT_LEXICON = Path(__file__).with_name("lexicon.yaml")
_PATTERN_SHAPE = re.compile(r"^(?:[\w'.&-]+\??[\w'.&-]*\*?)(?: [\w'.&-]+\??[\w'.&-]*\*?)*$")


class LexiconError(Exception):
    """The lexicon file is missing, not YAML, or not a valid lexicon (the message says where)."""


@cache
def _fold_table() -> dict[int, str]:
    """Lowercase, drop diacritics and unify Turkish/Cyrillic letters, one char for one char.

    Keeping the length lets positions in folded text point into the original text.
    """
    table: dict[int, str] = {}
    for code in range(0x20, 0x530):
        char = chr(code)
        lowered = char.lower()
        base = unicodedata.normalize("NFKD", lowered)
        base = "".join(c for c in base if not unicodedata.combining(c)) or lowered
        folded = base[0] if len(base) == 1 else lowered[0]
        if folded != char:
            table[code] = folded
    table.update({ord("İ"): "i", ord("ı"): "i", ord("I"): "i", ord("ё"): "е", ord("Ё"): "е"})
    table.update({ord("й"): "и", ord("Й"): "и"})
    table.update({ord(c): "'" for c in "’‘`´ʼ"})
    table.update({ord(c): "-" for c in "‐‑‒–—"})
    return table


def fold(text: str) -> str:
    """Text ready for matching: ``Türkiye’nin`` → ``turkiye'nin``; same length as the input."""
    return text.translate(_fold_table())


def _pattern_regex(pattern: str) -> str:
    """One lexicon pattern as a regular expression (syntax in lexicon.yaml's header)."""
    parts = []
    for word in fold(pattern).split():
        stem = re.escape(word.rstrip("*")).replace(r"\?", r"\w?").replace(r"\-", r"[\s-]*")
        parts.append(stem + (r"\w*" if word.endswith("*") else ""))
    ending = "" if pattern.endswith("*") else r"(?!\w)"
    return r"(?<!\w)" + r"[\s-]+".join(parts) + ending


def compile_patterns(patterns: list[str]) -> re.Pattern[str]:
    """All patterns of one list as a single alternation, longest first."""
    ordered = sorted(set(patterns), key=len, reverse=True)
    return re.compile("|".join(_pattern_regex(p) for p in ordered))


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
    claimants: list[_Claimant] = Field(min_length=1)

    _check = field_validator(
        "turkey", "turkish_actors", "turkish_forces", "arms_trade", "off_topic", "threat",
        "denial", "speech", "abroad",
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
    places: re.Pattern[str]
    place_theater: dict[str, Theater]
    claimants: re.Pattern[str]
    claimant_of: dict[str, Claimant]

    @classmethod
    def compile(cls, data: LexiconFile) -> Lexicon:
        place_theater: dict[str, Theater] = {}
        for theater, places in data.theaters.items():
            for place in places:
                place_theater[_group_name(place)] = theater
        claimant_of: dict[str, Claimant] = {}
        claimant_patterns: dict[str, str] = {}
        for entry in data.claimants:
            who = Claimant(entry.name, entry.turkish, entry.media)
            for pattern in entry.patterns:
                key = _group_name(pattern)
                claimant_of.setdefault(key, who)
                claimant_patterns.setdefault(key, pattern)
        return cls(
            turkey=compile_patterns(data.turkey),
            turkish_actors=compile_patterns(data.turkish_actors),
            turkish_forces=compile_patterns(data.turkish_forces),
            military_strong=compile_patterns(data.military.strong),
            military_weak=compile_patterns(data.military.weak),
            arms_trade=compile_patterns(data.arms_trade),
            off_topic=compile_patterns(data.off_topic),
            threat=compile_patterns(data.threat),
            denial=compile_patterns(data.denial),
            speech=compile_patterns(data.speech),
            abroad=compile_patterns(data.abroad),
            places=_named_alternation({_group_name(p): p for ps in data.theaters.values()
                                       for p in ps}),  # fmt: skip
            place_theater=place_theater,
            claimants=_named_alternation(claimant_patterns),
            claimant_of=claimant_of,
        )


def _group_name(pattern: str) -> str:
    """A regex group name unique to a pattern (folded, so equal spellings share it)."""
    return "p" + fold(pattern).encode().hex()


def _named_alternation(patterns: dict[str, str]) -> re.Pattern[str]:
    """Like :func:`compile_patterns`, but ``match.lastgroup`` tells which pattern matched."""
    ordered = sorted(patterns.items(), key=lambda item: len(item[1]), reverse=True)
    return re.compile("|".join(f"(?P<{key}>{_pattern_regex(p)})" for key, p in ordered))


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
