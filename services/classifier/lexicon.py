"""The detection lexicon: a folder of YAML files, validated at load and compiled into matchers.

``core.yaml`` declares the vocabulary (the theaters and stances a classification may name:
the registry, published for subscriptions to be checked against) and names the claimants and
the side each speaks for; every other ``LANG.yaml`` holds one language's words for the same
lists (README.md in the folder). All languages are compiled together into one
:class:`Scanner`, so an article whose language is unknown or mixed is still read with every
term; the language matters only for word order (who speaks first).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from services.classifier.patterns import Patterns, check_patterns, trie_regex
from services.classifier.scanner import Scanner
from services.classifier.screen import Screen
from services.classifier.theaters import TheaterFile, read_theater_files
from shared.models import Stance, Theater
from shared.vocabulary import DEFAULT_VOCABULARY, Vocabulary
from shared.yamlfile import YamlError, read_yaml

DEFAULT_LEXICON = Path(__file__).with_name("lexicon")
CORE_FILE = "core.yaml"
# Lists of function words ("no", "nu", "in", "ki", "che"): a hit counts only in an article of
# a language that lists it (Romanian "nu" is "not", Kurmanji "nû" is "new").
FUNCTION_WORDS = (
    "negation", "negation_after", "complementizer", "hypothetical", "origin_before", "border",
)  # fmt: skip
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
DETECTOR_STANCES = ("denial", "threat", "report")  # given by the detector, whoever speaks
CATCH_ALL_THEATER = "other"  # the detector's theater when no known place is named
Side = Literal["turkey", "host", "third", "media", "evidence"]
WordOrder = Literal["svo", "sov", "vso"]


class LexiconError(Exception):
    """The lexicon is missing, not YAML, or not valid (the message names file and field)."""


class _Military(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strong: Patterns = Field(default_factory=list)
    weak: Patterns = Field(default_factory=list)

    _check = field_validator("strong", "weak")(check_patterns)


class _NewClaimant(BaseModel):
    """A claimant that only this language names: its side comes with it."""

    model_config = ConfigDict(extra="forbid")
    side: Side
    patterns: Patterns = Field(min_length=1)

    _check = field_validator("patterns")(check_patterns)


class LanguageFile(BaseModel):
    """One language's terms (every list optional)."""

    model_config = ConfigDict(extra="forbid")

    language: str = Field(pattern=r"^[a-z]{2,3}$")
    word_order: WordOrder = "svo"
    turkey: Patterns = Field(default_factory=list)
    turkish_products: Patterns = Field(default_factory=list)
    turkish_actors: Patterns = Field(default_factory=list)
    turkish_forces: Patterns = Field(default_factory=list)
    military: _Military = Field(default_factory=_Military)
    arms_trade: Patterns = Field(default_factory=list)
    off_topic: Patterns = Field(default_factory=list)
    threat: Patterns = Field(default_factory=list)
    denial: Patterns = Field(default_factory=list)
    speech: Patterns = Field(default_factory=list)
    attribution: Patterns = Field(default_factory=list)
    complementizer: Patterns = Field(default_factory=list)
    abroad: Patterns = Field(default_factory=list)
    domestic: Patterns = Field(default_factory=list)
    origin: Patterns = Field(default_factory=list)
    turkish_reaction: Patterns = Field(default_factory=list)
    negation: Patterns = Field(default_factory=list)
    negation_after: Patterns = Field(default_factory=list)
    hypothetical: Patterns = Field(default_factory=list)
    origin_before: Patterns = Field(default_factory=list)
    border: Patterns = Field(default_factory=list)
    official_act: Patterns = Field(default_factory=list)
    exercise: Patterns = Field(default_factory=list)
    past: Patterns = Field(default_factory=list)
    comparison: Patterns = Field(default_factory=list)
    comparison_after: Patterns = Field(default_factory=list)
    theaters: dict[Theater, Patterns] = Field(default_factory=dict)
    claimants: dict[str, Patterns | _NewClaimant] = Field(default_factory=dict)

    _check = field_validator(
        "turkey", "turkish_products", "turkish_actors", "turkish_forces", "arms_trade",
        "off_topic", "threat", "denial", "speech", "attribution", "complementizer", "abroad",
        "domestic", "turkish_reaction",
        "negation", "negation_after", "hypothetical", "origin_before", "border", "official_act",
        "origin", "exercise", "past", "comparison", "comparison_after",
    )(check_patterns)  # fmt: skip

    @field_validator("theaters")
    @classmethod
    def _places(
        cls, value: dict[Theater, Patterns], info: ValidationInfo
    ) -> dict[Theater, Patterns]:
        vocabulary = Vocabulary.from_context(info)
        if vocabulary is not None:  # the theaters core.yaml declares
            vocabulary.check("theaters", value)
        return {theater: check_patterns(places) for theater, places in value.items()}

    @field_validator("claimants")
    @classmethod
    def _claimant_patterns(
        cls, value: dict[str, Patterns | _NewClaimant]
    ) -> dict[str, Patterns | _NewClaimant]:
        return {
            name: entry if isinstance(entry, _NewClaimant) else check_patterns(entry)
            for name, entry in value.items()
        }


class _CoreClaimant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    side: Side


def _check_names(value: list[str]) -> list[str]:
    for name in value:
        if not _NAME.match(name):
            raise ValueError(f"bad name {name!r} (lower-case letters, digits and hyphens)")
    if len(set(value)) != len(value):
        raise ValueError("a name is listed twice")
    return value


class CoreFile(BaseModel):
    """``core.yaml``: the vocabulary, the claimants every language can name, and the stance
    of each side. A lexicon that declares no vocabulary has the default one."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=2, le=2)
    theaters: list[Theater] = Field(default_factory=lambda: [*DEFAULT_VOCABULARY.theaters])
    stances: list[Stance] = Field(default_factory=lambda: [*DEFAULT_VOCABULARY.stances])
    sides: dict[Side, Stance]
    claimants: list[_CoreClaimant] = Field(min_length=1)

    @field_validator("theaters")
    @classmethod
    def _theaters(cls, value: list[Theater]) -> list[Theater]:
        if CATCH_ALL_THEATER not in _check_names(value):
            raise ValueError(f"{CATCH_ALL_THEATER!r} is missing (the detector's catch-all)")
        return value

    @field_validator("stances")
    @classmethod
    def _stances(cls, value: list[Stance]) -> list[Stance]:
        missing = [s for s in DETECTOR_STANCES if s not in _check_names(value)]
        if missing:
            raise ValueError(f"{missing} are missing (the detector gives them itself)")
        return value

    @field_validator("sides")
    @classmethod
    def _every_side(cls, value: dict[Side, Stance], info: ValidationInfo) -> dict[Side, Stance]:
        missing = [s for s in ("turkey", "host", "third", "media", "evidence") if s not in value]
        if missing:
            raise ValueError(f"no stance for sides {missing}")
        declared = info.data.get("stances")
        undeclared = [s for s in value.values() if declared is not None and s not in declared]
        if undeclared:
            raise ValueError(f"stances {undeclared} are not among the declared stances")
        return value

    @property
    def vocabulary(self) -> Vocabulary:
        return Vocabulary(theaters=tuple(self.theaters), stances=tuple(self.stances))


@dataclass(frozen=True)
class Claimant:
    """Someone who can make a claim, the side they speak for, and that side's stance."""

    name: str
    side: Side
    stance: Stance

    @property
    def turkish(self) -> bool:
        return self.side == "turkey"


@dataclass(frozen=True)
class Lexicon:
    """Compiled matchers, ready for the detector.

    ``prefilter`` finds any mention of Turkey (the cheap first test, itself behind ``screen``,
    a necessary condition that plain text skips through fast); ``scanner`` finds every
    other list in one pass, as hit kinds named after the lists: ``mentions``, ``actors``,
    ``forces``, ``strong``, ``weak``, ``arms_trade``, ``off_topic``, ``threat``, ``denial``,
    ``speech``, ``abroad``, ``domestic``, ``origin``, ``reaction``, ``negation``,
    ``hypothetical``, ``official_act``, ``exercise``, ``past``, ``comparison``,
    ``comparison_after``,
    ``place`` (labelled with its theater) and ``claimant`` (labelled with a :class:`Claimant`).
    ``subject_first`` holds the languages whose speaker comes before the verb (SOV);
    ``vocabulary`` the theaters and stances ``core.yaml`` declares.
    """

    screen: Screen
    prefilter: re.Pattern[str]
    scanner: Scanner
    languages: frozenset[str]
    subject_first: frozenset[str]
    vocabulary: Vocabulary

    @classmethod
    def compile(
        cls, core: CoreFile, languages: Iterable[LanguageFile], theaters: Iterable[TheaterFile] = ()
    ) -> Lexicon:
        languages = list(languages)
        claimants = _claimants(core, languages)
        kinds: dict[str, dict[str, object]] = {}
        # First: a place inside Turkey covers the Turkish words it contains (the detector
        # drops the mentions, actors and places that such a phrase holds).
        lists = {
            "domestic": "domestic", "origin": "origin", "reaction": "turkish_reaction",
            "mentions": "turkey", "actors": "turkish_actors", "forces": "turkish_forces",
            "arms_trade": "arms_trade",
            "off_topic": "off_topic", "threat": "threat", "denial": "denial", "speech": "speech",
            "attribution": "attribution", "complementizer": "complementizer",
            "abroad": "abroad", "negation": "negation", "negation_after": "negation_after",
            "hypothetical": "hypothetical", "origin_before": "origin_before", "border": "border",
            "official_act": "official_act", "exercise": "exercise", "past": "past",
            "comparison": "comparison", "comparison_after": "comparison_after",
        }  # fmt: skip
        for kind, field in lists.items():
            kinds[kind] = {p: True for lang in languages for p in getattr(lang, field)}
        for kind in FUNCTION_WORDS:  # short words that mean other things in other languages
            kinds[kind] = _by_language(languages, lists[kind])
        # "As we entered Karabakh" tells of an operation (strong) and names it as done before.
        kinds["strong"] = kinds["comparison"] | kinds["comparison_after"]
        kinds["strong"].update({p: True for lang in languages for p in lang.military.strong})
        kinds["weak"] = {p: True for lang in languages for p in lang.military.weak}
        kinds["place"] = {
            p: theater
            for lang in languages
            for theater, places in lang.theaters.items()
            for p in places
        }
        for file in theaters:
            kinds["place"].update({p: file.theater for ps in file.places.values() for p in ps})
        kinds["claimant"] = {}
        for lang in languages:
            for name, entry in lang.claimants.items():
                patterns = entry.patterns if isinstance(entry, _NewClaimant) else entry
                for pattern in patterns:
                    kinds["claimant"].setdefault(pattern, claimants[name])
        prefilter = [p for lang in languages for p in lang.turkey + lang.turkish_products]
        return cls(
            screen=Screen.build(prefilter),
            prefilter=trie_regex(prefilter),
            scanner=Scanner.build(kinds),
            languages=frozenset(lang.language for lang in languages),
            subject_first=frozenset(f.language for f in languages if f.word_order == "sov"),
            vocabulary=core.vocabulary,
        )


def _by_language(languages: list[LanguageFile], field: str) -> dict[str, object]:
    """``{pattern: the languages that list it}``, so a hit can be kept for those alone."""
    owners: dict[str, set[str]] = {}
    for lang in languages:
        for pattern in getattr(lang, field):
            owners.setdefault(pattern, set()).add(lang.language)
    return {pattern: frozenset(langs) for pattern, langs in owners.items()}


def _claimants(core: CoreFile, languages: list[LanguageFile]) -> dict[str, Claimant]:
    """Every claimant by name: the core ones, and those a language adds with their side."""
    found = {c.name: Claimant(c.name, c.side, core.sides[c.side]) for c in core.claimants}
    for lang in languages:
        for name, entry in lang.claimants.items():
            if isinstance(entry, _NewClaimant):
                known = found.get(name)
                if known is not None and known.side != entry.side:
                    raise LexiconError(
                        f"{lang.language}.yaml: claimants: {name!r} is side {known.side} "
                        f"elsewhere, not {entry.side}"
                    )
                found[name] = Claimant(name, entry.side, core.sides[entry.side])
            elif name not in found:
                raise LexiconError(
                    f"{lang.language}.yaml: claimants: unknown claimant {name!r} "
                    "(add it to core.yaml, or give it here as {side: ..., patterns: [...]})"
                )
    return found


def load_lexicon(path: Path | None = None) -> Lexicon:
    """Read, validate and compile a lexicon folder; the bundled one when ``path`` is None."""
    folder = path or DEFAULT_LEXICON
    if not (folder / CORE_FILE).is_file():
        raise LexiconError(f"{folder}: not a lexicon folder (no {CORE_FILE})")
    try:
        core = read_yaml(folder / CORE_FILE).validate(CoreFile)
        theaters = read_theater_files(folder, core.theaters)
        core = core.model_copy(
            update={"theaters": [*core.theaters, *(t.theater for t in theaters)]}
        )
        context = core.vocabulary.as_context()
        files = [file for file in sorted(folder.glob("*.yaml")) if file.name != CORE_FILE]
        languages = [_language(file, context) for file in files]
    except YamlError as error:
        raise LexiconError(str(error)) from error
    if not languages:
        raise LexiconError(f"{folder}: no language files beside {CORE_FILE}")
    try:
        return Lexicon.compile(core, languages, theaters)
    except re.error as error:
        raise LexiconError(f"{folder}: a pattern does not compile: {error}") from error


def _language(file: Path, context: dict[str, object]) -> LanguageFile:
    """One language file, its theaters checked against those ``core.yaml`` declares."""
    document = read_yaml(file)
    language = document.validate(LanguageFile, context=context)
    if language.language != file.stem:
        problem = f"{language.language!r} in a file named {file.name}"
        raise document.error(["language"], problem)
    return language
