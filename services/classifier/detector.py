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
import re
from collections.abc import Set
from dataclasses import dataclass, field
from typing import cast

from services.classifier.claims import article_theaters, find_claims, lend_headline_voice
from services.classifier.lexicon import FUNCTION_WORDS, Lexicon
from services.classifier.patterns import ARABIC_SCRIPT, HEBREW_SCRIPT, fold
from services.classifier.scanner import Hit
from services.classifier.sentences import (
    WEIGHT_MENTION_STRONG,
    Sentence,
    note,
    quote,
    split,
    strength,
)
from shared.language import detect_language
from shared.models import Claim, Classification

_NEGATION_REACH = 24  # "did not deny", "will not launch", "no Turkish troops": words close by
UNDETERMINED = "und"  # BCP 47: language not determined
_LANGUAGE_SAMPLE_CHARS = 300  # enough to tell, cheap to classify
_MAX_EVIDENCE = 3
# A phrase of these lists hides what other lists find inside it: a place inside Turkey its
# Turkish words ("the Turkish border"), a fighters' origin its place ("Syrian mercenaries"),
# an off-topic phrase its military words ("a rocket launch base"), a threat its negator.
_COVERS = {
    "domestic": frozenset({"mentions", "actors", "forces", "place", "claimant"}),
    "origin": frozenset({"place"}),
    "off_topic": frozenset({"strong", "weak"}),
    "threat": frozenset({"negation"}),  # "will not hesitate", "nie wyklucza": no negation
}
_COVERED_BY = {
    kind: tuple(k for k, covered in _COVERS.items() if kind in covered)
    for kind in set().union(*_COVERS.values())
}
_INVOLVEMENT_KINDS = frozenset({"forces", "actors", "mentions", "strong", "weak"})
# Hits that only say how the places after (or before) them are named.
_MARKERS = frozenset({"origin_before", "border", "comparison", "comparison_after"})
_ARMS_TRADE_TITLE_FACTOR = 0.5
_TITLE_BOOST = 1.25
_NO_PLACE_FACTOR = 0.45
_OFF_TOPIC_TITLE_FACTOR = 0.35
_OFF_TOPIC_BODY_FACTOR = 0.7
_ONLY_HINTS_FACTOR = 0.6
_NEGATED_TITLE_FACTOR = 0.5
# What may stand between a place and the border phrase it neighbours, or between two places
# listed together: a space or a comma, an elided article, and (in a list) a short conjunction.
# Arabic and Hebrew places are found after their proclitics ("الحدود مع العراق"): those count
# as part of the gap.
_ARTICLE = f"(?:\\w{{1,4}}'|[{ARABIC_SCRIPT}{HEBREW_SCRIPT}]{{1,3}})?"
_NEXT_TO = re.compile(f"[^\\w.\\n]{{0,2}}{_ARTICLE}")
_BEFORE = re.compile(r"[\s-]{0,2}")  # "the Iraqi border"; not "Syria, bordering Turkey"
_LISTED_WITH = re.compile(f"[^\\w.\\n]{{0,2}}(?:\\w{{1,3}}[^\\w.\\n]{{0,2}})?{_ARTICLE}")
# Places a claim lists together: also "and in", "και στη" (two short words, no comma: a
# comma before them is more often a comparison, "в Израиль, как в Карабах").
_LISTED_IN_CLAIM = re.compile(
    f"(?:[^\\w.\\n]{{0,2}}(?:\\w{{1,3}}[^\\w.\\n]{{0,2}})?|\\s\\w{{1,3}}\\s\\w{{1,3}}\\s){_ARTICLE}"
)
# A year of the 19th or 20th century, in Latin, Arabic or Persian digits (1974, ١٩٧٤, ۱۹۷۴).
_PAST_YEAR = re.compile(r"(?<![\d.,])[1١۱][89٨٩۸۹]\d\d(?![\d.,]\d)")


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
        if not (self.lexicon.screen.passes(folded) and self.lexicon.prefilter.search(folded)):
            # Never about Turkey: skip the (costly) language detection too.
            return Classification(
                id=article_id, flagged=False, score=0.0, language=language or UNDETERMINED
            )
        hits = list(self.lexicon.scanner.scan(folded))
        sentences: list[Sentence] = []
        if _tells_anywhere(hits):
            sentences = split(document, 0, len(title.strip()), is_title=True)
            sentences += split(document, len(title.strip()) + 1, len(document), is_title=False)
        if not (sentences and _may_tell(hits, sentences)):
            # Turkey, but no sentence with its forces or a military word: skip the language too.
            return Classification(
                id=article_id, flagged=False, score=0.0, language=language or UNDETERMINED
            )
        sample = f"{title}. {text}"[:_LANGUAGE_SAMPLE_CHARS]
        language = language or detect_language(sample) or UNDETERMINED
        self._read(document, folded, sentences, hits, language)
        involved = [s for s in sentences if s.strength > 0]
        score = self._score(involved, sentences)
        flagged = score >= self.threshold
        if not flagged:
            return Classification(
                id=article_id, flagged=False, score=round(score, 4), language=language
            )
        subject_first = language in self.lexicon.subject_first
        claims = find_claims(document, sentences, subject_first=subject_first)
        stances = list(dict.fromkeys(claim.stance for claim in claims)) or ["report"]
        return Classification(
            id=article_id,
            flagged=True,
            score=round(score, 4),
            theaters=article_theaters(sentences, claims),
            stances=stances,
            claims=claims,
            evidence=_evidence(document, involved, claims),
            language=language,
        )

    def _read(
        self, document: str, folded: str, sentences: list[Sentence], hits: list[Hit], language: str
    ) -> None:
        """Record every lexicon hit in the sentence it falls in, then weigh each sentence."""
        starts = [s.start for s in sentences]

        def where(offset: int) -> Sentence:
            return sentences[bisect.bisect_right(starts, offset) - 1]

        covered_until = dict.fromkeys(_COVERS, -1)
        negation_end = -1
        elsewhere = _Elsewhere(folded)
        known = language in self.lexicon.languages
        for hit in hits:
            if known and hit.kind in FUNCTION_WORDS and language not in cast(Set[str], hit.label):
                continue  # a function word of another language
            coverers = _COVERED_BY.get(hit.kind)
            if coverers and any(hit.start < covered_until[k] for k in coverers):
                continue  # "the Turkish border", "Syrian mercenaries", "a rocket launch base"
            if hit.kind in covered_until:
                covered_until[hit.kind] = max(covered_until[hit.kind], hit.end)
            sentence = where(hit.start)
            if hit.kind == "origin":
                continue
            if elsewhere.read(hit, sentence):
                continue
            if hit.kind == "negation":
                negation_end = hit.end
                continue
            if hit.kind == "negation_after":
                # Suffix negation follows its verb: "asker göndermeyecek", "نانێرێت".
                if 0 <= sentence.cue_start < hit.start <= sentence.cue_end + _NEGATION_REACH:
                    sentence.negated += 1
                continue
            negated = sentence.start < negation_end <= hit.start <= negation_end + _NEGATION_REACH
            note(sentence, hit, negated=negated)
        lend_headline_voice(document, sentences)
        # Drills the article first sets at home (in Konya, in Turkish skies) stay at home in
        # the sentences that go on about them, whoever takes part ("Qatar flew four Rafales").
        first_drill = next((s for s in sentences if s.exercise), None)
        drills_at_home = first_drill is not None and first_drill.domestic > 0
        for sentence in sentences:
            sentence.past += bool(_PAST_YEAR.search(document, sentence.start, sentence.end))
            sentence.domestic += drills_at_home and sentence.exercise > 0
            sentence.strength = strength(sentence)

    def _score(self, involved: list[Sentence], sentences: list[Sentence]) -> float:
        """Noisy-OR of the involvement sentences, then the article-level factors."""
        missing = 1.0
        for sentence in involved:
            weight = sentence.strength * (_TITLE_BOOST if sentence.is_title else 1.0)
            missing *= 1.0 - min(weight, 0.95)
        score = 1.0 - missing
        if score == 0.0:
            return 0.0
        title = [s for s in sentences if s.is_title]
        if not any(s.theaters or s.abroad for s in title + involved):
            # The place abroad is named where the involvement is told, or in the headline: a
            # place elsewhere (the PKK's camps in Iraq, behind a jet crash at home) is not it.
            score *= _NO_PLACE_FACTOR
        if max(s.strength for s in title) < WEIGHT_MENTION_STRONG:
            if any(s.off_topic for s in title):
                score *= _OFF_TOPIC_TITLE_FACTOR
            if any(s.arms_trade for s in title):
                score *= _ARMS_TRADE_TITLE_FACTOR
        if max(s.strength for s in involved) < WEIGHT_MENTION_STRONG:
            score *= _ONLY_HINTS_FACTOR  # weak hints only, however many: no sentence tells it
        told = [s for s in title if s.strength > 0]
        if told and all(_all_negated(s) for s in told):
            score *= _NEGATED_TITLE_FACTOR  # "Turkey will not send troops": the article's frame
        off_topic = sum(s.off_topic for s in sentences)
        if off_topic > 2 * len(involved):
            score *= _OFF_TOPIC_BODY_FACTOR
        return min(score, 1.0)


def _tells_anywhere(hits: list[Hit]) -> bool:
    """:func:`_may_tell` of the whole document read as one sentence (its claimants all taken
    for a headline's): when false, no sentence can tell, and the text need not be split."""
    return _tells({"actors" if hit.kind == "claimant" else hit.kind for hit in hits})


def _tells(found: set[str]) -> bool:
    """Whether the kinds of hits in one sentence hold what involvement needs."""
    return (
        "forces" in found
        or ("actors" in found and ("strong" in found or "weak" in found))
        or ("mentions" in found and "strong" in found)
    )


def _may_tell(hits: list[Hit], sentences: list[Sentence]) -> bool:
    """Whether any sentence holds what involvement needs (a Turkish force, or Turkey with a
    military word), before any hit is dropped: when none does, the score is surely 0. The
    headline counts as one sentence whose speaker may lend it a Turkish voice."""
    starts = [s.start for s in sentences if not s.is_title]
    kinds: dict[int, set[str]] = {}
    for hit in hits:
        where = bisect.bisect_right(starts, hit.start)  # 0: the headline, read as one
        if hit.kind in _INVOLVEMENT_KINDS:
            kinds.setdefault(where, set()).add(hit.kind)
        elif hit.kind == "claimant" and where == 0:
            kinds.setdefault(where, set()).add("actors")  # "Erdoğan: we entered Libya"
    return any(_tells(found) for found in kinds.values())


@dataclass
class _Elsewhere:
    """Places named as somewhere else than the involvement: an origin ("fighters from Syria") or
    a neighbour across a border ("on the border with Iran and Iraq", "the Iraqi border"); and
    places named as an earlier operation ("as we entered Karabakh"), marked in ``compared``."""

    folded: str
    from_end: int = -1
    compared_end: int = -1
    border_end: int = -1
    neighbour_end: int = -1
    spans: list[tuple[int, int]] = field(default_factory=list)  # the places kept, in order

    def read(self, hit: Hit, sentence: Sentence) -> bool:
        """Whether ``hit`` is used up here: a marker, or a place that is elsewhere."""
        if hit.kind in _MARKERS:
            self._mark(hit, sentence)
            return True
        if hit.kind != "place":
            return False
        if self.from_end >= 0 and 0 <= hit.start - self.from_end <= 1:
            return True  # "fighters from Syria": where they come from
        if _adjacent(self.folded, self.border_end, hit.start, _NEXT_TO) or _adjacent(
            self.folded, self.neighbour_end, hit.start, _LISTED_WITH
        ):
            self.neighbour_end = hit.end  # "the border with Iran and Iraq"
            return True
        if self._last_kept_in(sentence) and _adjacent(
            self.folded, self.spans[-1][1], hit.start, _LISTED_IN_CLAIM
        ):
            sentence.listed.add(hit.start)  # "in northern Iraq and Syria"
        follows_compared = sentence.places and sentence.places[-1][0] in sentence.compared
        if _adjacent(self.folded, self.compared_end, hit.start, _LISTED_WITH) or (
            follows_compared and hit.start in sentence.listed
        ):
            sentence.compared.add(hit.start)  # "as we entered Karabakh (and Libya)"
        self.spans.append((hit.start, hit.end))
        return False

    def _mark(self, hit: Hit, sentence: Sentence) -> None:
        """Note a marker: "from", a border, a comparison ("as we entered", "nasıl girdiysek")."""
        if hit.kind == "origin_before":
            self.from_end = hit.end
        elif hit.kind == "comparison":
            self.compared_end = hit.end
        elif hit.kind == "comparison_after":
            self._compare_before(hit.start, sentence)
        else:
            self.border_end = hit.end
            before, gap = hit.start, _BEFORE
            while self._last_kept_in(sentence):
                start, end = self.spans[-1]
                if not _adjacent(self.folded, end, before, gap):
                    break
                # "the Iraqi border", "Irak ve Suriye sınırında": neighbours, not theaters
                sentence.places.pop()
                self.spans.pop()
                before, gap = start, _LISTED_WITH
                self.neighbour_end = hit.end

    def _compare_before(self, at: int, sentence: Sentence) -> None:
        """The places listed right before a comparison: "Karabağ'a ve Libya'ya nasıl girdiysek"."""
        for start, end in reversed(self.spans):
            if start < sentence.start or not _adjacent(self.folded, end, at, _LISTED_WITH):
                return
            sentence.compared.add(start)
            at = start

    def _last_kept_in(self, sentence: Sentence) -> bool:
        """Whether the last place kept so far is the last place of ``sentence``."""
        return bool(sentence.places and self.spans) and sentence.places[-1][0] == self.spans[-1][0]


def _adjacent(folded: str, end: int, start: int, gap: re.Pattern[str]) -> bool:
    """Whether what lies between ``end`` and ``start`` is only a ``gap`` (none when unset)."""
    return 0 <= end <= start and gap.fullmatch(folded, end, start) is not None


def _all_negated(sentence: Sentence) -> bool:
    """Every military cue of the sentence is negated, and it is no denial."""
    cues = sentence.forces + sentence.strong
    return sentence.negated >= max(1, cues) and not sentence.denial


def _evidence(document: str, involved: list[Sentence], claims: list[Claim]) -> list[str]:
    """The sentences that caused the flag, strongest first, without repeats."""
    ranked = sorted(involved, key=lambda s: (-s.strength, s.start))
    quotes = [quote(document, s) for s in ranked if not s.is_title]
    quotes += [claim.evidence for claim in claims]
    return list(dict.fromkeys(quotes))[:_MAX_EVIDENCE] or [quote(document, involved[0])]
