"""Lexicon patterns compiled into one trie-shaped regular expression per list.

A plain alternation of hundreds of phrases makes Python's ``re`` try every phrase at every
position. Merged into a trie (``turk(?:ish(?:…)|iye…)``) whose branches all start with a
literal character, the engine skips ahead in C to the next position where some phrase can
start, which makes a scan of an irrelevant kilobyte cost microseconds.

Pattern syntax (lexicon.yaml's header): lowercase words matched on folded text; a space
matches spaces or hyphens; ``?`` inside a word is one optional letter; ``*`` at the end of a
word matches any ending. Patterns start at a word boundary, and end at one unless the last
word ends with ``*``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Generic, TypeVar

T = TypeVar("T")
_END = ""  # trie key of a pattern's end that needs a word boundary
_OPEN_END = "\x00"  # trie key of a pattern's end after a trailing *
_FRAGMENT = {" ": r"[\s-]+", "-": r"[\s-]*", "?": r"\w?", "*": r"\w*"}


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
    """Text ready for matching: ``TÜRKİYE'NİN`` → ``turkiye'nin``; same length as the input."""
    return text.translate(_fold_table())


def normalise(pattern: str) -> str:
    """A pattern folded, with single spaces."""
    return " ".join(fold(pattern).split())


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)


def _insert(root: _Node, pattern: str) -> None:
    node = root
    for char in pattern:
        node = node.children.setdefault(char, _Node())
    node.children.setdefault(_OPEN_END if pattern.endswith("*") else _END, _Node())


def _emit(node: _Node, *, root: bool = False) -> str:
    branches = []
    # Longer continuations first, so the longest phrase wins; the end of a phrase last.
    for key in sorted(node.children, key=lambda k: (k in (_END, _OPEN_END), k)):
        child = node.children[key]
        if key == _END:
            branches.append(r"(?!\w)")
        elif key == _OPEN_END:
            branches.append("")
        else:
            fragment = _FRAGMENT.get(key) or re.escape(key)
            # The word-boundary check sits after the first letter, so every branch of the
            # root starts with a literal and the regex engine can skip ahead quickly.
            boundary = r"(?<!\w.)" if root else ""
            branches.append(fragment + boundary + _emit(child))
    if len(branches) == 1:
        return branches[0]
    return "(?:" + "|".join(branches) + ")"


def trie_regex(patterns: Iterable[str]) -> re.Pattern[str]:
    """One regular expression matching any of the patterns (syntax in the module doc)."""
    root = _Node()
    for pattern in {normalise(p) for p in patterns}:
        _insert(root, pattern)
    if not root.children:
        return re.compile(r"(?!x)x")
    return re.compile(_emit(root, root=True))


def single_regex(pattern: str) -> re.Pattern[str]:
    """One pattern alone, anchored to match a whole matched phrase."""
    return trie_regex([pattern])


@dataclass(frozen=True)
class LabeledMatcher(Generic[T]):
    """Finds any of the patterns and tells which label the matched phrase belongs to."""

    regex: re.Pattern[str]
    _labeled: tuple[tuple[re.Pattern[str], T], ...]
    _cache: dict[str, T | None] = field(default_factory=dict, compare=False)

    @classmethod
    def build(cls, labels: Mapping[str, T]) -> LabeledMatcher[T]:
        """From ``{pattern: label}``; a longer pattern wins over a shorter one it extends."""
        ordered = sorted(labels, key=lambda p: len(normalise(p)), reverse=True)
        labeled = tuple((single_regex(p), labels[p]) for p in ordered)
        return cls(trie_regex(labels), labeled)

    def finditer(self, text: str) -> Iterator[tuple[re.Match[str], T]]:
        for match in self.regex.finditer(text):
            label = self.label(match.group())
            if label is not None:
                yield match, label

    def label(self, phrase: str) -> T | None:
        if phrase not in self._cache:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[phrase] = next(
                (label for regex, label in self._labeled if regex.fullmatch(phrase)), None
            )
        return self._cache[phrase]
