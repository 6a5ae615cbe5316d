"""Accuracy and speed of the language detector on real multilingual news, per language.

    .venv/bin/python bench/language_bench.py [CORPUS_DIR] [--mode article|title]

Reads every ``*.blind.jsonl`` and ``*.tune.jsonl`` under CORPUS_DIR (default: the classifier's
labeled corpus), each line with ``language``, ``title`` and ``text``, and asks
:func:`shared.language.detect_language` for the language of the article (title and text, as
the poller and the classifier hand it) or of the title alone. Prints one row per language with its
accuracy and what it was mistaken for, then the time per call and the model's memory.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

from shared.language import detect_language, load_models

CORPUS = Path(__file__).parent.parent / "services" / "classifier" / "corpus"
# The corpus has no Somali yet: six news sentences written for this bench stand in for it.
SOMALI = [
    "Ciidamada Turkiga ayaa sii wadaya tababarka askarta xoogga dalka Soomaaliya ee ku sugan "
    "xerada Turksom ee magaalada Muqdisho, sida ay sheegtay wasaaradda gaashaandhigga.",
    "Dowladda federaalka Soomaaliya ayaa ku dhawaaqday in ay heshiis la gashay dowladda "
    "Turkiga oo ku saabsan ilaalinta badda iyo horumarinta ciidamada badda.",
    "Madaxweyne Xasan Sheekh Maxamuud ayaa maanta kulan la yeeshay safiirka Turkiga ee "
    "Muqdisho, waxaana ay ka wada hadleen xaaladda amni ee dalka.",
    "Diyaarado aan duuliye lahayn oo ay leedahay Turkiga ayaa weeraray saldhigyo ay leedahay "
    "Al-Shabaab oo ku yaal gobolka Shabeellaha Dhexe.",
    "Golaha shacabka Soomaaliya ayaa ansixiyay heshiiska difaaca ee dalka la galay Turkiga, "
    "kaas oo socon doona muddo toban sano ah.",
    "Roobab culus oo ka da'ay gobollada koonfureed ayaa sababay daadad ay ku barakaceen "
    "kumanaan qoys, sida ay sheegeen hay'adaha gargaarka.",
]


def samples(folder: Path, mode: str) -> list[tuple[str, str]]:
    """(language, text) pairs of every labeled item in ``folder``."""
    pairs = []
    for path in sorted([*folder.glob("*.blind.jsonl"), *folder.glob("*.tune.jsonl")]):
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            title, text = item.get("title", ""), item.get("text", "")
            pairs.append((item["language"], title if mode == "title" else f"{title}. {text}"))
    if not any(language == "so" for language, _ in pairs):
        pairs += [("so", s[:70] if mode == "title" else s) for s in SOMALI]
    return pairs


def _rss_mib() -> float:
    """Resident memory of this process now (Linux)."""
    status = Path("/proc/self/status").read_text()
    return int(next(ln for ln in status.splitlines() if ln.startswith("VmRSS:")).split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=CORPUS)
    parser.add_argument("--mode", choices=("article", "title"), default="article")
    args = parser.parse_args()
    pairs = samples(args.corpus, args.mode)
    if not pairs:
        raise SystemExit(f"no *.blind.jsonl or *.tune.jsonl items under {args.corpus}")
    before = _rss_mib()
    started = time.perf_counter()
    load_models()
    load_seconds = time.perf_counter() - started
    model_mib = _rss_mib() - before
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    mistaken: defaultdict[str, Counter[str]] = defaultdict(Counter)
    started = time.perf_counter()
    for language, text in pairs:
        found = detect_language(text)
        total[language] += 1
        if found == language:
            right[language] += 1
        else:
            mistaken[language][str(found)] += 1
    per_call = (time.perf_counter() - started) / len(pairs)
    print(f"{'language':<9} {'right':>9} {'accuracy':>9}  mistaken for")
    for language in sorted(total):
        wrong = ", ".join(f"{code} ×{n}" for code, n in mistaken[language].most_common())
        print(f"{language:<9} {right[language]:>4}/{total[language]:<4} "
              f"{right[language] / total[language]:>9.3f}  {wrong}")  # fmt: skip
    overall = sum(right.values()) / len(pairs)
    print(f"{'all':<9} {sum(right.values()):>4}/{len(pairs):<4} {overall:>9.3f}")
    print(f"mode {args.mode}: {per_call * 1e6:.0f} µs per call; models loaded in "
          f"{load_seconds:.2f} s, {model_mib:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
