"""Explainable detection of Turkish military involvement abroad.

The detector reads an article as sentences. A sentence is *involvement* when it names Turkish
forces (``Turkish troops``, ``Turkish-backed fighters``) or Turkey as an actor together with a
military cue (``Ankara deployed drones``). Each involvement sentence adds to a noisy-OR score;
the score is lowered when the sentence is about selling weapons, when no place abroad is named,
or when the headline is about something else (the lira, football). Claims come from the
sentences that carry a speech verb, a denial or a threat, attributed to the nearest claimant.

Articles that never mention Turkey are rejected by one regular expression before any of this,
which keeps the common case (an irrelevant article) to a few microseconds per kilobyte.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections import Counter
from collections.abc import Set
from dataclasses import dataclass, field
from typing import cast

from services.classifier.lexicon import FUNCTION_WORDS, Claimant, Lexicon
from services.classifier.patterns import Hit, fold
from shared.language import detect_language
from shared.models import Claim, Classification, Stance, Theater

# Sentence ends in every script the lexicon reads: Arabic ؟ and ۔, Armenian ։ (its full stop).
_SENTENCE_BREAK = re.compile(r"(?<=[.!?…;:؟۔։])[\"'”»)\]]*\s+|\n\s*\n\s*")
_INVERSION = re.compile(r"[,\"'”»—–]\s*$")  # "..., said X": the speaker follows the verb
_SUBJECT_MARK = re.compile(r"\S{0,12},")  # "Bakanlık, ...", "MSB'nin, ..." (a suffix, then a comma)
_NEGATION_REACH = 24  # "did not deny", "will not launch", "no Turkish troops": words close by
_ORIGIN = re.compile(r"(?:\bfrom|\bиз)\s+(?:the\s+)?(?:northern\s+|southern\s+)?$")
_LOOK_BEHIND_CHARS = 24
_AFTER_VERB_CHARS = 30  # "..., said Turkey's defence ministry": the claimant follows closely
_UNATTRIBUTED = "news report"
UNDETERMINED = "und"  # BCP 47: language not determined
_GENERIC_CLAIMANTS = frozenset({_UNATTRIBUTED, "Turkish officials"})
_LANGUAGE_SAMPLE_CHARS = 300  # enough to tell, cheap to classify
_MAX_EVIDENCE = 3
_MAX_EVIDENCE_CHARS = 400
# How much one involvement sentence contributes, by kind, before the article-level factors.
_WEIGHT_FORCES = 0.62
_WEIGHT_ACTOR_STRONG = 0.5
_WEIGHT_MENTION_STRONG = 0.3
_WEIGHT_ACTOR_WEAK = 0.22
_DOMESTIC_FACTOR = 0.3
_NEGATED_FACTOR = 0.3
_OTHER_DOMINATES = 2  # how many times more often 'other' places must be named to win
_SECOND_THEATER = 0.75  # a second theater counts when named at least this share as often
_REACTION_FACTOR = 0.25
_COVERED_BY_DOMESTIC = frozenset({"mentions", "actors", "forces", "place", "claimant"})
_ARMS_TRADE_TITLE_FACTOR = 0.5
_TITLE_BOOST = 1.25
_ARMS_TRADE_FACTOR = 0.2
_NO_PLACE_FACTOR = 0.45
_OFF_TOPIC_TITLE_FACTOR = 0.35
_OFF_TOPIC_BODY_FACTOR = 0.7


@dataclass
class _Sentence:
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
    negated: int = 0  # involvement cues right after a negation ("will not send troops")
    places: list[tuple[int, Theater]] = field(default_factory=list)  # where each place stands
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


class Detector:
    """Classify one article at a time; immutable, so it can be swapped while running."""

    def __init__(self, lexicon: Lexicon, threshold: float = 0.5) -> None:
        self.lexicon = lexicon
        self.threshold = threshold

    def classify(
        self, article_id: str, title: str, text: str, language: str | None = None
    ) -> Classification:
        """The verdict for one article, with the sentences that justify it."""
        document = f"{title.strip()}\n{text.strip()}"
        folded = fold(document)
        if not self.lexicon.prefilter.search(folded):
            # Never about Turkey: skip the (costly) language detection too.
            return Classification(
                id=article_id, flagged=False, score=0.0, language=language or UNDETERMINED
            )
        sample = f"{title}. {text}"[:_LANGUAGE_SAMPLE_CHARS]
        language = language or detect_language(sample) or UNDETERMINED
        sentences = self._sentences(document, folded, len(title.strip()), language)
        involved = [s for s in sentences if s.strength > 0]
        score = self._score(involved, sentences)
        flagged = score >= self.threshold
        if not flagged:
            return Classification(
                id=article_id, flagged=False, score=round(score, 4), language=language
            )
        subject_first = language in self.lexicon.subject_first
        claims = self._claims(document, sentences, subject_first=subject_first)
        stances = list(dict.fromkeys(claim.stance for claim in claims)) or ["report"]
        return Classification(
            id=article_id,
            flagged=True,
            score=round(score, 4),
            theaters=_article_theaters(sentences, claims),
            stances=stances,
            claims=claims,
            evidence=_evidence(document, involved, claims),
            language=language,
        )

    def _sentences(
        self, document: str, folded: str, title_end: int, language: str
    ) -> list[_Sentence]:
        """Split into sentences and record every lexicon match in the sentence it falls in."""
        sentences = _split(document, 0, title_end, is_title=True)
        sentences += _split(document, title_end + 1, len(document), is_title=False)
        starts = [s.start for s in sentences]

        def where(offset: int) -> _Sentence:
            return sentences[bisect.bisect_right(starts, offset) - 1]

        domestic_until = origin_until = negation_end = -1
        known = language in self.lexicon.languages
        for hit in self.lexicon.scanner.scan(folded):
            if known and hit.kind in FUNCTION_WORDS and language not in cast(Set[str], hit.label):
                continue  # a function word of another language
            sentence = where(hit.start)
            if hit.kind == "domestic":
                domestic_until = max(domestic_until, hit.end)
            elif hit.kind in _COVERED_BY_DOMESTIC and hit.start < domestic_until:
                continue  # "the Turkish border", "a Black Sea province": Turkey as a place
            if hit.kind == "origin":
                origin_until = max(origin_until, hit.end)
                continue
            if hit.kind == "place" and hit.start < origin_until:
                continue  # "Syrian mercenaries", "mercenari siriani": where fighters come from
            if hit.kind == "negation":
                negation_end = hit.end
                continue
            if hit.kind == "negation_after":
                # Suffix negation follows its verb: "asker göndermeyecek", "نانێرێت".
                if sentence.cue_start < hit.start <= sentence.cue_end + _NEGATION_REACH:
                    sentence.negated += 1
                continue
            negated = sentence.start < negation_end <= hit.start <= negation_end + _NEGATION_REACH
            if hit.kind != "place" or not _ORIGIN.search(folded, _before(hit.start), hit.start):
                _note(sentence, hit, negated=negated)  # not "from Syria": an origin
        for sentence in sentences:
            sentence.strength = _strength(sentence)
        return sentences

    def _score(self, involved: list[_Sentence], sentences: list[_Sentence]) -> float:
        """Noisy-OR of the involvement sentences, then the article-level factors."""
        missing = 1.0
        for sentence in involved:
            weight = sentence.strength * (_TITLE_BOOST if sentence.is_title else 1.0)
            missing *= 1.0 - min(weight, 0.95)
        score = 1.0 - missing
        if score == 0.0:
            return 0.0
        if not any(s.theaters or s.abroad for s in sentences):
            score *= _NO_PLACE_FACTOR
        title = [s for s in sentences if s.is_title]
        if max(s.strength for s in title) < _WEIGHT_MENTION_STRONG:
            if any(s.off_topic for s in title):
                score *= _OFF_TOPIC_TITLE_FACTOR
            if any(s.arms_trade for s in title):
                score *= _ARMS_TRADE_TITLE_FACTOR
        off_topic = sum(s.off_topic for s in sentences)
        if off_topic > 2 * len(involved):
            score *= _OFF_TOPIC_BODY_FACTOR
        return min(score, 1.0)

    def _claims(
        self, document: str, sentences: list[_Sentence], *, subject_first: bool
    ) -> list[Claim]:
        """One claim per claimant, stance and theater, quoting the body rather than the headline."""
        found: dict[tuple[str, Stance, Theater], tuple[int, Claim]] = {}
        main = _theaters(sentences)
        own = {s.start: _claimant(s, document, subject_first) for s in sentences}
        speakers = _headline_speakers(document, sentences)
        speakers.update(_carried_speakers(document, sentences, own))
        body_first = sorted(sentences, key=lambda s: (s.is_title, s.start))
        for sentence in body_first:
            if sentence.strength == 0 and not (
                sentence.denial or (sentence.threat and sentence.actors)
            ):
                continue
            claimant = own[sentence.start] or speakers.get(sentence.start)
            stance = _stance(sentence, claimant)
            name = claimant.name if claimant else _UNATTRIBUTED
            theater = _claim_theater(sentence, stance, sentences, main)
            claim = Claim(
                claimant=name,
                stance=stance,
                theater=theater,
                evidence=_quote(document, sentence),
            )
            found.setdefault((name, stance, theater), (sentence.start, claim))
        claims = [claim for _, claim in sorted(found.values(), key=lambda item: item[0])]
        return _without_generic(claims)


def _headline_speakers(document: str, sentences: list[_Sentence]) -> dict[int, Claimant]:
    """Who speaks in a "Speaker: quote" headline ("Erdoğan: we may come one night").

    The headline is split at the colon; the words after it are the speaker's.
    """
    speakers: dict[int, Claimant] = {}
    title = [s for s in sentences if s.is_title]
    for segment, following in itertools.pairwise(title):
        if segment.claimants and _ends_with_colon(document, segment):
            speakers[following.start] = segment.claimants[0][2]
    return speakers


def _carried_speakers(
    document: str, sentences: list[_Sentence], own: dict[int, Claimant | None]
) -> dict[int, Claimant]:
    """Speakers carried to the next sentence of the same paragraph.

    "The ministry said in a statement:" then the quote; "X said ... . He added that ...": the
    next sentence speaks for the same claimant when the previous one ends with a colon, or
    when it has a speech verb but names nobody (a pronoun).
    """
    carried: dict[int, Claimant] = {}
    body = [s for s in sentences if not s.is_title]
    for previous, sentence in itertools.pairwise(body):
        if "\n\n" in document[previous.end : sentence.start]:
            continue  # a new paragraph
        speaker = own[previous.start] or carried.get(previous.start)
        if speaker is None or (sentence.claimants and sentence.speech):
            continue
        if _ends_with_colon(document, previous) or (sentence.speech and not sentence.claimants):
            carried[sentence.start] = speaker
    return carried


def _ends_with_colon(document: str, sentence: _Sentence) -> bool:
    """Whether the sentence introduces what follows ("X said:", a "Speaker:" headline)."""
    return document[sentence.start : sentence.end].rstrip().endswith(":")


def _note(sentence: _Sentence, hit: Hit, *, negated: bool) -> None:
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


def _without_generic(claims: list[Claim]) -> list[Claim]:
    """Drop "news report" and "Turkish officials" where a named claimant says the same."""
    stances = {c.stance for c in claims if c.claimant not in _GENERIC_CLAIMANTS}
    if not stances:
        return claims
    return [
        c
        for c in claims
        if c.claimant not in _GENERIC_CLAIMANTS
        or (c.stance not in stances and c.claimant != _UNATTRIBUTED)
    ]


def _before(position: int) -> int:
    """Where to start looking at the few words before ``position``."""
    return max(0, position - _LOOK_BEHIND_CHARS)


def _split(document: str, start: int, end: int, *, is_title: bool) -> list[_Sentence]:
    """The sentences of ``document[start:end]`` (a title can hold several: "X; Y denies")."""
    sentences = []
    position = start
    for brk in _SENTENCE_BREAK.finditer(document, start, end):
        if brk.start() > position:
            sentences.append(_Sentence(position, brk.start(), is_title))
        position = brk.end()
    if position < end:
        sentences.append(_Sentence(position, end, is_title))
    return sentences or [_Sentence(start, end, is_title)]


def _strength(sentence: _Sentence) -> float:
    """How strongly one sentence, alone, says that Turkey is militarily involved."""
    if sentence.forces:
        strength = _WEIGHT_FORCES
    elif sentence.actors and sentence.strong:
        strength = _WEIGHT_ACTOR_STRONG
    elif sentence.mentions and sentence.strong:
        strength = _WEIGHT_MENTION_STRONG
    elif sentence.actors and sentence.weak and sentence.theaters:
        strength = _WEIGHT_ACTOR_WEAK
    else:
        return 0.0
    if sentence.arms_trade:
        strength *= _ARMS_TRADE_FACTOR
    if sentence.reaction and not sentence.forces:
        strength *= _REACTION_FACTOR
    if sentence.domestic and not sentence.theaters:
        strength *= _DOMESTIC_FACTOR
    if sentence.negated and not sentence.denial:
        strength *= _NEGATED_FACTOR  # "Turkey will not send troops": analysis, not a claim
    return strength


def _claimant(sentence: _Sentence, text: str, subject_first: bool) -> Claimant | None:
    """Whoever speaks: the claimant before a speech verb, or right after one.

    English puts the speaker nearest the verb ("..., Russian officials said"); Turkish puts
    the subject first and the verb last ("Bakanlik, ... acikladi"), hence ``subject_first``.
    A verb right after a comma or a closing quote puts the speaker after it, in most languages
    ("..., said the ministry", "..., заявили в МИД России", "», a déclaré le ministère").
    """
    for verb_start, verb_end in sentence.speech:
        speaker = _speaker_of(sentence, text, verb_start, verb_end, subject_first)
        if speaker is not None:
            return speaker
    if sentence.claimants and (sentence.denial or sentence.threat or sentence.official_act):
        return sentence.claimants[0][2]  # "parliament extended the mandate": an official act
    return None


def _speaker_of(
    sentence: _Sentence, text: str, verb_start: int, verb_end: int, subject_first: bool
) -> Claimant | None:
    """The claimant who says what one speech verb introduces, if any."""
    after = [c for c in sentence.claimants if verb_end <= c[0] <= verb_end + _AFTER_VERB_CHARS]
    inverted = verb_start in sentence.attributions or (
        _INVERSION.search(text, max(0, verb_start - 4), verb_start)
        and not any(verb_end <= at <= verb_end + 2 for at in sentence.complementizers)
    )  # "..., said X" but not "X, sostiene che ..." (the verb opens what X says)
    if after and inverted:
        return after[0][2]  # "according to X", "..., said X"
    before = [c for c in sentence.claimants if c[1] <= verb_start]
    if before and subject_first:
        # The subject is marked off by a comma ("Bakanlık, ... açıkladı"); a claimant in a
        # leading clause is not ("PKK saldırısının ardından, Erdoğan ... dedi").
        marked = [c for c in before if _SUBJECT_MARK.match(text, c[1])]
        return (marked or before)[0][2]
    if before:
        return before[-1][2]
    return after[0][2] if after else None


def _stance(sentence: _Sentence, claimant: Claimant | None) -> Stance:
    """Decided by who speaks: the claimant's side, unless they deny or Turkey threatens."""
    if sentence.denial:
        return "denial"
    turkish_voice = claimant is None or claimant.turkish
    if sentence.threat and turkish_voice and (sentence.actors or sentence.forces):
        return "threat"
    if claimant is None:
        return "report"
    return claimant.stance


def _claim_theater(
    sentence: _Sentence, stance: Stance, sentences: list[_Sentence], main: list[Theater]
) -> Theater:
    """Where one claim places Turkey's involvement.

    A threat points at the place named nearest its cue ("could enter Israel as it entered
    Karabakh" threatens Israel). Any other claim takes its sentence's place, preferring the
    article's main theater when the sentence names several ("fighters from Syria sent to
    Karabakh"); a sentence with no place takes the nearest place before it, else the main one.
    """
    if sentence.places:
        if stance == "threat" and sentence.threat_at >= 0:
            return min(sentence.places, key=lambda p: abs(p[0] - sentence.threat_at))[1]
        in_main = [t for _, t in sentence.places if t in main]
        return in_main[0] if in_main else Counter(sentence.theaters).most_common(1)[0][0]
    if not sentence.is_title:
        earlier = [s for s in sentences if s.start < sentence.start and s.places and not s.is_title]
        if earlier:
            in_main = [t for _, t in earlier[-1].places if t in main]
            return in_main[0] if in_main else earlier[-1].places[0][1]
    return main[0]


def _theaters(sentences: list[_Sentence]) -> list[Theater]:
    """Where the involvement happens: places weighted by the sentence that names them."""
    counts: Counter[Theater] = Counter()
    for sentence in sentences:
        weight = (2 if sentence.is_title else 1) * (2 if sentence.strength > 0 else 1)
        for theater in sentence.theaters:
            counts[theater] += weight
    if not counts:
        return ["other"]
    specific: dict[Theater, int] = {t: n for t, n in counts.items() if t != "other"}
    if not specific or counts["other"] > _OTHER_DOMINATES * max(specific.values()):
        # "other" is a catch-all, so a specific place wins, unless named in passing next to
        # an article about Lebanon or the Red Sea (Israel once, UNIFIL ten times).
        specific = dict(counts)
    top = max(specific.values())
    return [
        t for t, n in sorted(specific.items(), key=lambda i: -i[1]) if n >= top * _SECOND_THEATER
    ]


def _article_theaters(sentences: list[_Sentence], claims: list[Claim]) -> list[Theater]:
    """The places the article is about, plus where its threats point (Israel in a Karabakh story).

    Other claims' theaters are not added: a claim about the Syrians sent to Libya names Syria
    in passing, and measured on the tuning corpus adding them costs more than it finds.
    """
    threatened = [c.theater for c in claims if c.stance == "threat"]
    return list(dict.fromkeys([*_theaters(sentences), *threatened]))


def _evidence(document: str, involved: list[_Sentence], claims: list[Claim]) -> list[str]:
    """The sentences that caused the flag, strongest first, without repeats."""
    ranked = sorted(involved, key=lambda s: (-s.strength, s.start))
    quotes = [_quote(document, s) for s in ranked if not s.is_title]
    quotes += [claim.evidence for claim in claims]
    return list(dict.fromkeys(quotes))[:_MAX_EVIDENCE] or [_quote(document, involved[0])]


def _quote(document: str, sentence: _Sentence) -> str:
    text = " ".join(document[sentence.start : sentence.end].split())
    if len(text) > _MAX_EVIDENCE_CHARS:
        text = text[: _MAX_EVIDENCE_CHARS - 1].rstrip() + "…"
    return text
