"""Every list of the lexicon found in one pass over an article's folded text.

An Aho-Corasick pass (ahocorasick_rs) over the whole text first finds the few places where
some phrase may start (:class:`Heads`); only there is a regex tried, the trie of the phrases
that start with that letter. Each distinct phrase found is then broken down, once and cached,
into what every list finds inside it ("turkish troops" is a Turkish force *and* a military
word).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import NamedTuple

import ahocorasick_rs

from services.classifier.patterns import (
    ARABIC_SCRIPT,
    HEBREW_SCRIPT,
    TATWEEL,
    LabeledMatcher,
    normalise,
    trie_regex,
    unstretched,
)

_FIRST_WORD = re.compile(r"\w+|.", re.DOTALL)
_HEAD_CHARS = 5  # enough letters to tell most words apart, few enough to keep the keys few
# A pattern's literal start: up to a space, a wildcard, a hyphen or a proclitics marker.
_HEAD = re.compile(r"[^ ?*\-\x01\x02]*")
_RIGHT_TO_LEFT = re.compile(f"[{HEBREW_SCRIPT}{ARABIC_SCRIPT}]")
_STRETCH = re.compile(TATWEEL)
_WORD_CHAR = re.compile(r"\w")


class Hit(NamedTuple):
    """One phrase found by a :class:`Scanner`: where, from which list, with which label."""

    start: int
    end: int
    kind: str
    label: object = None


@dataclass(frozen=True)
class Scanner:
    """Every list of the lexicon in one pass: scanning a document costs about as much as
    scanning it for a single list."""

    heads: Heads
    by_first: Mapping[str, re.Pattern[str]]  # the trie of the phrases starting with a letter
    kinds: tuple[tuple[str, LabeledMatcher[object]], ...]
    _cache: dict[str, tuple[Hit, ...]] = field(default_factory=dict, compare=False)

    @classmethod
    def build(cls, kinds: Mapping[str, Mapping[str, object]]) -> Scanner:
        """From ``{kind: {pattern: label}}``."""
        by_first: dict[str, list[str]] = {}
        for labels in kinds.values():
            for pattern in labels:
                by_first.setdefault(normalise(pattern)[:1], []).append(pattern)
        matchers = tuple((kind, LabeledMatcher.build(labels)) for kind, labels in kinds.items())
        tries = {first: trie_regex(patterns) for first, patterns in by_first.items()}
        every = (pattern for labels in kinds.values() for pattern in labels)
        return cls(Heads.build(every), tries, matchers)

    def scan(self, text: str) -> Iterator[Hit]:
        """Every hit of every list, by start position.

        After a phrase, the search resumes at its second word, so phrases that overlap
        ("could intervene" and "intervene militarily") or nest in another list's phrase
        ("turkish troops", "troops") are all found; a phrase nested in one of its own list
        ("iraq" in "northern iraq") is not counted again.
        """
        position = 0
        covered: dict[str, int] = {}  # per list, where its last phrase ended
        for start in self.heads.starts(text):
            trie = self.by_first.get(text[start]) if start >= position else None
            match = trie.match(text, start) if trie else None
            if match is None:
                continue
            for hit in self._starting(match.group()):
                end = start + hit.end
                if end > covered.get(hit.kind, -1):  # "iraq" inside "northern iraq" is not new
                    covered[hit.kind] = end
                    yield Hit(start + hit.start, end, hit.kind, hit.label)
            position = _FIRST_WORD.match(text, start).end()  # type: ignore[union-attr]

    def _starting(self, phrase: str) -> tuple[Hit, ...]:
        """What each list finds at the start of ``phrase`` (cached per phrase)."""
        hits = self._cache.get(phrase)
        if hits is None:
            if len(self._cache) > 50_000:
                self._cache.clear()
            found = []
            for kind, matcher in self.kinds:
                match = matcher.regex.match(phrase)
                label = matcher.label(match.group()) if match else None
                if match and label is not None:
                    found.append(Hit(0, match.end(), kind, label))
            hits = self._cache[phrase] = tuple(found)
        return hits


@cache
def _spacing() -> str:
    """A translate() table, indexed by code point, turning every non-word character into a
    space, so that a space before a key stands for any word start (and after it, any end)."""
    return "".join(c if _WORD_CHAR.match(c) else " " for c in map(chr, range(0x10000)))


@dataclass(frozen=True)
class Heads:
    """The positions of folded text where some pattern may start: a superset, found in one
    Aho-Corasick pass over the text.

    Each pattern gives a key: its literal start (at most five letters; a shorter first word
    with the boundary after it: "the ", "a "), behind a space. In a copy of the text whose
    non-word characters are all spaces, a key then finds word starts only. Arabic and Hebrew
    patterns also start after proclitics inside a word ("والقوات"): their keys have no space
    before them. The copy is read without the tatweel, which Arabic patterns skip
    ("تـركيا"), and positions are mapped back. A key that another key starts is dropped:
    the shorter one finds all its places.
    """

    _automaton: ahocorasick_rs.AhoCorasick = field(repr=False, compare=False)
    _shifts: tuple[int, ...]  # per key: where its word starts, from where the key starts

    @classmethod
    def build(cls, patterns: Iterable[str]) -> Heads:
        keys: dict[str, int] = {}
        for pattern in {normalise(p) for p in patterns}:
            head = _HEAD.match(pattern).group()  # type: ignore[union-attr]
            after = pattern[len(head) : len(head) + 1]
            if len(head) > _HEAD_CHARS:
                head, after = head[:_HEAD_CHARS], "*"
            key = head.translate(_spacing()) + (" " if after in ("", " ") else "")
            if _RIGHT_TO_LEFT.match(pattern):
                keys[key] = -1  # the copy's leading space: one position further on
            else:
                keys[" " + key] = 0
        kept: dict[str, int] = {}
        last = "\0"
        for key in sorted(keys):  # a key's extensions sort right after it
            if not key.startswith(last):
                kept[key] = keys[key]
                last = key
        return cls(ahocorasick_rs.AhoCorasick(list(kept)), tuple(kept.values()))

    def starts(self, folded: str) -> list[int]:
        """Where in ``folded`` a pattern may start, in order."""
        spaced = f" {unstretched(folded).translate(_spacing())} "
        found = self._automaton.find_matches_as_indexes(spaced, overlapping=True)
        starts = sorted({start + self._shifts[key] for key, start, _ in found})
        if TATWEEL not in folded:
            return starts
        # Back to positions in ``folded``: each stretch removed before a position moves it on.
        removed = [m.start() - k for k, m in enumerate(_STRETCH.finditer(folded))]
        return [start + bisect.bisect_right(removed, start) for start in starts]
