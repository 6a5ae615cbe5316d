"""Reading many scripts: folding, proclitics, word order and claim theaters.

A small lexicon written here (not the bundled one, which keeps changing as it is tuned) shows
each mechanism; the bundled lexicon's own behaviour is measured by `vigil eval` on the corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.classifier.detector import Detector
from services.classifier.lexicon import DEFAULT_LEXICON, LexiconError, load_lexicon
from services.classifier.patterns import fold, trie_regex

CORE = """
version: 2
sides: {turkey: acknowledgment, host: acknowledgment, third: assertion, media: assertion,
        evidence: report}
claimants:
  - {name: Turkish defence ministry, side: turkey}
  - {name: Armenian government, side: third}
  - {name: Azerbaijani government, side: host}
"""
ARABIC = """
language: ar
turkey: [تركيا, تركي*, انقره]
turkish_forces: [قوات تركي*]
military: {strong: [مرتزق*]}
speech: [قال*, اعلن*]
theaters: {libya: [ليبيا, طرابلس]}
claimants: {Turkish defence ministry: [وزاره الدفاع التركي*]}
"""
HEBREW = """
language: he
turkey: [טורקיה, טורקי*]
military: {strong: [חיילים]}
theaters: {syria: [סוריה]}
"""
TURKISH = """
language: tr
word_order: sov
turkey: [turkiye*, msb]
turkish_actors: [msb]
military: {strong: [asker*]}
speech: [acikladi]
negation: [degil]
theaters: {iraq: [irak*]}
claimants: {Turkish defence ministry: [msb], Armenian government: [ermenistan*]}
"""


@pytest.fixture
def lexicon_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "lexicon"
    folder.mkdir()
    for name, text in {"core": CORE, "ar": ARABIC, "he": HEBREW, "tr": TURKISH}.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("written", "folded"),
    [
        ("ΤΟΥΡΚΙΚΈΣ δυνάμεις", "τουρκικεσ δυναμεισ"),  # Greek accents and final sigma
        ("Թուրքիայի", "թուրքիայի"),  # Armenian capitals
        ("أنقرة", "انقره"),  # Arabic hamza on alef, ta marbuta
        ("ترکیه", "تركيه"),  # Persian kaf and yeh
        ("TÜRKİYE'NİN", "turkiye'nin"),
        ("قره\u200cباغ", "قره باغ"),  # Persian zero-width non-joiner
        ("כטב״ם", 'כטב"ם'),  # Hebrew gershayim
        ("حذّر", "حذ\u0640ر"),  # Arabic shadda and short vowels: the tatweel, which patterns skip
    ],
)
def test_folding_unifies_the_ways_a_word_is_written(written: str, folded: str) -> None:
    assert fold(written) == folded
    assert len(fold(written)) == len(written)  # positions still point into the original


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        ("قوات تركي*", "وصلت والقوات التركية إلى طرابلس", "قوات التركية"),
        ("قوات تركي*", "دعم للقوات التركية", "قوات التركية"),
        ("تركيا", "قالت وتركيا", "تركيا"),
        ("تركيا", "مشتركيا", None),  # inside a word, not after proclitics
        ("טורקיה", "הגיעו לטורקיה אתמול", "טורקיה"),
        ("טורקיה", "ומהטורקיה", "טורקיה"),
    ],
)
def test_proclitics_attach_to_arabic_and_hebrew_words(
    pattern: str, text: str, found: str | None
) -> None:
    match = trie_regex([pattern]).search(fold(text))
    if found is None:
        assert match is None
    else:
        assert match is not None
        assert fold(found) in match.group()


def test_an_arabic_article_is_read_with_its_clitics(lexicon_dir: Path) -> None:
    detector = Detector(load_lexicon(lexicon_dir))
    result = detector.classify(
        "ar1",
        "مرتزقة سوريون في ليبيا",
        "أعلنت وزارة الدفاع التركية أن القوات التركية وصلت إلى طرابلس.",
    )
    assert result.flagged
    assert result.theaters == ["libya"]
    [claim] = result.claims
    assert (claim.claimant, claim.stance, claim.theater) == (
        "Turkish defence ministry",
        "acknowledgment",
        "libya",
    )
    assert claim.evidence == "أعلنت وزارة الدفاع التركية أن القوات التركية وصلت إلى طرابلس."


def test_an_arabic_article_is_read_with_its_vowel_marks(lexicon_dir: Path) -> None:
    """Harakat and the shadda ("التُّركيّة") hide neither Turkey nor its forces."""
    detector = Detector(load_lexicon(lexicon_dir))
    text = "أعلنت وزارة الدّفاع التُّركيّة أنّ القوّات التُّركيّة وصلت إلى طرابلس."
    result = detector.classify("ar2", "مرتزقة في ليبيا", text)
    assert result.flagged
    assert result.theaters == ["libya"]
    assert result.evidence[0] == text  # quoted as written, vowel marks and all


def test_a_subject_first_language_takes_the_first_claimant(lexicon_dir: Path) -> None:
    """Turkish puts the speaker first and the verb last: "MSB, Ermenistan'ın ... açıkladı"."""
    detector = Detector(load_lexicon(lexicon_dir))
    result = detector.classify(
        "tr1",
        "Irak'ın kuzeyinde askerler",
        "MSB, Ermenistan'ın iddialarına rağmen Türkiye askerlerinin Irak'ta olduğunu açıkladı.",
        language="tr",
    )
    assert result.flagged
    assert [(c.claimant, c.stance) for c in result.claims] == [
        ("Turkish defence ministry", "acknowledgment")
    ]


def test_a_negated_involvement_weighs_less(lexicon_dir: Path) -> None:
    detector = Detector(load_lexicon(lexicon_dir))
    stated = detector.classify("a", "Irak", "Türkiye askerleri Irak'ta.", language="tr")
    negated = detector.classify("b", "Irak", "Türkiye degil askerleri Irak'ta.", language="tr")
    assert negated.score < stated.score


SEED_CASES = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "seed_case.jsonl").read_text("utf-8").splitlines()
]


@pytest.mark.parametrize("case", SEED_CASES, ids=[c["language"] for c in SEED_CASES])
def test_the_seed_case_gives_each_claim_its_own_theater(
    detector: Detector, case: dict[str, str]
) -> None:
    """Issue 12 (3), as each language's press writes it: an assertion and a denial on
    Karabakh, a threat on Israel, and the operations Erdoğan names as done acknowledged."""
    result = detector.classify("seed", case["title"], case["text"])
    assert result.flagged
    got = {(c.stance, c.theater) for c in result.claims}
    assert {("assertion", "karabakh"), ("denial", "karabakh"), ("threat", "israel-gaza")} <= got
    assert not {(s, t) for s, t in got if s == "threat" and t != "israel-gaza"}
    assert {("acknowledgment", "karabakh"), ("acknowledgment", "libya")} <= got
    # The article's theaters: every claim's (LABELING.md), the past operations included.
    assert set(result.theaters) == {"karabakh", "israel-gaza", "libya"}


def test_a_language_file_must_be_named_after_its_language(lexicon_dir: Path) -> None:
    (lexicon_dir / "xx.yaml").write_text("language: ar\n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"xx\.yaml:1: language: 'ar' in a file named xx\.yaml"):
        load_lexicon(lexicon_dir)


def test_a_claimant_cannot_change_sides_between_languages(lexicon_dir: Path) -> None:
    (lexicon_dir / "xx.yaml").write_text(
        "language: xx\nclaimants: {Armenian government: {side: host, patterns: [hayastan]}}\n",
        encoding="utf-8",
    )
    with pytest.raises(LexiconError, match="'Armenian government' is side third elsewhere"):
        load_lexicon(lexicon_dir)


def test_the_bundled_lexicon_reads_every_language_of_the_corpus() -> None:
    corpus = DEFAULT_LEXICON.parent / "corpus"
    wanted = {path.name.split(".")[0] for path in corpus.glob("*.blind.jsonl")}
    assert wanted <= load_lexicon().languages


def test_where_fighters_come_from_is_not_a_theater(lexicon_dir: Path) -> None:
    (lexicon_dir / "it.yaml").write_text(
        "language: it\nturkey: [turchia]\nturkish_actors: [turchia]\n"
        "military: {strong: [mercenari]}\norigin: [mercenari siriani]\n"
        "theaters: {syria: [siria*], libya: [libia]}\n",
        encoding="utf-8",
    )
    detector = Detector(load_lexicon(lexicon_dir))
    result = detector.classify(
        "it1", "Libia", "La Turchia ha inviato mercenari siriani in Libia. Mercenari in Libia."
    )
    assert result.flagged
    assert result.theaters == ["libya"]
    assert {c.theater for c in result.claims} == {"libya"}


def test_according_to_names_the_speaker_after_it(lexicon_dir: Path) -> None:
    (lexicon_dir / "xx.yaml").write_text(
        "language: xx\nattribution: [بحسب]\nclaimants: {Armenian government: [الحكومه الارمني*]}\n",
        encoding="utf-8",
    )
    detector = Detector(load_lexicon(lexicon_dir))
    result = detector.classify(
        "ar2",
        "مرتزقة في ليبيا",
        "وزارة الدفاع التركية أرسلت القوات التركية إلى طرابلس، بحسب الحكومة الأرمنية.",
    )
    assert [c.claimant for c in result.claims] == ["Armenian government"]


@pytest.mark.parametrize(
    "text",
    [
        "أرسلت تركيا الجنود والطائرات المسيرة إلى طرابلس، قال المتحدث باسم الجيش الوطني الليبي.",
        "«أرسلت تركيا مئات الجنود والطائرات المسيرة إلى ليبيا»، قال المسماري للصحفيين.",
        "ترکیه صدها سرباز و پهپاد به لیبی فرستاده است، گفت سخنگوی ارتش ملی لیبی.",
    ],
)
def test_a_speaker_after_the_arabic_comma_is_the_one_who_speaks(
    detector: Detector, text: str
) -> None:
    """ "…، قال X": the Arabic comma before the verb puts its speaker after it, as "…, said X"."""
    result = detector.classify("ar3", "ليبيا", text)
    assert [(c.claimant, c.stance) for c in result.claims] == [
        ("Libyan National Army", "assertion")
    ]


def test_other_places_win_only_when_they_dominate(lexicon_dir: Path) -> None:
    (lexicon_dir / "en.yaml").write_text(
        "language: en\nturkey: [turkish]\nturkish_forces: [turkish troops]\n"
        "theaters: {other: [lebanon, unifil], israel-gaza: [israel]}\n",
        encoding="utf-8",
    )
    detector = Detector(load_lexicon(lexicon_dir))
    lebanon = "Turkish troops serve with UNIFIL in Lebanon. UNIFIL patrols south Lebanon."
    assert detector.classify("l", "Lebanon", lebanon + " Israel is near.").theaters == ["other"]
    gaza = "Turkish troops in Israel? Turkish troops near Israel, not Lebanon."
    assert detector.classify("g", "Israel", gaza).theaters == ["israel-gaza"]


def test_a_headline_speaker_speaks_the_whole_quote(tmp_path: Path) -> None:
    """ "Erdoğan: Athens ...": the capital his quote names is its object, not its speaker."""
    folder = tmp_path / "lexicon"
    folder.mkdir()
    core = CORE + "  - {name: Turkish president, side: turkey}\n"
    core += "  - {name: Greek government, side: third}\n"
    english = """
language: en
turkey: [turkey, turkish*, erdogan]
turkish_actors: [turkey]
military: {strong: [troops]}
threat: [may come]
theaters: {other: [aegean, islands]}
claimants: {Turkish president: [erdogan], Greek government: [athens]}
"""
    (folder / "core.yaml").write_text(core, encoding="utf-8")
    (folder / "en.yaml").write_text(english, encoding="utf-8")
    detector = Detector(load_lexicon(folder))
    result = detector.classify(
        "1",
        "Erdogan: Athens should know that our troops may come to the islands one night",
        "Turkey and Greece dispute the Aegean.",
        "en",
    )
    assert [(c.claimant, c.stance) for c in result.claims] == [("Turkish president", "threat")]
