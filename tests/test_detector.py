"""The detector, the lexicon loader and the evaluation, on hand-written articles."""

from __future__ import annotations

import shutil
from pathlib import Path

import feedparser
import pytest

from services.classifier.detector import Detector
from services.classifier.evaluate import evaluate, load_labels
from services.classifier.lexicon import DEFAULT_LEXICON, LexiconError, load_lexicon
from services.classifier.patterns import fold, trie_regex
from services.classifier.scanner import Scanner
from services.classifier.screen import Screen
from services.poller.text import html_to_text
from services.runner import DEFAULT_SOURCES
from shared.vocabulary import DEFAULT_VOCABULARY


def test_a_contested_report_names_each_claimant_and_stance(detector: Detector) -> None:
    result = detector.classify(
        "k1",
        "Armenia accuses Turkey of sending F-16s to Azerbaijan; Ankara denies",
        "Armenia's foreign ministry said Turkish F-16 fighter jets had been deployed to "
        "Azerbaijan near the border. Turkey's foreign ministry denied the claim, calling it "
        "baseless.",
    )
    assert result.flagged
    assert result.theaters == ["karabakh"]
    assert {"assertion", "denial"} <= set(result.stances)
    claims = {(claim.claimant, claim.stance) for claim in result.claims}
    assert ("Armenian government", "assertion") in claims
    assert ("Turkish foreign ministry", "denial") in claims
    denial = next(c for c in result.claims if c.claimant == "Turkish foreign ministry")
    assert denial.evidence.startswith("Turkey's foreign ministry denied the claim")


@pytest.mark.parametrize(
    ("title", "text", "theater", "stance"),
    [
        ("Turkish drones strike PKK targets in northern Iraq",
         "Turkish armed drones struck PKK positions in the Qandil mountains overnight, "
         "Turkey's defence ministry said.", "iraq", "acknowledgment"),
        ("Erdogan threatens new operation in Syria",
         "President Erdogan said Turkey could launch a new cross-border operation against "
         "Kurdish fighters in northern Syria at any moment.", "syria", "threat"),
        ("UN panel: Turkish-paid Syrian mercenaries still in Libya",
         "A UN panel of experts reported that Syrian fighters recruited and paid by Turkey "
         "remain deployed around Tripoli.", "libya", "assertion"),
        ("Turkish armoured vehicles seen crossing into Idlib",
         "A convoy of Turkish armoured vehicles and tanks crossed into Idlib province on "
         "Tuesday.", "syria", "report"),
        ("Türk Silahlı Kuvvetleri Irak'ın kuzeyinde harekât düzenledi",
         "Milli Savunma Bakanlığı, Pençe-Kilit Harekâtı bölgesinde 7 teröristin etkisiz hale "
         "getirildiğini açıkladı.", "iraq", "acknowledgment"),
        ("В Ливии остаются турецкие военные",
         "Турецкие военные инструкторы и сирийские наёмники по-прежнему находятся в Триполи, "
         "заявили в МИД России.", "libya", "assertion"),
        ("L'armée turque déploie des drones à Chypre",
         "Des drones turcs ont été déployés sur une base du nord de Chypre, a annoncé le "
         "ministère turc de la Défense.", "cyprus", "acknowledgment"),
    ],
)  # fmt: skip
def test_involvement_is_flagged_with_theater_and_stance(
    detector: Detector, title: str, text: str, theater: str, stance: str
) -> None:
    result = detector.classify("x", title, text)
    assert result.flagged, result
    assert result.theaters == [theater]
    assert stance in result.stances
    assert result.evidence, "a flag always cites its sentences"
    assert all(sentence in f"{title}\n{text}" for sentence in result.evidence)
    assert 0.5 <= result.score <= 1.0


@pytest.mark.parametrize(
    ("title", "text"),
    [
        ("Turkish lira slips to record low", "The lira weakened after inflation data."),
        ("Galatasaray beat Fenerbahce", "Galatasaray won the Istanbul derby 2-1."),
        ("How to roast a Thanksgiving turkey", "Brine the bird overnight and roast it slowly."),
        ("Baykar sells Bayraktar TB2 drones to Poland",
         "Turkish drone maker Baykar signed a contract to export TB2 drones to Poland's army."),
        ("Russian peacekeepers leave Karabakh",
         "Russian peacekeepers began withdrawing from Nagorno-Karabakh, Moscow said."),
        ("Armenian and Azerbaijani troops exchange fire",
         "Armenia and Azerbaijan accused each other of shelling positions near the border."),
        ("Magnitude 6 earthquake hits eastern Turkey",
         "Soldiers and rescue teams searched the rubble in Malatya after the quake."),
        ("Israel strikes targets in Gaza", "Israeli jets struck targets in the Gaza Strip."),
    ],
)  # fmt: skip
def test_hard_negatives_are_not_flagged(detector: Detector, title: str, text: str) -> None:
    result = detector.classify("x", title, text)
    assert not result.flagged, result
    assert result.claims == []
    assert result.theaters == []


def test_an_article_that_never_mentions_turkey_scores_zero(detector: Detector) -> None:
    result = detector.classify("x", "Rain in Spain", "Heavy rain flooded Valencia.", "es")
    assert result.score == 0.0
    assert result.language == "es"


def test_language_is_detected_when_not_given(detector: Detector) -> None:
    result = detector.classify(
        "x", "Turquie", "L'armée turque a déployé des soldats en Libye, selon le ministère."
    )
    assert result.language == "fr"


def test_folding_keeps_length_and_unifies_spellings() -> None:
    original = "Türkiye’nin İstanbul ERDOĞAN Azerbaïdjan Ёлка"
    assert len(fold(original)) == len(original)
    assert fold(original) == "turkiye'nin istanbul erdogan azerbaidjan елка"


def test_patterns_respect_word_boundaries_wildcards_and_hyphens() -> None:
    regex = trie_regex(["turkish troops", "deploy*", "f 16*", "defen?e ministry", "iha*"])
    found = [m.group() for m in regex.finditer(fold(
        "Turkish-troops were deployed; F-16s and the defense ministry; siha is not iha; "
        "redeployed"))]  # fmt: skip
    assert found == ["turkish-troops", "deployed", "f-16s", "defense ministry", "iha"]


def test_the_longest_phrase_wins_whether_a_wildcard_comes_first_or_last() -> None:
    """The longest phrase wins: "τουρκ* στρατιωτων" over "τουρκων", "libyan national army"."""
    regex = trie_regex(["τουρκων", "τουρκ* στρατιωτων", "libya*", "libyan national army"])
    text = "τουρκων στρατιωτων; τουρκων δυναμεων; libyan national army; libyans"
    found = [m.group() for m in regex.finditer(text)]
    assert found == ["τουρκων στρατιωτων", "τουρκων", "libyan national army", "libyans"]


def test_the_scanner_finds_nested_and_overlapping_phrases_with_their_labels() -> None:
    scanner = Scanner.build({
        "place": {"iraq": "iraq", "northern iraq": "north", "erbil": "krg"},
        "forces": {"turkish troops": True},
        "strong": {"troops": True, "troops in": True},
        "threat": {"could enter": True},
        "weak": {"enter northern": True},
    })  # fmt: skip
    text = "turkish troops could enter northern iraq and erbil"
    hits = [(text[h.start : h.end], h.kind, h.label) for h in scanner.scan(text)]
    assert hits == [
        ("turkish troops", "forces", True),
        ("troops", "strong", True),
        ("could enter", "threat", True),
        ("enter northern", "weak", True),
        ("northern iraq", "place", "north"),
        ("erbil", "place", "krg"),
    ]


def _starts_of_every_phrase(scanner: Scanner, text: str) -> list[int]:
    """Every position where a phrase of the scanner starts, trying its tries everywhere."""
    tries = [scanner.by_first.get(char) for char in text]
    return [at for at, trie in enumerate(tries) if trie and trie.match(text, at)]


HEADS_PATTERNS = [
    "a la frontiere", "in", "the ministry", "f 16*", "f-35", "defen?e ministry", "mit'",
    "u.s. troops", "turkish troops", "τουρκ* στρατιωτων", "القوات التركية", "تركيا", "من",
    "טורקיה", "erdogan*",
]  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "In the ministry, à la frontière; a  la frontiere (in) and A-la-frontière",
        "F-16s, f16 and F 16; the F35, f-35; defence and defense ministry; MİT'in; mit'",
        "U.S. troops and u.s.troops; Turkish-troops, turkishtroops; Erdoğan'ın; erdoganist",
        "τουρκων στρατιωτων και Τουρκικών στρατιωτών",
        "والقوات التركية وبالقوات  التركيه في تـركيا ومن تُركيا، مِن سوريا",
        "לטורקיה ומטורקיה; טורקיה",
    ],
)
def test_the_scanner_tries_its_phrases_wherever_one_starts(text: str) -> None:
    """The Aho-Corasick pass that picks where to try the regex misses no phrase: not after
    proclitics, a stretched Arabic letter, a hyphen, two spaces, or at either end."""
    scanner = Scanner.build({"weak": dict.fromkeys(HEADS_PATTERNS, True)})
    folded = fold(text)
    starts = scanner.heads.starts(folded)
    assert starts == sorted(set(starts))
    everywhere = _starts_of_every_phrase(scanner, folded)
    assert everywhere
    assert set(everywhere) <= set(starts)
    assert len(starts) < len(folded) / 4  # and it skips most positions


def test_the_scanner_misses_no_phrase_of_the_lexicon_in_any_language(detector: Detector) -> None:
    scanner = detector.lexicon.scanner
    corpus = Path(DEFAULT_LEXICON).parent / "corpus"
    checked = set()
    for file in sorted(corpus.glob("*tune.jsonl")):
        for item in load_labels(file, DEFAULT_VOCABULARY):
            if item.language in checked:
                continue
            checked.add(item.language)
            folded = fold(f"{item.title}\n{item.text}")
            assert set(_starts_of_every_phrase(scanner, folded)) <= set(
                scanner.heads.starts(folded)
            )
    assert len(checked) >= 25


def test_a_bad_lexicon_fails_with_the_location_of_the_problem(tmp_path: Path) -> None:
    folder = shutil.copytree(DEFAULT_LEXICON, tmp_path / "lexicon")
    en = folder / "en.yaml"
    en.write_text(en.read_text(encoding="utf-8").replace("- troops\n", "- tro*ops\n", 1))
    with pytest.raises(LexiconError, match=r"en\.yaml:\d+: military\.strong: .*tro\*ops"):
        load_lexicon(folder)
    en.write_text("language: en\nturkey: [", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"en\.yaml:2: not valid YAML"):
        load_lexicon(folder)
    en.write_text("language: en\nclaimants: {Nobody: [nobody]}\n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"en\.yaml: claimants: unknown claimant 'Nobody'"):
        load_lexicon(folder)
    with pytest.raises(LexiconError, match="not a lexicon folder"):
        load_lexicon(tmp_path / "missing")


def test_a_lexicon_edit_changes_the_verdict(tmp_path: Path) -> None:
    edited = shutil.copytree(DEFAULT_LEXICON, tmp_path / "lexicon")
    (edited / "xx.yaml").write_text("language: xx\ntheaters: {other: [pitcairn]}\n")
    title, body = "Ankara mulls troops", "Turkey said it may deploy troops to Pitcairn."
    assert (
        Detector(load_lexicon()).classify("x", title, body).score
        < Detector(load_lexicon(edited)).classify("x", title, body).score
    )


def test_evaluation_counts_hits_and_misses(detector: Detector, tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        '{"id": "a", "title": "Turkish troops deploy to Libya", "text": "Turkish troops '
        'arrived in Tripoli, the defence ministry in Ankara said.", "flagged": true, '
        '"theaters": ["libya"], "stances": ["acknowledgment"]}\n'
        '{"id": "b", "title": "Lira falls", "text": "The Turkish lira fell.", "flagged": true, '
        '"theaters": ["other"], "stances": ["report"]}\n'
        '{"id": "c", "title": "Lira rises", "text": "The Turkish lira rose.", "flagged": false}\n',
        encoding="utf-8",
    )
    report = evaluate(detector, load_labels(labels, detector.lexicon.vocabulary))
    assert (report.tp, report.fn, report.tn, report.fp) == (1, 1, 1, 0)
    assert report.precision == 1.0
    assert report.recall == 0.5
    assert report.theater_accuracy == 1.0
    assert [miss.id for miss in report.misses] == ["b"]
    assert "F1 0.667" in report.render()


def test_a_bad_label_line_is_named(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        '{"id": "a", "title": "t", "text": "x", "flagged": false}\n'
        '{"id": "b", "title": "t", "text": "x", "flagged": "maybe"}\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="line 2: flagged"):
        load_labels(labels, DEFAULT_VOCABULARY)


def test_the_offline_sample_feed_flags_its_six_reports_and_nothing_else(detector: Detector) -> None:
    feed = feedparser.parse(DEFAULT_SOURCES.parent / "sample-feed.xml")
    verdicts = [detector.classify(e.id, e.title, html_to_text(e.summary)) for e in feed.entries]
    assert [v.flagged for v in verdicts] == [True] * 6 + [False] * 6
    theaters = [v.theaters for v in verdicts[:6]]
    assert theaters == [["iraq"], ["karabakh"], ["syria"], ["somalia"], ["libya"], ["cyprus"]]


def test_claims_quote_the_body_and_name_the_most_specific_claimant(detector: Detector) -> None:
    result = detector.classify(
        "c1",
        "Turkey deploys armed drones to northern Cyprus, says defence ministry",
        "Turkey's defence ministry confirmed that Bayraktar TB2 armed drones had been deployed "
        "to an airbase in northern Cyprus.",
    )
    [claim] = result.claims
    assert claim.claimant == "Turkish defence ministry"
    assert claim.evidence.startswith("Turkey's defence ministry confirmed")


def test_the_screen_never_hides_a_mention_the_prefilter_finds() -> None:
    """The screen is a necessary condition: cheaper, never stricter than the prefilter."""
    small = Screen.build(["pro turc*", "italo turc*", "türkiye*", "tur?ey"])
    assert small.cores == ("tu", "turc", "turk")
    assert small.passes("la flotte turque")
    assert not small.passes("la flotte russe")
    assert not Screen.build([]).passes("turkey")
    lexicon = load_lexicon()
    corpus = Path(DEFAULT_LEXICON).parent / "corpus"
    found = 0
    for file in sorted(corpus.glob("*.tune*.jsonl")):
        for item in load_labels(file, DEFAULT_VOCABULARY):
            text = fold(f"{item.title}\n{item.text}")
            if lexicon.prefilter.search(text):
                found += 1
                assert lexicon.screen.passes(text), item.id
    assert found > 1000
    general = fold("Floods in Valencia: the regional government asked Madrid for more help.")
    assert not lexicon.screen.passes(general)
