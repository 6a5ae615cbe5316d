"""GDELT DOC 2.0: the newest articles worldwide matching a query, as the API's JSON article list.

A source names a ``query`` (and a ``timespan``, 1h by default) instead of a ``url``:
:func:`prepare` makes the API's URL of it when the sources are loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from pydantic import BaseModel, ConfigDict

from services.poller.adapters.base import content
from services.poller.adapters.jsondoc import load_json, validated
from services.poller.entries import Entry, Feed

GDELT_DOC_API = "https://api.gdeltproject.org/api/v2/doc/doc"
_TIMESPAN = re.compile(r"\d+(min|h|d|w)")


def gdelt_url(query: str, *, timespan: str = "1h", max_records: int = 75) -> str:
    """The GDELT DOC 2.0 API URL listing the newest articles matching ``query`` as JSON."""
    params = {
        "query": query,
        "mode": "artlist",
        "format": "json",
        "sort": "datedesc",
        "timespan": timespan,
        "maxrecords": str(max_records),
    }
    return f"{GDELT_DOC_API}?{urlencode(params, quote_via=quote)}"


def prepare(fields: dict[str, Any]) -> dict[str, Any]:
    """A source's fields with ``query`` and ``timespan`` turned into the API's ``url``."""
    rest = {k: v for k, v in fields.items() if k not in ("query", "timespan")}
    query, timespan = fields.get("query"), fields.get("timespan", "1h")
    if not isinstance(timespan, str) or not _TIMESPAN.fullmatch(timespan):
        raise ValueError("timespan: a number of min, h, d or w (e.g. 1h, 30min)")
    if not query:
        return rest
    if fields.get("url"):
        raise ValueError("give either url or query for a gdelt source, not both")
    return {**rest, "url": gdelt_url(str(query), timespan=timespan)}


class _GdeltArticle(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str
    title: str = ""
    seendate: str | None = None


class _GdeltList(BaseModel):
    articles: list[_GdeltArticle] = []


def parse(body: bytes, url: str, headers: Mapping[str, str]) -> Feed:
    """The articles of a GDELT DOC API answer (``mode=artlist&format=json``)."""
    return from_json(load_json(content(body)))


def is_article_list(data: dict[str, Any]) -> bool:
    """Whether a JSON object looks like the API's article list."""
    return "articles" in data


def from_json(data: Any) -> Feed:
    """The articles of an answer already read as JSON."""
    listing = validated(_GdeltList, data, "GDELT article list")
    entries = [
        Entry(link=a.url, guid=None, title=a.title, published=_seen(a.seendate))
        for a in listing.articles
    ]
    return Feed("gdelt", entries)


def _seen(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
