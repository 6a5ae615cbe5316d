"""Who claims what, where: the claims of a flagged article, decided by who speaks.

A sentence that tells of involvement, denies it or threatens it becomes a claim of its speaker
(named in it, in a "Speaker:" headline, or carried over from the previous sentence); the
speaker's side gives the stance, the places named nearest (and those listed with them) give
the theaters.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter

from services.classifier.lexicon import Claimant
from services.classifier.sentences import Sentence, quote
from shared.models import Claim, Stance, Theater

# "..., said X", "...، قال X": the speaker follows the verb (a comma, the Arabic one included).
_INVERSION = re.compile(r"[,،\"'”»—–]\s*$")
_SUBJECT_MARK = re.compile(r"\S{0,12},")  # "Bakanlık, ...", "MSB'nin, ..." (a suffix, then a comma)
_AFTER_VERB_CHARS = 30  # "..., said Turkey's defence ministry": the claimant follows closely
UNATTRIBUTED = "news report"
_GENERIC_CLAIMANTS = frozenset({UNATTRIBUTED, "Turkish officials"})
_QUOTES = {'"': '"', "«": "»", "“": "”", "„": "“", "‘": "’", "‹": "›", "'": "'"}
_OTHER_DOMINATES = 2  # how many times more often 'other' places must be named to win
_SECOND_THEATER = 0.5  # a second theater counts when named at least this share as often
_OTHER_AS_SECOND = 0.75  # 'other' beside a specific theater: named nearly as often
_SPEAKER_WORDS = 3  # "Ալիև.", "Ռուսաստանի ԱԳՆ.": a headline segment that only names someone


def find_claims(document: str, sentences: list[Sentence], *, subject_first: bool) -> list[Claim]:
    """One claim per claimant, stance and theater, quoting the body rather than the headline."""
    found: dict[tuple[str, Stance, Theater], tuple[int, Claim]] = {}
    main = main_theaters(sentences)
    own = {s.start: _claimant(s, document, subject_first) for s in sentences}
    speakers = _headline_speakers(document, sentences)
    speakers.update(_carried_speakers(document, sentences, own))
    body_first = sorted(sentences, key=lambda s: (s.is_title, s.start))
    for sentence in body_first:
        lent = speakers.get(sentence.start)
        # A "Speaker: quote" headline is the speaker's, whoever the quote names ("Erdoğan:
        # Athens should know we may come"); in the body a sentence's own speaker comes first.
        claimant = lent if sentence.is_title and lent else own[sentence.start] or lent
        turkish_says = claimant is not None and claimant.turkish
        if not (_tells(sentence) or (sentence.compared and turkish_says)):
            continue  # "'As we entered Karabakh ...', he said": a Turkish speaker's past
        stance = _stance(sentence, claimant)
        name = claimant.name if claimant else UNATTRIBUTED
        targets = _claim_theaters(sentence, stance, sentences, main)
        evidence = quote(document, sentence)
        for theater in targets:
            claim = Claim(claimant=name, stance=stance, theater=theater, evidence=evidence)
            found.setdefault((name, stance, theater), (sentence.start, claim))
        # "We may enter Israel as we entered Karabakh and Libya": the places a Turkish threat
        # names besides its targets, and those any speaker compares with, are where Turkey
        # went before (acknowledged when a Turkish voice says so).
        named_before = sentence.theaters if stance == "threat" else sentence.compared_theaters
        past_stance = "acknowledgment" if stance == "threat" or turkish_says else stance
        for before in dict.fromkeys(t for t in named_before if t not in targets):
            past = Claim(claimant=name, stance=past_stance, theater=before, evidence=evidence)
            found.setdefault((name, past_stance, before), (sentence.start, past))
    claims = [claim for _, claim in sorted(found.values(), key=lambda item: item[0])]
    return _without_generic(claims)


def lend_headline_voice(document: str, sentences: list[Sentence]) -> None:
    """Turkey is the actor of a Turkish speaker's headline words ("Erdoğan: we entered Libya")."""
    speakers = _headline_speakers(document, sentences)
    for sentence in sentences:
        speaker = speakers.get(sentence.start)
        if sentence.is_title and speaker is not None and speaker.turkish:
            sentence.actors += 1


def _headline_speakers(document: str, sentences: list[Sentence]) -> dict[int, Claimant]:
    """Who speaks in a "Speaker: quote" headline ("Erdoğan: we may come one night").

    The headline is split at the colon; the words after it are the speaker's. Armenian
    headlines also write "Ալիև. …" or "Փաշինյան։ …": a name alone before a full stop.
    """
    speakers: dict[int, Claimant] = {}
    title = [s for s in sentences if s.is_title]
    for segment, following in itertools.pairwise(title):
        mark = _last_mark(document, segment)
        named_only = len(document[segment.start : segment.end].split()) <= _SPEAKER_WORDS
        if segment.claimants and (mark == ":" or (mark in ".։" and named_only)):
            speakers[following.start] = segment.claimants[0][2]
    return speakers


def _carried_speakers(
    document: str, sentences: list[Sentence], own: dict[int, Claimant | None]
) -> dict[int, Claimant]:
    """Speakers carried to a neighbouring sentence.

    Forward: "The ministry said in a statement:" then the quote, every sentence of it when it
    is quoted, within the paragraph; "X said ...; Y" (one sentence cut at the semicolon); "X
    said ... . He added that ...": a speech verb that names nobody (a pronoun) speaks for the
    last speaker, also in the next paragraph. Backward: "Turkey will send sixty soldiers. This
    was stated by the minister." — a sentence that only names who spoke gives its speaker the
    unattributed claims before it (:func:`_attribute_back`).
    """
    carried: dict[int, Claimant] = {}
    body = [s for s in sentences if not s.is_title]
    last: Claimant | None = None
    quoted_until = -1  # the end of a quotation introduced by "X said:"
    for index, (previous, sentence) in enumerate(itertools.pairwise(body)):
        said = own[previous.start] or carried.get(previous.start)
        last = said or last
        same_paragraph = not _opens_paragraph(document, previous, sentence)
        attribution = own[sentence.start]
        if attribution is not None:
            if _only_attributes(sentence):
                _attribute_back(
                    document, body[index::-1], sentence, attribution, own=own, carried=carried
                )
            continue
        if last is None:
            continue
        if same_paragraph and sentence.start < quoted_until:
            carried[sentence.start] = last
        elif same_paragraph and _last_mark(document, previous) in (":", ";") and said is not None:
            carried[sentence.start] = last
            quoted_until = _quotation_end(document, sentence)
        elif sentence.speech and not sentence.claimants:
            carried[sentence.start] = last
    return carried


def _quotation_end(document: str, sentence: Sentence) -> int:
    """Where a quotation that opens ``sentence`` closes (-1 when it opens none)."""
    closer = _QUOTES.get(document[sentence.start])
    if closer is None:
        return -1
    end = document.find(closer, sentence.start + 1)
    return end if end >= 0 else len(document)


def _tells(sentence: Sentence) -> bool:
    """Whether a sentence tells of involvement, denies it or threatens it: a claim's sentence."""
    return sentence.strength > 0 or bool(sentence.denial or (sentence.threat and sentence.actors))


def _only_attributes(sentence: Sentence) -> bool:
    """A sentence that names a speaker and tells nothing itself ("Lo ha dichiarato il ministro")."""
    return not _tells(sentence) and not sentence.places


def _attribute_back(
    document: str,
    earlier: list[Sentence],
    attribution: Sentence,
    speaker: Claimant,
    *,
    own: dict[int, Claimant | None],
    carried: dict[int, Claimant],
) -> None:
    """Give ``speaker`` the unattributed claims of the paragraph that leads up to it.

    "The figures were released today by the Observatory", "Об этом сообщило Минобороны":
    said of the sentences before it in its paragraph, or of the previous paragraph when it
    opens one; nearest first, up to a sentence that has a speaker of its own.
    """
    breaks_left = 1 if _opens_paragraph(document, earlier[0], attribution) else 0
    following = attribution
    for sentence in earlier:
        if _opens_paragraph(document, sentence, following):
            if not breaks_left:
                return
            breaks_left -= 1
        following = sentence
        if own[sentence.start] is not None or sentence.start in carried:
            return
        if _tells(sentence):
            carried[sentence.start] = speaker


def _opens_paragraph(document: str, previous: Sentence, sentence: Sentence) -> bool:
    """Whether a paragraph break stands between two consecutive sentences."""
    return "\n\n" in document[previous.end : sentence.start]


def _last_mark(document: str, sentence: Sentence) -> str:
    """The sentence's last character: ":" or ";" when it leads into the next ("X said:")."""
    return document[sentence.start : sentence.end].rstrip()[-1:]


def _without_generic(claims: list[Claim]) -> list[Claim]:
    """Drop "news report" and "Turkish officials" where a named claimant says the same."""
    stances = {c.stance for c in claims if c.claimant not in _GENERIC_CLAIMANTS}
    if not stances:
        return claims
    return [
        c
        for c in claims
        if c.claimant not in _GENERIC_CLAIMANTS
        or (c.stance not in stances and c.claimant != UNATTRIBUTED)
    ]


def _claimant(sentence: Sentence, text: str, subject_first: bool) -> Claimant | None:
    """Whoever speaks: the claimant before a speech verb, or right after one.

    English puts the speaker nearest the verb ("..., Russian officials said"); Turkish puts
    the subject first and the verb last ("Bakanlik, ... acikladi"), hence ``subject_first``.
    A verb right after a comma or a closing quote puts the speaker after it, in most languages
    ("..., said the ministry", "..., заявили в МИД России", "», a déclaré le ministère").
    A medium that relays someone else ("according to TRT, the ministry said") yields to them.
    """
    speakers = [
        _speaker_of(sentence, text, verb_start, verb_end, subject_first)
        for verb_start, verb_end in sentence.speech
    ]
    named = [s for s in speakers if s is not None]
    if named:
        return next((s for s in named if s.side != "media"), named[0])
    if sentence.claimants and (sentence.denial or sentence.threat or sentence.official_act):
        return sentence.claimants[0][2]  # "parliament extended the mandate": an official act
    return None


def _speaker_of(
    sentence: Sentence, text: str, verb_start: int, verb_end: int, subject_first: bool
) -> Claimant | None:
    """The claimant who says what one speech verb introduces, if any."""
    after = [c for c in sentence.claimants if verb_end <= c[0] <= verb_end + _AFTER_VERB_CHARS]
    inverted = verb_start in sentence.attributions or (
        _INVERSION.search(text, max(0, verb_start - 4), verb_start)
        and not any(verb_end <= at <= verb_end + 2 for at in sentence.complementizers)
    )  # "..., said X" but not "X, sostiene che ..." (the verb opens what X says)
    if after and inverted:
        return after[0][2]  # "according to X", "..., said X"
    said_before = max((end for _, end in sentence.speech if end <= verb_start), default=-1)
    # A claimant before an earlier speech verb spoke there ("according to TRT, the ministry
    # announced": TRT for "according to", the ministry for "announced").
    before = [c for c in sentence.claimants if said_before <= c[0] and c[1] <= verb_start]
    if before and subject_first:
        # The subject is marked off by a comma ("Bakanlık, ... açıkladı"); a claimant in a
        # leading clause is not ("PKK saldırısının ardından, Erdoğan ... dedi").
        marked = [c for c in before if _SUBJECT_MARK.match(text, c[1])]
        return (marked or before)[0][2]
    if before:
        return before[-1][2]
    return after[0][2] if after else None


def _stance(sentence: Sentence, claimant: Claimant | None) -> Stance:
    """Decided by who speaks: the claimant's side, unless they deny or Turkey threatens."""
    if sentence.denial:
        return "denial"
    turkish_voice = claimant is None or claimant.turkish
    if sentence.threat and turkish_voice and (sentence.actors or sentence.forces):
        return "threat"
    if claimant is None:
        return "report"
    return claimant.stance


def _claim_theaters(
    sentence: Sentence, stance: Stance, sentences: list[Sentence], main: list[Theater]
) -> list[Theater]:
    """Where one claim places Turkey's involvement: a theater and the places listed with it.

    A threat points at the place named nearest its cue ("could enter Israel as it entered
    Karabakh" threatens Israel); any claim also covers the places listed with its own ("in
    northern Iraq and Syria": both).
    """
    places = [(at, t) for at, t in sentence.places if at not in sentence.compared]
    if stance == "threat" and sentence.threat_at >= 0:
        if not places:  # "as we entered Karabakh, we may do the same to them": the article's
            return [t for t in main if t not in sentence.theaters][:1] or main[:1]
        nearest = min(range(len(places)), key=lambda i: abs(places[i][0] - sentence.threat_at))
        return _listed_with(places, nearest, sentence)
    chosen = _claim_theater(sentence, sentences, main)
    at = next((i for i, (_, theater) in enumerate(places) if theater == chosen), None)
    listed = _listed_with(places, at, sentence) if at is not None else []
    return list(dict.fromkeys([chosen, *listed]))


def _listed_with(places: list[tuple[int, Theater]], at: int, sentence: Sentence) -> list[Theater]:
    """The theaters of the places listed together with ``places[at]`` ("Iraq and Syria")."""
    first = last = at
    while first > 0 and places[first][0] in sentence.listed:
        first -= 1
    while last + 1 < len(places) and places[last + 1][0] in sentence.listed:
        last += 1
    return list(dict.fromkeys(t for _, t in places[first : last + 1]))


def _claim_theater(sentence: Sentence, sentences: list[Sentence], main: list[Theater]) -> Theater:
    """Where one claim that is no threat places Turkey's involvement.

    Its sentence's place, preferring the article's main theater when the sentence names
    several ("fighters from Syria sent to Karabakh"); a sentence with no place takes the
    nearest place before it, else the main one.
    """
    if sentence.places:
        in_main = [t for _, t in sentence.places if t in main]
        return in_main[0] if in_main else Counter(sentence.theaters).most_common(1)[0][0]
    if not sentence.is_title:
        earlier = [s for s in sentences if s.start < sentence.start and s.places and not s.is_title]
        if earlier:
            in_main = [t for _, t in earlier[-1].places if t in main]
            return in_main[0] if in_main else earlier[-1].places[0][1]
    return main[0]


def main_theaters(sentences: list[Sentence]) -> list[Theater]:
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
    if counts["other"] >= top * _OTHER_AS_SECOND:  # UNIFIL beside Syria in a mandate story
        specific = dict(counts)
        top = max(specific.values())
    return [
        t for t, n in sorted(specific.items(), key=lambda i: -i[1]) if n >= top * _SECOND_THEATER
    ]


def article_theaters(sentences: list[Sentence], claims: list[Claim]) -> list[Theater]:
    """The places the article is about, plus where its threats point (Israel in a Karabakh story)
    and the operations its speakers name as done before ("as we entered Libya").

    Other claims' theaters are not added: a claim about the Syrians sent to Libya names Syria
    in passing, and measured on the tuning corpus adding them costs more than it finds.
    """
    threatened = [c.theater for c in claims if c.stance == "threat"]
    compared = [t for s in sentences for t in s.compared_theaters]
    return list(dict.fromkeys([*main_theaters(sentences), *threatened, *compared]))
