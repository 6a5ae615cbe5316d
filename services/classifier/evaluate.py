"""``vigil eval``: how the detector does on a labeled corpus, overall and per language.

Flagging is scored by precision, recall and F1. Theaters and stances are scored on the true
positives only (an article the detector missed has no theater to compare):

- theater accuracy: the predicted theaters equal the labeled ones;
- stance accuracy: at least one predicted stance is among the labeled ones (the issue's
  "correct stance among stances"); ``stance_exact`` also reports exact set equality;
- claim recall: the share of labeled (stance, theater) pairs that some predicted claim holds;
- the stance confusion table: for each labeled stance, the predicted stance (itself when
  found, else what was predicted instead, "-" when nothing was).

The detector is given no language: like a feed, the corpus only tells it the text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from services.classifier.detector import Detector
from shared.models import Classification, Stance, Theater
from shared.settings import describe_validation_error
from shared.table import render_table
from shared.vocabulary import Vocabulary


class LabeledClaim(BaseModel):
    """Who says what, where (the claimant is informative, not scored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    claimant: str = ""
    stance: Stance
    theater: Theater

    @field_validator("stance", "theater")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        _check(info, [value])
        return value


class LabeledItem(BaseModel):
    """One line of a labeled corpus (the guide is in corpus/LABELING.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str
    text: str
    flagged: bool
    theaters: list[Theater] = []
    stances: list[Stance] = []
    claims: list[LabeledClaim] = []
    category: str = ""
    language: str | None = None
    url: str | None = None

    @field_validator("theaters", "stances")
    @classmethod
    def _known(cls, value: list[str], info: ValidationInfo) -> list[str]:
        _check(info, value)
        return value


def _check(info: ValidationInfo, names: list[str]) -> None:
    """Labels name only what the lexicon declares (a typo would never be scored right)."""
    vocabulary = Vocabulary.from_context(info)
    field = info.field_name or ""
    if vocabulary is not None:
        vocabulary.check("theaters" if field.startswith("theater") else "stances", names)


def load_labels(path: Path, vocabulary: Vocabulary) -> list[LabeledItem]:
    """Read a JSON Lines corpus, its theaters and stances checked against ``vocabulary``; a bad
    line raises ``ValueError("line N: field: problem")``."""
    items: list[LabeledItem] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = LabeledItem.model_validate_json(line, context=vocabulary.as_context())
        except ValidationError as error:
            raise ValueError(
                f"line {number}: {describe_validation_error(error, prefix='')}"
            ) from None
        if item.id in seen:
            raise ValueError(f"line {number}: id: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise ValueError("no labeled items")
    return items


@dataclass(frozen=True)
class Miss:
    """One item the detector got wrong, and how."""

    id: str
    kind: str
    expected: str
    got: str
    title: str


LANGUAGE_COLUMNS = ("language", "items", "P", "R", "F1", "theater", "stance", "claims")


@dataclass
class EvalReport:
    """Counts and ratios of one evaluation run (or of one language's part of it)."""

    total: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    theater_correct: int = 0
    stance_correct: int = 0
    stance_exact: int = 0
    claims_labeled: int = 0
    claims_found: int = 0
    stance_confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    misses: list[Miss] = field(default_factory=list)
    category_errors: Counter[str] = field(default_factory=Counter)
    languages: dict[str, EvalReport] = field(default_factory=dict)
    stances: tuple[Stance, ...] = ()  # the confusion table's rows, as the lexicon declares

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return _ratio(2 * p * r, p + r)

    @property
    def theater_accuracy(self) -> float:
        return _ratio(self.theater_correct, self.tp)

    @property
    def stance_accuracy(self) -> float:
        return _ratio(self.stance_correct, self.tp)

    @property
    def stance_exact_ratio(self) -> float:
        return _ratio(self.stance_exact, self.tp)

    @property
    def claim_recall(self) -> float:
        return _ratio(self.claims_found, self.claims_labeled)

    def figures(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "confusion": {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn},
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "theater_accuracy": round(self.theater_accuracy, 4),
            "stance_accuracy": round(self.stance_accuracy, 4),
            "stance_exact": round(self.stance_exact_ratio, 4),
            "claim_recall": round(self.claim_recall, 4),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.figures(),
            "languages": {lang: r.figures() for lang, r in sorted(self.languages.items())},
            "stance_confusion": {
                f"{labeled}->{predicted}": n
                for (labeled, predicted), n in sorted(self.stance_confusion.items())
            },
            "errors_by_category": dict(self.category_errors.most_common()),
            "misses": [miss.__dict__ for miss in self.misses],
        }

    def render(self) -> str:
        """A terminal report: figures, per-language table, confusion tables, every miss."""
        flagged = [("predicted yes", self.tp, self.fp), ("predicted no", self.fn, self.tn)]
        languages = [
            (lang, r.total, r.precision, r.recall, r.f1,
             r.theater_accuracy, r.stance_accuracy, r.claim_recall)
            for lang, r in sorted(self.languages.items())
        ]  # fmt: skip
        columns = [*self.stances, "-"]
        stances = [
            (labeled, *(self.stance_confusion[(labeled, c)] for c in columns))
            for labeled in self.stances
        ]
        lines = [
            f"items {self.total}   precision {self.precision:.3f}   recall {self.recall:.3f}"
            f"   F1 {self.f1:.3f}",
            f"theater accuracy {self.theater_accuracy:.3f}   stance accuracy "
            f"{self.stance_accuracy:.3f}   (exact stances {self.stance_exact_ratio:.3f})"
            f"   claim recall {self.claim_recall:.3f}",
            "",
            *render_table(("", "labeled flagged", "labeled not"), flagged, indent="  "),
            "",
            *render_table(LANGUAGE_COLUMNS, languages, indent="  "),
            "",
            "stance confusion (rows labeled, columns predicted):",
            *render_table(("", *(c[:6] for c in columns)), stances, indent="  "),
        ]
        if self.misses:
            misses = [(m.id, m.kind, m.expected, m.got, m.title) for m in self.misses]
            lines += ["", f"misses ({len(self.misses)}):"]
            lines += render_table(("ID", "KIND", "EXPECTED", "GOT", "TITLE"), misses, indent="  ")
        return "\n".join(lines)


def evaluate(detector: Detector, items: Iterable[LabeledItem]) -> EvalReport:
    """Run the detector over every labeled item and compare, overall and per language."""
    report = EvalReport(stances=detector.lexicon.vocabulary.stances)
    for item in items:
        result = detector.classify(item.id, item.title, item.text)
        language = item.language or "und"
        part = report.languages.setdefault(language, EvalReport())
        for target in (report, part):
            target.total += 1
            _score_item(target, item, result)
    return report


def _score_item(report: EvalReport, item: LabeledItem, result: Classification) -> None:
    def miss(kind: str, expected: object, got: object) -> None:
        report.misses.append(Miss(item.id, kind, str(expected), str(got), item.title[:70]))
        report.category_errors[item.category or "?"] += 1

    if item.flagged and result.flagged:
        report.tp += 1
        if set(result.theaters) == set(item.theaters):
            report.theater_correct += 1
        else:
            miss("theater", sorted(item.theaters), sorted(result.theaters))
        if set(result.stances) & set(item.stances):
            report.stance_correct += 1
        else:
            miss("stance", sorted(item.stances), sorted(result.stances))
        if set(result.stances) == set(item.stances):
            report.stance_exact += 1
        _score_claims(report, item, result)
    elif item.flagged:
        report.fn += 1
        miss("false negative", "flagged", f"score {result.score:.2f}")
    elif result.flagged:
        report.fp += 1
        miss("false positive", "not flagged", f"score {result.score:.2f}")
    else:
        report.tn += 1


def _score_claims(report: EvalReport, item: LabeledItem, result: Classification) -> None:
    predicted = {(c.stance, c.theater) for c in result.claims}
    labeled = {(c.stance, c.theater) for c in item.claims}
    report.claims_labeled += len(labeled)
    report.claims_found += len(labeled & predicted)
    extra: list[str] = [s for s in result.stances if s not in item.stances]
    for stance in item.stances:
        if stance in result.stances:
            report.stance_confusion[(stance, stance)] += 1
        else:
            for other in extra or ["-"]:
                report.stance_confusion[(stance, other)] += 1


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0
