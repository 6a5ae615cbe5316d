"""What every parser of a source's document returns: its entries, format and WebSub links."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Entry:
    """One item of a feed, before canonicalisation."""

    link: str | None
    guid: str | None
    title: str
    summary: str = ""
    published: datetime | None = None
    language: str | None = None


@dataclass(frozen=True)
class Feed:
    """The entries of a document, its format, and its WebSub hub when it advertises one."""

    kind: str
    entries: list[Entry]
    hub: str | None = None
    topic: str | None = None
    warning: str | None = None
