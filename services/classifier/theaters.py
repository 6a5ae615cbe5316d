"""Theaters kept in a file of their own: a new theater is one file.

``lexicon/theaters/NAME.yaml`` adds the theater ``NAME`` to the vocabulary ``core.yaml``
declares and lists its places in every language that names them::

    theater: sudan
    places:
      en: [sudan, khartoum, darfur, port sudan]
      ar: [السودان, الخرطوم, دارفور]

The theaters of the first release keep their places in the language files; either way the
classifier publishes the vocabulary, and subscriptions may name the new theater at once.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.classifier.patterns import Patterns, check_patterns, normalise
from shared.models import Theater
from shared.yamlfile import read_yaml

FOLDER = "theaters"


class TheaterFile(BaseModel):
    """One theater: its name (the file's) and its places by language code."""

    model_config = ConfigDict(extra="forbid")

    theater: Theater = Field(pattern=r"^[a-z][a-z0-9-]*$")
    places: dict[str, Patterns] = Field(min_length=1)

    @field_validator("places")
    @classmethod
    def _places(cls, value: dict[str, Patterns]) -> dict[str, Patterns]:
        unknown = [code for code in value if not (2 <= len(code) <= 3 and code.isalpha())]
        if unknown:
            raise ValueError(f"not language codes: {unknown}")
        return {code: check_patterns(places) for code, places in value.items()}


def read_theater_files(lexicon: Path, declared: list[Theater]) -> list[TheaterFile]:
    """The theater files of a lexicon folder, each a theater ``core.yaml`` does not declare.

    A place may move from a language file to a theater file (its theater file wins: how
    "sudan" leaves `other`), but two theater files may not claim the same place."""
    found = []
    owners: dict[str, str] = {}  # a place (as matched) and the theater file that lists it
    for file in sorted((lexicon / FOLDER).glob("*.yaml")):
        document = read_yaml(file)
        theater = document.validate(TheaterFile)
        if theater.theater != file.stem:
            raise document.error(["theater"], f"{theater.theater!r} in a file named {file.name}")
        if theater.theater in declared:
            raise document.error(["theater"], f"{theater.theater!r} is declared in core.yaml")
        for code, places in theater.places.items():
            for place in places:
                other = owners.setdefault(normalise(place), theater.theater)
                if other != theater.theater:
                    problem = f"{place!r} is a place of theater {other!r} too"
                    raise document.error(["places", code], problem)
        found.append(theater)
    return found
