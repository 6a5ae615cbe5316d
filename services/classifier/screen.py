"""The screen: a fast necessary test run before the prefilter, on every article."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import ahocorasick_rs

from services.classifier.patterns import fold, unstretched


@dataclass(frozen=True)
class Screen:
    """A fast necessary test for :func:`trie_regex` of the same patterns: short substrings
    (the first letters of one literal run of each pattern) of which any match contains one.

    Text that holds none of them cannot match any of the patterns, and one Aho-Corasick pass
    (ahocorasick_rs) finds that out many times faster than the regular expression engine
    stepping through the trie's word-start assertions: the common case, an article that never
    mentions Turkey. Of a pattern's runs the one whose first letters most patterns share is
    taken ("turc" of "italo turc*", not "ital"), which keeps the substrings few and specific.
    """

    cores: tuple[str, ...]
    _automaton: ahocorasick_rs.AhoCorasick | None = field(repr=False, compare=False)

    @classmethod
    def build(cls, patterns: Iterable[str]) -> Screen:
        runs = [
            [r[:_SCREEN_CHARS] for r in _NOT_LITERAL.split(fold(p.strip())) if r] for p in patterns
        ]
        shared = Counter(core for cores in runs for core in set(cores))
        cores = tuple(sorted({max(cores, key=lambda c: (shared[c], len(c))) for cores in runs}))
        return cls(cores, ahocorasick_rs.AhoCorasick(list(cores)) if cores else None)

    def passes(self, folded: str) -> bool:
        """Whether ``folded`` text holds any of the substrings (may hold a match).

        Read without the tatweel, which the patterns skip inside Arabic words ("تـركيا")."""
        found = self._automaton and self._automaton.find_matches_as_indexes(unstretched(folded))
        return bool(found)


_SCREEN_CHARS = 4
_NOT_LITERAL = re.compile(r"[\s*]+|.\?")  # spaces, "*", and a letter made optional by "?"
