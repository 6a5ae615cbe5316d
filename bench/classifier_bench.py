"""Classifier throughput on a realistic mix, per-article cost by kind, and cost by length.

    .venv/bin/python bench/classifier_bench.py [--articles 20000] [--seed 7]

The mix (issue 12's realistic stream): 70 % general world news that never mentions Turkey,
25 % articles about Turkey that are not military (economy, sport, quakes, arms sales: the
unflagged items of every language's tuning corpus), 5 % relevant articles (the flagged ones,
in 25 languages); each padded with neutral news sentences to 1-5 KB. No language is given:
the detector detects it, as on a real feed. One process, one core.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from services.classifier.detector import Detector
from services.classifier.evaluate import LabeledItem, load_labels
from services.classifier.lexicon import load_lexicon

CORPUS = Path(__file__).parent.parent / "services" / "classifier" / "corpus"
FILLER = [
    "The central bank of Brazil left its benchmark rate unchanged on Wednesday.",
    "Heavy rain caused flooding across parts of southern Spain, officials said.",
    "Shares in European carmakers rose after better-than-expected quarterly sales.",
    "The city council approved a new budget for public transport and schools.",
    "Scientists reported progress on a vaccine against a common tropical disease.",
    "The prime minister of Japan met business leaders to discuss wage growth.",
    "A new museum of modern art opened its doors to the public in Lisbon.",
    "Farmers in Kenya warned that a long drought could hurt the coming harvest.",
    "The tennis champion withdrew from the tournament with a wrist injury.",
    "Regulators in Washington proposed new rules for cryptocurrency exchanges.",
    "The film festival announced its jury, led by an acclaimed Korean director.",
    "Engineers completed the longest suspension bridge in the region this week.",
    "Electricity prices fell as wind farms produced a record share of power.",
    "The opposition called for an inquiry into the handling of hospital waiting lists.",
    "Researchers found that sea ice in the Arctic reached a seasonal low.",
    "Police arrested three people after a series of burglaries in the suburbs.",
]


def padded(rng: random.Random, text: str, size: int) -> str:
    """The text followed by neutral news sentences until it is about ``size`` bytes."""
    parts = [text]
    length = len(text)
    while length < size:
        sentence = rng.choice(FILLER)
        parts.append(sentence)
        length += len(sentence) + 1
    return " ".join(parts)


def build_mix(rng: random.Random, count: int, items: list[LabeledItem]) -> list[tuple[str, str]]:
    """(kind, text) pairs: irrelevant general news, Turkey-but-not-military, relevant."""
    relevant = [i for i in items if i.flagged]
    turkey_other = [i for i in items if not i.flagged]
    mix = []
    for _ in range(count):
        size = rng.randint(1000, 5000)
        draw = rng.random()
        if draw < 0.05 and relevant:
            item = rng.choice(relevant)
            mix.append(("relevant", padded(rng, f"{item.title}\n{item.text}", size)))
        elif draw < 0.30 and turkey_other:
            item = rng.choice(turkey_other)
            mix.append(("turkey-other", padded(rng, f"{item.title}\n{item.text}", size)))
        else:
            mix.append(("general", padded(rng, "", size)))
    return mix


def per_call(fn: Callable[[], object], repeat: int) -> float:
    """Median microseconds per call over ``repeat`` calls (after a warm-up call)."""
    fn()
    samples = []
    for _ in range(repeat):
        started = time.process_time()
        fn()
        samples.append(time.process_time() - started)
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    detector = Detector(load_lexicon())
    # Tuning files only: the blind part is for accuracy figures, never for anything else.
    tuning = sorted(CORPUS.glob("*tune.jsonl"))
    items = [i for path in tuning for i in load_labels(path, detector.lexicon.vocabulary)]
    mix = build_mix(rng, args.articles, items)
    detector.classify("warm-up", "Turkey", "Turkish troops in Libya.")  # load the models

    started = time.process_time()
    flagged = 0
    for number, (_, text) in enumerate(mix):
        title, _, body = text.partition("\n")
        flagged += detector.classify(str(number), title, body).flagged
    elapsed = time.process_time() - started
    total_kb = sum(len(text) for _, text in mix) / 1024
    print(f"mix: {len(mix)} articles, {total_kb / len(mix):.1f} KB average, {flagged} flagged")
    print(f"throughput: {len(mix) / elapsed:,.0f} articles/s on one core (CPU time) "
          f"({elapsed / len(mix) * 1e6:.0f} us per article), no language given")  # fmt: skip

    print("\nper-article cost by kind (median, 3 KB, no language given):")
    for kind in ("general", "turkey-other", "relevant"):
        sample = [text for k, text in mix if k == kind and 2800 < len(text) < 3400][:50]
        if not sample:
            continue
        costs = []
        for text in sample:
            title, _, body = text.partition("\n")
            costs.append(per_call(partial(detector.classify, "x", title, body), 20))
        print(f"  {kind:<13} {statistics.median(costs):8.1f} us")

    print("\ncost by text length (median us per article):")
    print(f"  {'KB':>4}  {'general':>9}  {'relevant':>9}")
    relevant_text = next((text for kind, text in mix if kind == "relevant"), "")
    relevant_head = relevant_text[:800]
    for kb in (1, 2, 5, 10, 20, 50):
        general = padded(random.Random(kb), "", kb * 1024)
        relevant = padded(random.Random(kb), relevant_head, kb * 1024)
        costs = [
            per_call(partial(detector.classify, "x", "News", text, "en"), 30)
            for text in (general, relevant)
        ]
        print(f"  {kb:>4}  {costs[0]:>9.1f}  {costs[1]:>9.1f}")


if __name__ == "__main__":
    main()
