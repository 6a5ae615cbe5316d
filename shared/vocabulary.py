"""The classifier's vocabulary: the theaters and stances an alert may name, as data.

Theaters and stances travel as plain strings: no wire model lists them, so a lexicon that
adds a theater changes no contract. The lexicon declares them (``core.yaml``) and is the
registry; each classifier publishes what it loaded under :data:`VOCABULARY_KEY` when it
starts and after each reload. Whoever checks a *new* subscription's filters (the admin API,
the console, ``vigil subscriptions apply``) reads that back with :func:`published_vocabulary`,
and falls back to :data:`DEFAULT_VOCABULARY` (the lists of the design) until a classifier has
published. Stored subscriptions are never checked again: a filter naming a theater that a
later lexicon dropped matches nothing, it breaks nothing. Classifiers are meant to share one
lexicon; if they differ, the last one to start or reload is the one published.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo
from redis.asyncio import Redis

from shared.logging import get_logger

VOCABULARY_KEY = "vigil:vocabulary"
Kind = Literal["theaters", "stances"]
KINDS: tuple[Kind, ...] = ("theaters", "stances")
_CONTEXT = "vocabulary"

log = get_logger("vocabulary")


class Vocabulary(BaseModel):
    """The theaters and stances one lexicon declares, in its order."""

    model_config = ConfigDict(frozen=True)

    theaters: tuple[str, ...] = Field(min_length=1)
    stances: tuple[str, ...] = Field(min_length=1)

    def check(self, kind: Kind, names: Iterable[str]) -> None:
        """Raise ``ValueError`` naming the first of ``names`` this vocabulary lacks."""
        known = getattr(self, kind)
        for name in names:
            if name not in known:
                raise ValueError(f"unknown {kind[:-1]} {name!r}: one of {', '.join(known)}")

    def as_context(self) -> dict[str, Any]:
        """A pydantic validation context asking the models that look for it to check their
        theaters and stances against this vocabulary (see :meth:`from_context`)."""
        return {_CONTEXT: self}

    @staticmethod
    def from_context(info: ValidationInfo) -> Vocabulary | None:
        """The vocabulary a validation was given, if any (None: names are not checked)."""
        context = info.context
        found = context.get(_CONTEXT) if isinstance(context, Mapping) else None
        return found if isinstance(found, Vocabulary) else None


DEFAULT_VOCABULARY = Vocabulary(
    theaters=("karabakh", "libya", "syria", "iraq", "somalia", "qatar", "cyprus",
              "israel-gaza", "other"),
    stances=("assertion", "denial", "acknowledgment", "threat", "report"),
)  # fmt: skip


async def publish_vocabulary(redis: Redis, vocabulary: Vocabulary) -> None:
    """Make ``vocabulary`` the one new subscriptions are checked against."""
    await redis.set(VOCABULARY_KEY, vocabulary.model_dump_json())


async def published_vocabulary(redis: Redis) -> Vocabulary:
    """The vocabulary a classifier published; the default while none has (or it is bad)."""
    raw = await redis.get(VOCABULARY_KEY)
    if raw is None:
        return DEFAULT_VOCABULARY
    try:
        return Vocabulary.model_validate_json(raw)
    except ValidationError as error:
        log.warning("vocabulary.unreadable", key=VOCABULARY_KEY, error=str(error))
        return DEFAULT_VOCABULARY
