"""The detector's article-level rules, each on a tiny lexicon so the rule alone decides.

Every test compares two articles that differ only in what the rule reads: the rule holds when
the verdicts differ, and would fail if the rule were gone.
"""

from __future__ import annotations

import pytest

from services.classifier.detector import Detector
from services.classifier.lexicon import CORE_FILE, DEFAULT_LEXICON, CoreFile, LanguageFile, Lexicon
from services.classifier.scanner import Scanner
from services.classifier.sentences import split
from shared.yamlfile import read_yaml

TINY = {
    "language": "en",
    "turkey": ["turkey", "turkish*", "ankara"],
    "turkish_actors": ["turkey", "ankara"],
    "turkish_forces": ["turkish troops"],
    "military": {"strong": ["troops", "base", "deployed"], "weak": ["forces", "sent"]},
    "off_topic": ["launch base", "elections"],
    "domestic": ["konya"],
    "exercise": ["drills"],
    "past": ["anniversary"],
    "negation": ["not", "no"],
    "negation_after": ["nay"],
    "border": ["border", "border with", "bordering"],
    "threat": ["not hesitate", "could enter"],
    "comparison": ["as we entered"],
    "comparison_after": ["girdiysek"],
    "theaters": {"somalia": ["somalia"], "karabakh": ["azerbaijani", "nakhchivan"],
                 "cyprus": ["cyprus"], "iraq": ["iraq", "iraqi"], "other": ["iran"],
                 "libya": ["libya"], "israel-gaza": ["israel"]},
}  # fmt: skip


@pytest.fixture(scope="module")
def detector() -> Detector:
    core = read_yaml(DEFAULT_LEXICON / CORE_FILE).validate(CoreFile)
    language = LanguageFile.model_validate(TINY, context=core.vocabulary.as_context())
    return Detector(Lexicon.compile(core, [language]))


def score(detector: Detector, title: str, text: str) -> float:
    return detector.classify("x", title, text, language="en").score


def test_a_military_word_inside_an_off_topic_phrase_is_no_cue(detector: Detector) -> None:
    space = detector.classify("a", "Space", "Turkey builds a launch base in Somalia.", "en")
    army = detector.classify("b", "Army", "Turkey builds a base in Somalia.", "en")
    assert army.flagged
    assert not space.flagged
    assert space.score == 0


def test_drills_inside_turkey_stay_domestic_whoever_takes_part(detector: Detector) -> None:
    text = "Turkish troops and Azerbaijani troops hold drills in {}."
    assert detector.classify("a", "Drills", text.format("Nakhchivan"), "en").flagged
    assert not detector.classify("b", "Drills", text.format("Konya"), "en").flagged


@pytest.mark.parametrize("where", ["Konya", "Nakhchivan"])
def test_drills_set_at_home_stay_at_home_in_the_next_sentences(
    detector: Detector, where: str
) -> None:
    text = "Turkish troops and Azerbaijani troops took part in the drills."
    verdict = detector.classify("a", f"Drills in {where}", text, "en")
    assert verdict.flagged == (where == "Nakhchivan")


@pytest.mark.parametrize("when", ["in 1974", "in ١٩٧٤", "in ۱۹۷۴", "on the anniversary"])
def test_history_weighs_a_quarter_of_news(detector: Detector, when: str) -> None:
    news = score(detector, "Cyprus", "Turkish troops landed in Cyprus on Tuesday.")
    history = score(detector, "Cyprus", f"Turkish troops landed in Cyprus {when}.")
    assert news >= 0.5
    assert history <= news / 4  # a quarter, and no longer a strong sentence either


def test_a_headline_whose_military_words_are_all_negated_frames_the_article(
    detector: Detector,
) -> None:
    body = "Turkey has troops in Somalia."
    sends = score(detector, "Turkey sends more troops", body)
    refuses = score(detector, "Turkey will not send troops", body)
    assert sends >= 0.5
    assert refuses < 0.5


def test_a_negation_written_after_its_verb_negates_only_a_cue_before_it(
    detector: Detector,
) -> None:
    """Suffix negation ("göndermeyecek") follows its verb: one that opens the headline, before
    any military word, negates nothing (it once halved such headlines)."""
    body = "Ankara has a base in Somalia."
    negated = score(detector, "Ankara deployed nay, Somalia", body)
    before = score(detector, "Nay, Ankara deployed in Somalia", body)
    plain = score(detector, "Yes, Ankara deployed in Somalia", body)
    assert negated < plain
    assert before == pytest.approx(plain)


def test_a_negator_inside_a_threat_negates_nothing(detector: Detector) -> None:
    threat = detector.classify("a", "Ankara", "Turkey will not hesitate to send troops to Somalia.")
    negated = detector.classify("b", "Ankara", "Turkey will not send troops to Somalia.")
    assert threat.flagged
    assert threat.stances == ["threat"]
    assert not negated.flagged


# Places listed together (both count) or compared ("as in": only the first).
LISTED_PLACES = [
    ("Somalia and Iraq", {"somalia", "iraq"}), ("Somalia and in Iraq", {"somalia", "iraq"}),
    ("Somalia, as in Iraq", {"somalia"}),
]  # fmt: skip


@pytest.mark.parametrize(("places", "threatened"), LISTED_PLACES)
def test_a_threat_points_at_every_place_listed_with_its_target(
    detector: Detector, places: str, threatened: set[str]
) -> None:
    text = f"Turkey will not hesitate to send troops to {places}."
    claims = detector.classify("a", "Ankara", text).claims
    assert {c.theater for c in claims if c.stance == "threat"} == threatened
    assert {c.theater for c in claims if c.stance != "threat"} == {"somalia", "iraq"} - threatened


@pytest.mark.parametrize(("places", "claimed"), LISTED_PLACES)
def test_a_claim_covers_every_place_listed_with_its_own(
    detector: Detector, places: str, claimed: set[str]
) -> None:
    text = f"Turkish troops were deployed in {places}. Quiet week."
    result = detector.classify("a", "Ankara", text)
    assert result.flagged
    assert {c.theater for c in result.claims} == claimed


def test_the_place_abroad_must_be_where_the_involvement_is_told(detector: Detector) -> None:
    there = score(detector, "Alert", "Turkish troops were deployed in Somalia. Quiet week.")
    elsewhere = score(detector, "Alert", "Turkish troops were deployed. Somalia held elections.")
    assert there >= 0.5
    assert elsewhere == pytest.approx(there * 0.45, rel=0.01)


def test_weak_hints_alone_weigh_less_however_many(detector: Detector) -> None:
    hints = "Ankara sent forces to Somalia. Ankara sent forces to Somalia again."
    strong = "Ankara deployed troops to Somalia. Ankara sent forces to Somalia again."
    assert score(detector, "Somalia", hints) < score(detector, "Somalia", strong) * 0.6


def test_a_word_that_two_languages_list_belongs_to_both() -> None:
    scanner = Scanner.build({"negation": {"nu": frozenset({"ro"}), "nu*": frozenset({"kmr"})}})
    (hit,) = scanner.scan("nu")
    assert hit.label == frozenset({"ro", "kmr"})


@pytest.mark.parametrize(
    "where",
    [
        "near the Iraqi border",
        "on the border with Iraq",
        "on the border with Iran and Iraq",
        "on the border with Iran, Iraq",
        "near the Iran and Iraq border",
        "on the border with l'Iraq",  # an elided article between (French, Italian)
        "on the border with Iran et l'Iraq",
    ],
)
def test_a_place_named_as_a_neighbour_across_the_border_is_no_theater(
    detector: Detector, where: str
) -> None:
    abroad = detector.classify("a", "Clash", "Turkish troops clashed with militants in Iraq.")
    border = detector.classify("b", "Clash", f"Turkish troops clashed with militants {where}.")
    assert abroad.flagged
    assert abroad.theaters == ["iraq"]
    assert not border.flagged  # no place abroad is named: set at home


@pytest.mark.parametrize(
    "text",
    [
        "Turkish troops crossed the border into Iraq.",
        "Turkish troops struck in Iraq, bordering Turkey.",  # the border follows after a comma
    ],
)
def test_a_place_beside_a_border_word_can_still_be_the_theater(
    detector: Detector, text: str
) -> None:
    result = detector.classify("a", "Raid", text)
    assert result.flagged
    assert result.theaters == ["iraq"]


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Seit dem 20. Januar greift die Armee an. Sie meldet Erfolge.", 2),  # a German date
        ("Im 20. Jahrhundert war es anders. Heute nicht.", 2),  # a German century
        ("The toll rose to 12. The ministry said so.", 2),  # a number ending a sentence
        ("« Nous restons », a souligné M. Davutoglu. Il part.", 2),  # a title before a name
        ("Gen. Hulusi Akar met George W. Bush. They spoke.", 2),  # a title, an initial
    ],
)
def test_a_full_stop_after_an_ordinal_initial_or_title_does_not_end_the_sentence(
    text: str, sentences: int
) -> None:
    assert len(split(text, 0, len(text), is_title=False)) == sentences


@pytest.mark.parametrize(
    ("text", "compared"),
    [
        ("Turkey, as we entered Libya, could enter Israel.", True),
        ("Turkey could enter Libya girdiysek and then Israel.", True),  # SOV: after the place
        ("Turkey, as troops left Libya, could enter Israel.", False),
    ],
)
def test_a_place_named_as_done_before_is_acknowledged_not_threatened(
    detector: Detector, text: str, compared: bool
) -> None:
    verdict = detector.classify("a", "Threat", text, "en")
    claims = {(c.stance, c.theater) for c in verdict.claims}
    if compared:
        assert {("threat", "israel-gaza"), ("acknowledgment", "libya")} <= claims
        assert ("threat", "libya") not in claims
        assert "libya" in verdict.theaters
    else:  # the threat points at the place named nearest its cue
        assert ("threat", "libya") in claims
