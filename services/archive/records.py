"""What the archive keeps and returns: archived alerts, stories, ledger rows, the alerts
view's query; and the values each alert adds to the filter indexes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.archive.keys import normal_claimant
from shared.models import Alert, Claim


@dataclass(frozen=True)
class Archived:
    """An alert as the archive keeps it."""

    id: str
    alert: Alert

    @property
    def arrived(self) -> float:
        """Epoch seconds when the alert reached ``vigil:alerts``."""
        return int(self.id, 36) / 1_000_000

    @property
    def when(self) -> datetime:
        """The article's publication time, else when it was fetched."""
        return self.alert.article.published_at or self.alert.article.fetched_at


@dataclass(frozen=True)
class Story:
    """A story's first alert, the other sources' copies, and its contested theaters."""

    lead: Archived
    copies: list[Archived] = field(default_factory=list)
    contested: frozenset[str] = frozenset()

    @property
    def sources(self) -> list[str]:
        return [self.lead.alert.article.source, *(c.alert.article.source for c in self.copies)]


@dataclass(frozen=True)
class ClaimRow:
    """One claim of the ledger, with the alert that carries it."""

    archived: Archived
    claim: Claim
    contested: bool


@dataclass(frozen=True)
class Query:
    """The alerts view's filters: any of the values of each, all filters together."""

    theaters: Sequence[str] = ()
    stances: Sequence[str] = ()
    claimant: str = ""
    languages: Sequence[str] = ()
    sources: Sequence[str] = ()

    def matches(self, story: Story) -> bool:
        """Whether a story passes the filters (for alerts arriving live)."""
        alerts = [story.lead.alert, *(c.alert for c in story.copies)]
        values = index_values(alerts)
        wanted = normal_claimant(self.claimant)
        return (
            _any(self.theaters, values["theater"])
            and _any(self.stances, values["stance"])
            and _any(self.languages, values["language"])
            and _any(self.sources, values["source"])
            and (not wanted or any(wanted in name for name in values["claimant"]))
        )


def _any(wanted: Sequence[str], present: set[str]) -> bool:
    return not wanted or bool(present.intersection(wanted))


def index_values(alerts: Iterable[Alert]) -> dict[str, set[str]]:
    """The values each filter indexes for some alerts (claimants normalised)."""
    values: dict[str, set[str]] = {k: set() for k in ("theater", "stance", "language", "source")}
    values["claimant"] = set()
    for alert in alerts:
        verdict = alert.classification
        values["theater"].update(verdict.theaters, (c.theater for c in verdict.claims))
        values["stance"].update(verdict.stances, (c.stance for c in verdict.claims))
        values["language"].add(alert.article.language or verdict.language)
        values["source"].add(alert.article.source)
        values["claimant"].update(normal_claimant(c.claimant) for c in verdict.claims)
    return values


def kept(alert: Alert) -> Alert:
    """What the archive keeps of an alert: all but the article's text, and the evidence
    sentences that its claims quote already (the views show those with their claims)."""
    verdict = alert.classification
    quoted = {claim.evidence for claim in verdict.claims}
    evidence = [sentence for sentence in verdict.evidence if sentence not in quoted]
    return alert.model_copy(update={
        "article": alert.article.model_copy(update={"text": ""}),
        "classification": verdict.model_copy(update={"evidence": evidence}),
    })  # fmt: skip


def text_hash(raw: Mapping[Any, Any]) -> dict[str, str]:
    """A hash as text (the client decodes responses; its types say bytes or str)."""
    return {str(k): str(v) for k, v in raw.items()}


def contested(fields: Mapping[str, str]) -> frozenset[str]:
    """Theaters in which a story (its hash's fields) holds both an assertion and a denial."""
    return frozenset(
        name.split(":")[1]
        for name in fields
        if name.startswith("stance:")
        and name.endswith(":assertion")
        and f"stance:{name.split(':')[1]}:denial" in fields
    )
