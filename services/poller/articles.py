"""From a parsed entry to an :class:`~shared.models.Article`: canonical URL, id, time, text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.poller.canonical import article_id, canonical_url
from services.poller.entries import Entry
from services.poller.text import html_to_text
from shared.language import detect_language
from shared.models import Article

MAX_TEXT_CHARS = 20_000


@dataclass(frozen=True)
class Identified:
    """An entry with its stable id and canonical URL ("" when it only has a guid)."""

    id: str
    url: str
    entry: Entry


def identify(entry: Entry, *, source: str, base_url: str) -> Identified | None:
    """The id of ``entry``, or None when it has neither a link nor a guid to identify it."""
    link = entry.link or (entry.guid if entry.guid and "://" in entry.guid else None)
    canonical = canonical_url(link, base_url) if link else None
    if not canonical and not entry.guid:
        return None
    return Identified(article_id(canonical, guid=entry.guid, source=source), canonical or "", entry)


def normalise_time(value: datetime | None, fetched_at: datetime, skew: timedelta) -> datetime:
    """Publication time in UTC; missing → fetch time; further in the future than ``skew`` →
    fetch time (a wrong clock or time zone must not make an article look newer than it is)."""
    if value is None:
        return fetched_at
    value = value.astimezone(fetched_at.tzinfo)
    return fetched_at if value > fetched_at + skew else value


def build_article(
    item: Identified, *, source: str, fetched_at: datetime, skew: timedelta
) -> Article:
    """The article of an identified entry: clean text, UTC time and language."""
    entry = item.entry
    title = html_to_text(entry.title)
    text = html_to_text(entry.summary)[:MAX_TEXT_CHARS]
    language = entry.language.split("-")[0].lower() if entry.language else None
    return Article(
        id=item.id,
        url=item.url,
        title=title,
        text=text,
        source=source,
        published_at=normalise_time(entry.published, fetched_at, skew),
        fetched_at=fetched_at,
        language=language or detect_language(f"{title}. {text}"),
    )
