"""Versioned message models carried on the streams, and the classification contract.

Every stream entry holds one of these models as JSON; the bus encodes and validates them
(:mod:`shared.streams`). The rules of ``SCHEMA_VERSION`` (``docs/schema.md`` tells the why):

- ``v`` is the *major* version of every payload, written in each entry beside its body.
- Additive changes do not bump it: a new field with a default, a new theater or stance (those
  are data, declared by the classifier's lexicon: :mod:`shared.vocabulary`), a new stream.
  Old consumers read new payloads: on read, unknown fields are ignored (``extra="ignore"``)
  and theaters and stances are plain strings.
- Anything else bumps it: a field removed, renamed, retyped or made required, a value given
  a new meaning, a rule tightened. The bump ships with the code that still reads the previous
  version (the migration path).
- A consumer dead-letters an entry of a higher version than its own, saying so, rather than
  guess: upgrade it, then replay the dead letter (``vigil dlq replay``).
- Writers stay strict: code never writes a field its model does not declare (mypy's pydantic
  plugin refuses unknown constructor arguments; tests validate what writers produce with
  ``extra="forbid"``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

# Names from the classifier's vocabulary (shared.vocabulary), carried as strings.
Theater = str
Stance = str
_READ = ConfigDict(frozen=True, extra="ignore")  # forward compatible: see the rules above


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class Message(BaseModel):
    """Base of every stream payload: immutable; unknown fields of a newer writer ignored."""

    model_config = _READ

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

    model_config = _READ

    claimant: str
    stance: Stance
    theater: Theater = Field(default="other", description="where this claim places Turkey")
    evidence: str


class Classification(BaseModel):
    """The verdict of the classifier: the ``vigil classify`` output contract."""

    model_config = _READ

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

    @property
    def story_key(self) -> str:
        """What "the same story" means (the notifier's once-per-story, the archive's stories):
        the poller's story id, else the article's."""
        return self.article.story_id or self.article.id


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
