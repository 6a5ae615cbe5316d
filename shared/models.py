"""Versioned message models carried on the streams, and the classification contract.

Every stream entry holds one of these models as JSON; the bus encodes and validates them.
Bump ``SCHEMA_VERSION`` only with a migration path: consumers dead-letter versions they
do not know rather than guess.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

Theater = Literal[
    "karabakh", "libya", "syria", "iraq", "somalia", "qatar", "cyprus", "israel-gaza", "other"
]
Stance = Literal["assertion", "denial", "acknowledgment", "threat", "report"]

THEATERS: tuple[Theater, ...] = (
    "karabakh", "libya", "syria", "iraq", "somalia", "qatar", "cyprus", "israel-gaza", "other",
)  # fmt: skip
STANCES: tuple[Stance, ...] = ("assertion", "denial", "acknowledgment", "threat", "report")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class Message(BaseModel):
    """Base of every stream payload: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: int = SCHEMA_VERSION


class Article(Message):
    """A new article found by the poller (stream ``vigil:articles``)."""

    id: str = Field(min_length=1, description="stable id derived from the canonical URL or guid")
    url: str
    title: str
    text: str = ""
    source: str = Field(description="id of the source that published it")
    published_at: datetime | None = None
    fetched_at: datetime = Field(default_factory=utcnow)
    language: str | None = None
    story_id: str | None = Field(default=None, description="groups near-duplicate copies")


class Claim(BaseModel):
    """Who claims what about Turkish military involvement, with the sentence that says it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    claimant: str
    stance: Stance
    theater: Theater = Field(default="other", description="where this claim places Turkey")
    evidence: str


class Classification(BaseModel):
    """The verdict of the classifier: the ``vigil classify`` output contract."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    flagged: bool
    score: float = Field(ge=0.0, le=1.0)
    theaters: list[Theater] = Field(default_factory=list)
    stances: list[Stance] = Field(default_factory=list)
    claims: list[Claim] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    language: str = "en"


class Alert(Message):
    """A flagged article with its classification (stream ``vigil:alerts``)."""

    alert_id: str
    article: Article
    classification: Classification


class DeadLetter(BaseModel):
    """An entry that could not be processed, kept with its reason (stream ``vigil:dead``)."""

    model_config = ConfigDict(frozen=True)

    source_stream: str
    group: str
    entry_id: str
    reason: str
    deliveries: int
    fields: dict[str, str]
    failed_at: datetime = Field(default_factory=utcnow)
