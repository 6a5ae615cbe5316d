"""RSS 0.9x/1.0/2.0, Atom 0.3/1.0 and CDF: the plain reader first, feedparser for the rest."""

from __future__ import annotations

from collections.abc import Mapping

import feedparser

from services.poller.adapters.base import ParseError, content
from services.poller.adapters.xmlfeed import read_plain_feed
from services.poller.entries import Entry, Feed, struct_to_datetime


def parse(body: bytes, url: str, headers: Mapping[str, str]) -> Feed:
    """The entries of a feed fetched from ``url`` (the response ``headers`` may name its
    charset); plain RSS 2.0 and Atom 1.0 are read by :mod:`.xmlfeed`, the rest by feedparser."""
    content(body)
    return read_plain_feed(body, url, headers) or read_with_feedparser(body, url, headers)


def read_with_feedparser(body: bytes, url: str, headers: Mapping[str, str]) -> Feed:
    """Any feed feedparser reads, ill-formed ones included (with a warning)."""
    response_headers = {k.lower(): v for k, v in headers.items()}
    response_headers.setdefault("content-location", url)
    result = feedparser.parse(body, response_headers=response_headers, sanitize_html=False)
    reason = result.get("bozo_exception")
    detail = f": {str(reason).splitlines()[0]}" if reason else ""
    if not result.version and not result.entries:
        raise ParseError(f"not a feed (no RSS, Atom or JSON Feed document){detail}")
    if result.bozo and not result.entries:
        raise ParseError(f"malformed {result.version} feed with no readable entries{detail}")
    entries = []
    for item in result.entries:
        item_content = item.get("content") or []
        summary = item.get("summary") or (item_content[0].get("value", "") if item_content else "")
        entries.append(
            Entry(
                link=item.get("link") or None,
                guid=item.get("id") or None,
                title=item.get("title") or "",
                summary=summary,
                published=struct_to_datetime(
                    item.get("published_parsed") or item.get("updated_parsed")
                ),
                language=item.get("language") or None,
            )
        )
    links = result.feed.get("links", [])
    hub = next((ln.get("href") for ln in links if ln.get("rel") == "hub"), None)
    topic = next((ln.get("href") for ln in links if ln.get("rel") == "self"), None)
    warning = str(result.get("bozo_exception")) if result.bozo else None
    return Feed(result.version or "unknown", entries, hub, topic, warning)
