"""Sentences of an article and what the lexicon found in each: the detector's working unit.

Each lexicon hit is recorded in the sentence it falls in (:func:`note`); a sentence's
:func:`strength` says how strongly it alone tells of Turkish military involvement abroad.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import cast

from services.classifier.lexicon import Claimant
from services.classifier.scanner import Hit
from shared.models import Theater

# Sentence ends in every script the lexicon reads: Arabic ؟ and ۔, Armenian ։ (its full stop);
# a closing quotation mark may follow: ” » and the German “ ‘.
# The stop itself is matched but not part of the break (group 1), so the regex engine can skip
# to the next stop instead of trying every position; a blank line is a break too (group 2).
_SENTENCE_BREAK = re.compile(r"[.!?…;:؟۔։]([\"'”“‘»)\]]*\s+)|(\n\s*\n\s*)")
# Titles whose full stop does not end a sentence ("Gen. Akar"); an initial neither ("W. Bush").
_INITIAL_OR_TITLE = re.compile(
    r"[A-ZÀ-ÞΑ-ΩА-Я]|Mr|Mrs|Ms|Dr|Gen|Lt|Col|Maj|Capt|Adm|Prof|Sen|Gov|Mme|Mlle"
)
_LAST_WORD = re.compile(r"\w+$")
# German writes day and century as ordinals with a full stop, then a capitalised noun.
_ORDINAL = re.compile(r"(?<!\S)\d{1,2}\.$")
_ORDINAL_NOUN = re.compile(
    r"(?:Januar|Jänner|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November"
    r"|Dezember|Jahrhundert[s]?)\b"
)
_MAX_EVIDENCE_CHARS = 400
# How much one involvement sentence contributes, by kind, before the article-level factors.
WEIGHT_FORCES = 0.62
WEIGHT_ACTOR_STRONG = 0.5
WEIGHT_MENTION_STRONG = 0.3
WEIGHT_ACTOR_WEAK = 0.22
_DOMESTIC_FACTOR = 0.3
_NEGATED_FACTOR = 0.3
_REACTION_FACTOR = 0.25
_ARMS_TRADE_FACTOR = 0.2
_HYPOTHETICAL_FACTOR = 0.25
_PAST_FACTOR = 0.25


@dataclass
class Sentence:
    """One sentence of the article and what the lexicon found in it."""

    start: int
    end: int
    is_title: bool
    forces: int = 0
    actors: int = 0
    mentions: int = 0
    domestic: int = 0
    reaction: int = 0
    abroad: int = 0
    strong: int = 0
    weak: int = 0
    arms_trade: int = 0
    off_topic: int = 0
    threat: int = 0
    denial: int = 0
    official_act: int = 0
    exercise: int = 0  # drills, manoeuvres: where they are held decides
    hypothetical: int = 0  # "should", "would", "if": what might be, not what is
    past: int = 0  # anniversaries, events dated last century (1974): history, not news
    negated: int = 0  # involvement cues right after a negation ("will not send troops")
    places: list[tuple[int, Theater]] = field(default_factory=list)  # where each place stands
    listed: set[int] = field(default_factory=set)  # places listed with the one before ("X and Y")
    compared: set[int] = field(default_factory=set)  # places named as done before ("as we entered")
    threat_at: int = -1  # where the first threat cue stands
    cue_start: int = -1  # where the last forces or strong military cue stands
    cue_end: int = -1
    claimants: list[tuple[int, int, Claimant]] = field(default_factory=list)
    speech: list[tuple[int, int]] = field(default_factory=list)
    attributions: set[int] = field(default_factory=set)  # speech that names its speaker after
    complementizers: list[int] = field(default_factory=list)  # "that", "che", "que", "dass"
    strength: float = 0.0

    @property
    def theaters(self) -> list[Theater]:
        """The theaters of the places this sentence names, in order."""
        return [theater for _, theater in self.places]

    @property
    def compared_theaters(self) -> list[Theater]:
        """The theaters of the places this sentence names as done before ("as we entered")."""
        return [theater for at, theater in self.places if at in self.compared]


def split(document: str, start: int, end: int, *, is_title: bool) -> list[Sentence]:
    """The sentences of ``document[start:end]`` (a title can hold several: "X; Y denies")."""
    sentences = []
    position = start
    for match in _SENTENCE_BREAK.finditer(document, start, end):
        brk_start, brk_end = match.span(1) if match.start(1) >= 0 else match.span(2)
        if _continues(document, brk_start, brk_end):
            continue  # "the 3. brigade", "ok. tysiąc": an ordinal or abbreviation, not an end
        if brk_start > position:
            sentences.append(Sentence(position, brk_start, is_title))
        position = brk_end
    if position < end:
        sentences.append(Sentence(position, end, is_title))
    return sentences or [Sentence(start, end, is_title)]


def _continues(document: str, brk_start: int, brk_end: int) -> bool:
    """Whether the text after a full stop goes on: a lower-case word, a name after an initial
    or a title, or a German date or century after its ordinal ("Seit dem 20. Januar")."""
    if document[brk_start - 1 : brk_start] != ".":
        return False
    if document[brk_end : brk_end + 1].islower():
        return True
    tail = document[max(0, brk_start - 6) : brk_start - 1]
    if len(tail) < 5 or not tail.isalnum():  # the last word is short enough to be one
        word = _LAST_WORD.search(tail)
        if word and _INITIAL_OR_TITLE.fullmatch(word[0]):
            return True  # "M. Davutoğlu", "George W. Bush", "U.S. Army", "Gen. Akar"
    return document[brk_start - 2 : brk_start - 1].isdigit() and bool(
        _ORDINAL.search(document, max(0, brk_start - 4), brk_start)
        and _ORDINAL_NOUN.match(document, brk_end)
    )


def note(sentence: Sentence, hit: Hit, *, negated: bool) -> None:
    """Record one lexicon hit in the sentence it falls in."""
    if hit.kind == "place":
        sentence.places.append((hit.start, cast(Theater, hit.label)))
    elif hit.kind == "claimant":
        sentence.claimants.append((hit.start, hit.end, cast(Claimant, hit.label)))
    elif hit.kind == "speech":
        sentence.speech.append((hit.start, hit.end))
    elif hit.kind == "complementizer":
        sentence.complementizers.append(hit.start)
    elif hit.kind == "attribution":
        sentence.speech.append((hit.start, hit.end))
        sentence.attributions.add(hit.start)
    elif hit.kind in ("denial", "threat") and negated:
        return  # "did not deny", "will not launch": no denial, no threat
    else:
        if hit.kind in ("forces", "strong"):
            sentence.cue_start, sentence.cue_end = hit.start, hit.end
            sentence.negated += negated  # "no Turkish troops", "will not send soldiers"
        if hit.kind == "threat" and sentence.threat_at < 0:
            sentence.threat_at = hit.start
        setattr(sentence, hit.kind, getattr(sentence, hit.kind) + 1)


def strength(sentence: Sentence) -> float:
    """How strongly one sentence, alone, says that Turkey is militarily involved."""
    if sentence.forces:
        strength = WEIGHT_FORCES
    elif sentence.actors and sentence.strong:
        strength = WEIGHT_ACTOR_STRONG
    elif sentence.mentions and sentence.strong:
        strength = WEIGHT_MENTION_STRONG
    elif sentence.actors and sentence.weak and sentence.theaters:
        strength = WEIGHT_ACTOR_WEAK
    else:
        return 0.0
    if sentence.arms_trade:
        strength *= _ARMS_TRADE_FACTOR
    if sentence.reaction and not sentence.forces:
        strength *= _REACTION_FACTOR
    if sentence.domestic and (sentence.exercise or not sentence.theaters):
        # Set inside Turkey; drills there stay domestic whichever countries take part.
        strength *= _DOMESTIC_FACTOR
    if sentence.past:
        strength *= _PAST_FACTOR  # "50 years after the invasion": history, not news
    if sentence.hypothetical and not sentence.threat:
        strength *= _HYPOTHETICAL_FACTOR  # "Turkey should keep its soldiers out of Syria"
    if sentence.negated and not sentence.denial:
        strength *= _NEGATED_FACTOR  # "Turkey will not send troops": analysis, not a claim
    return strength


def quote(document: str, sentence: Sentence) -> str:
    text = " ".join(document[sentence.start : sentence.end].split())
    if len(text) > _MAX_EVIDENCE_CHARS:
        text = text[: _MAX_EVIDENCE_CHARS - 1].rstrip() + "…"
    return text
