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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Generic, TypeVar, cast

Patterns = list[str]
_PATTERN_SHAPE = re.compile(r"^(?:[\w'\".&-]+\??[\w'\".&-]*\*?)(?: [\w'\".&-]+\??[\w'\".&-]*\*?)*$")


T = TypeVar("T")
_END = ""  # trie key of a pattern's end that needs a word boundary
_OPEN_END = "\x00"  # trie key of a pattern's end after a trailing *
_FRAGMENT = {" ": r"[\s-]+", "-": r"[\s-]*", "?": r"\w?", "*": r"\w*"}


# Letters written several ways in Arabic-script news (hamza forms of alef, Persian and Arabic
# yeh and kaf, ta marbuta): folded to one form, one character for one character.
_ARABIC_VARIANTS = {"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ی": "ي", "ک": "ك", "ة": "ه"}
# Proclitics written as one word with what follows: Arabic conjunctions, prepositions and the
# article (و ف ب ك ل, ال, لل), Hebrew prefix letters (ו ה ב כ ל מ ש). A pattern's words match
# with them in front ("القوات" in "والقوات", "טורקיה" in "לטורקיה").
ARABIC_SCRIPT = "\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff"
HEBREW_SCRIPT = "\u0590-\u05ff"
TATWEEL = "\u0640"  # the Arabic stretching stroke (كـبير); harakat are folded onto it
_ARABIC_LETTER = re.compile(f"[{ARABIC_SCRIPT}]")
_ARABIC_WORD = re.compile(f"(?<= )(?=[{ARABIC_SCRIPT}])")
_HEBREW_WORD = re.compile(f"(?<= )(?=[{HEBREW_SCRIPT}])")
_ARABIC_CLITICS = "\x01"  # marker in a normalised pattern: Arabic proclitics may stand here
_HEBREW_CLITICS = "\x02"
_CLITIC_FRAGMENT = {
    _ARABIC_CLITICS: "(?:[وف]?(?:[بك]?ال|لل|[بكل])?)",
    _HEBREW_CLITICS: "[והבכלמש]{0,3}",
}
# The same at the start of a pattern, as look-behinds (one per width) after the first letter.
_ARABIC_START = (
    "(?:(?<!\\w.)|(?<=(?<!\\w)[وفبكل].)|(?<=(?<!\\w)(?:ال|لل|[وف][بكل]).)"
    "|(?<=(?<!\\w)(?:[وفبك]ال|[وف]لل).)|(?<=(?<!\\w)[وف][بك]ال.))"
)
_HEBREW_START = (
    "(?:(?<!\\w.)|(?<=(?<!\\w)[והבכלמש].)|(?<=(?<!\\w)[והבכלמש]{2}.)|(?<=(?<!\\w)[והבכלמש]{3}.))"
)


# Where a pattern may start: after a non-word character, or inside an Arabic or Hebrew word
# (after its proclitics). Checked once per position, this spares the engine from trying every
# first letter of the trie in the middle of words: four times faster on a long lexicon.
_WORD_START = f"(?:(?<!\\w)|(?<=[{ARABIC_SCRIPT}{HEBREW_SCRIPT}]))"


@cache
def _fold_string() -> str:
    """The fold table as a string indexed by code point: translate() reads it twice as fast
    as a dict. Characters beyond it (astral planes) are left as they are."""
    chars = [chr(code) for code in range(0x10000)]
    for code, folded in _fold_table().items():
        chars[code] = folded
    return "".join(chars)


@cache
def _fold_table() -> dict[int, str]:
    """Lowercase, drop diacritics and unify letters written several ways, one char for one.

    Covers Latin, Greek, Cyrillic and Armenian case and accents, Turkish dotted and dotless
    i, Greek final sigma and Arabic-script letter variants. Keeping the length lets positions
    in folded text point into the original text.
    """
    table: dict[int, str] = {}
    for code in range(0x20, 0x590):
        char = chr(code)
        lowered = char.lower()
        base = unicodedata.normalize("NFKD", lowered)
        base = "".join(c for c in base if not unicodedata.combining(c)) or lowered
        folded = base[0] if len(base) == 1 else lowered[0]
        if folded != char:
            table[code] = folded
    table.update({ord("İ"): "i", ord("ı"): "i", ord("I"): "i", ord("ё"): "е", ord("Ё"): "е"})
    table.update({ord("й"): "и", ord("Й"): "и", ord("ς"): "σ"})
    table.update({ord(c): "'" for c in "’‘`´ʼ"})
    table.update({ord(c): "-" for c in "‐‑‒–—"})
    table.update({ord(k): v for k, v in _ARABIC_VARIANTS.items()})
    # Arabic short vowels and the shadda ("حذّر") become the tatweel, which patterns skip.
    table.update(dict.fromkeys((*range(0x064B, 0x0660), 0x0670), TATWEEL))
    # Persian writes the zero-width non-joiner inside words ("قره‌باغ"): a space in patterns.
    # Hebrew geresh and gershayim are its apostrophe and quote (צה״ל, כטב"ם).
    table.update({0x200C: " ", ord("׳"): "'", ord("״"): '"'})
    return table


def fold(text: str) -> str:
    """Text ready for matching: ``TÜRKİYE'NİN`` → ``turkiye'nin``; same length as the input."""
    return text.translate(_fold_string())


def unstretched(folded: str) -> str:
    """Folded text without the tatweel (and the harakat folded onto it): for substring tests."""
    return folded.replace(TATWEEL, "") if TATWEEL in folded else folded


def check_patterns(value: Patterns) -> Patterns:
    """Patterns as the lexicon's files may write them (stripped), or ``ValueError`` naming one."""
    for pattern in value:
        if not pattern.strip() or not _PATTERN_SHAPE.match(fold(pattern.strip())):
            raise ValueError(f"bad pattern {pattern!r} (words, spaces, and ? or * inside a word)")
    return [p.strip() for p in value]


def normalise(pattern: str) -> str:
    """A pattern folded, with single spaces (and clitic markers before Arabic/Hebrew words)."""
    spaced = " ".join(fold(pattern).split())
    return _HEBREW_WORD.sub(_HEBREW_CLITICS, _ARABIC_WORD.sub(_ARABIC_CLITICS, spaced))


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
    # Longer continuations first, so the longest phrase wins: a * that more words follow
    # ("türk* askerleri" before "türkün"), then letters before a * or ? that ends a pattern
    # (so "libya*" does not hide "libyan national army"), the end of a phrase last.
    star = node.children.get("*", _Node())
    following = {k: v for k, v in star.children.items() if k != _OPEN_END}
    if following:
        branches.append(_FRAGMENT["*"] + _emit(_Node(following)))
    for key in sorted(node.children, key=lambda k: (k in (_END, _OPEN_END), k in ("*", "?"), k)):
        child = node.children[key]
        if key == "*":
            if _OPEN_END in child.children:
                branches.append(_FRAGMENT["*"])  # the pattern ends with its *
            continue
        if key == _END:
            branches.append(r"(?!\w)")
        elif key == _OPEN_END:
            branches.append("")
        else:
            fragment = _FRAGMENT.get(key) or _CLITIC_FRAGMENT.get(key) or re.escape(key)
            # The word-boundary check sits after the first letter, so every branch of the
            # root starts with a literal and the regex engine can skip ahead quickly.
            boundary = _start_boundary(key) if root else ""
            stretch = f"{TATWEEL}*" if _ARABIC_LETTER.match(key) else ""  # "حذـر", "كـبير"
            branches.append(fragment + boundary + stretch + _emit(child))
    if len(branches) == 1:
        return branches[0]
    return "(?:" + "|".join(branches) + ")"


def _start_boundary(first: str) -> str:
    """What may stand before a pattern's first letter: a non-word, or proclitics."""
    if _ARABIC_LETTER.match(first):
        return _ARABIC_START
    if re.match(f"[{HEBREW_SCRIPT}]", first):
        return _HEBREW_START
    return r"(?<!\w.)"


def trie_regex(patterns: Iterable[str]) -> re.Pattern[str]:
    """One regular expression matching any of the patterns (syntax in the module doc)."""
    root = _Node()
    for pattern in {normalise(p) for p in patterns}:
        _insert(root, pattern)
    if not root.children:
        return re.compile(r"(?!x)x")
    return re.compile(_WORD_START + _emit_root(root))


@lru_cache(maxsize=4096)
def _one_pattern(pattern: str) -> re.Pattern[str]:
    """One pattern's own regex, compiled once: which of several labels' patterns fits best."""
    return trie_regex([pattern])


_GROUPED_ROOT = 120  # below this many first letters, the lookaheads cost more than they save


def _emit_root(root: _Node) -> str:
    """The trie's first letters grouped by script, each group behind a one-class lookahead.

    The regex engine tries alternatives one by one; with 25 languages the root has hundreds.
    A lookahead on the group's first letters lets it skip the Greek, Arabic or Armenian
    branches at once when the text is Latin, and the reverse (about twice as fast).
    """
    groups: dict[str, _Node] = {}
    for key, child in root.children.items():
        groups.setdefault(_script(key), _Node()).children[key] = child
    if len(groups) == 1 or len(root.children) < _GROUPED_ROOT:
        return _emit(root, root=True)
    parts = []
    for group in groups.values():
        first = "".join(sorted(re.escape(key) for key in group.children))
        parts.append(f"(?=[{first}]){_emit(group, root=True)}")
    return "(?:" + "|".join(parts) + ")"


def _script(char: str) -> str:
    """A coarse script of a character: the first word of its Unicode name (LATIN, GREEK...)."""
    name = unicodedata.name(char, "")
    return name.split(" ")[0] if name else "OTHER"


@dataclass(frozen=True)
class LabeledMatcher(Generic[T]):
    """Finds any of the patterns and tells which label the matched phrase belongs to.

    One trie regex per label (not per pattern: a lexicon holds thousands of patterns and a few
    dozen labels), so building stays fast; when a phrase fits patterns of several labels, the
    longest such pattern decides ("somaliland" over "somali*").
    """

    regex: re.Pattern[str]
    _by_label: tuple[tuple[re.Pattern[str], T], ...]
    _by_first: Mapping[str, tuple[tuple[str, T], ...]]  # (pattern, label) by first letter

    @classmethod
    def build(cls, labels: Mapping[str, T]) -> LabeledMatcher[T]:
        """From ``{pattern: label}``."""
        groups: dict[T, list[str]] = {}
        for pattern, label in labels.items():
            groups.setdefault(label, []).append(pattern)
        regex = trie_regex(labels)
        if len(groups) == 1:  # most lists: every pattern means the same (compile it once)
            return cls(regex, ((regex, next(iter(groups))),), {})
        by_label = tuple((trie_regex(patterns), label) for label, patterns in groups.items())
        by_first: dict[str, list[tuple[str, T]]] = {}
        for pattern, label in labels.items():
            by_first.setdefault(normalise(pattern)[:1], []).append((pattern, label))
        return cls(regex, by_label, {first: tuple(ps) for first, ps in by_first.items()})

    def label(self, phrase: str) -> T | None:
        """The label of the longest pattern that matches all of ``phrase``.

        Not cached here: :class:`Scanner` caches its whole breakdown of each phrase.
        """
        found = [label for regex, label in self._by_label if regex.fullmatch(phrase)]
        if len(found) <= 1:
            return found[0] if found else None
        if all(isinstance(label, frozenset) for label in found):
            # Languages that own a word: a phrase two languages' patterns match is both's.
            return cast(T, frozenset().union(*cast(list[frozenset[str]], found)))
        fitting = [
            (pattern, label)
            for pattern, label in self._by_first.get(phrase[:1], ())
            if label in found and _one_pattern(pattern).fullmatch(phrase)
        ]
        return max(fitting, key=lambda fit: len(normalise(fit[0])))[1]
