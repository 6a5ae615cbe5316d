"""``vigil classify`` (JSON Lines in, JSON Lines out) and ``vigil eval`` (labeled corpus)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

import click
import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from services.classifier.detector import Detector
from services.classifier.evaluate import evaluate as run_evaluation
from services.classifier.evaluate import load_labels
from services.classifier.lexicon import LexiconError
from services.classifier.service import build_detector
from services.settings import load_settings
from shared.settings import ConfigError, describe_validation_error


class ClassifyInput(BaseModel):
    """One input line of ``vigil classify``; other fields (labels, say) are ignored."""

    model_config = ConfigDict(extra="ignore")

    id: str
    title: str
    text: str
    url: str | None = None
    language: str | None = None


def _detector(lexicon: Path | None) -> Detector:
    settings = load_settings()
    try:
        return build_detector(lexicon or settings.classifier.lexicon_dir,
                              settings.classifier.threshold)  # fmt: skip
    except LexiconError as error:
        raise ConfigError(str(error)) from error


@click.command()
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--lexicon", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Lexicon YAML to use instead of the bundled one.")  # fmt: skip
def classify(source: TextIO, lexicon: Path | None) -> None:
    """Classify articles offline: JSON Lines from FILE (or stdin) to JSON Lines on stdout.

    Each input line is {"id", "title", "text", "url"?, "language"?}. A bad line is reported
    on stderr with its number; the others are still classified; the exit code is then 2.
    """
    detector = _detector(lexicon)
    bad = 0
    out = sys.stdout
    for number, raw in enumerate(source, start=1):
        if not raw.strip():
            continue
        try:
            item = ClassifyInput.model_validate_json(raw)
        except ValidationError as error:
            bad += 1
            problem = describe_validation_error(error, prefix="")
            click.echo(f"vigil: error: line {number}: {problem}", err=True)
            continue
        result = detector.classify(item.id, item.title, item.text, language=item.language)
        out.write(orjson.dumps(result.model_dump(mode="json")).decode() + "\n")
    out.flush()
    if bad:
        sys.exit(2)


@click.command(name="eval")
@click.argument(
    "labels", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--lexicon", type=click.Path(exists=True, file_okay=False, path_type=Path))
def evaluate(labels: tuple[Path, ...], as_json: bool, lexicon: Path | None) -> None:
    """Precision, recall, F1, theater and stance accuracy on LABELS.jsonl (one or more files).

    Figures are given overall and per language, with the stance confusion table.
    """
    detector = _detector(lexicon)
    items = []
    for path in labels:
        try:
            items += load_labels(path, detector.lexicon.vocabulary)
        except ValueError as error:
            raise ConfigError(f"{path}: {error}") from error
    report = run_evaluation(detector, items)
    if as_json:
        click.echo(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(report.render())
