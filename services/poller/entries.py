"""What every parser of a source's document returns: its entries, format and WebSub links."""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from datetime import UTC, datetime


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


def struct_to_datetime(value: time.struct_time | None) -> datetime | None:
    """A UTC ``struct_time`` (what feedparser's date parsers give) as an aware datetime."""
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError):
        return None
