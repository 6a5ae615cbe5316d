"""What every parser of a source's document returns (its entries, format and WebSub links), and
the dates parsers meet, made timezone-aware."""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


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


def aware(value: datetime | None) -> datetime | None:
    """``value`` with a timezone (naive means UTC)."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_date(value: str | None) -> datetime | None:
    """An ISO 8601 / RFC 3339 or RFC 822 date, made timezone-aware (naive means UTC)."""
    if not value:
        return None
    text = value.strip()
    try:
        return aware(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        pass
    try:
        return aware(parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError):
        return None
