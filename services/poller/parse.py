"""Turning a fetched document into entries: RSS/Atom, JSON Feed, news sitemaps and GDELT.

The format is detected from the body when the source does not name it. Every parser returns
the same :class:`Entry`; a document that is not a feed at all raises :class:`ParseError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from xml.etree.ElementTree import Element
from xml.etree.ElementTree import ParseError as XmlParseError

import feedparser
import orjson
from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from services.poller.entries import Entry, Feed, struct_to_datetime
from services.poller.xmlfeed import read_plain_feed

_SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_NEWS_NS = "{http://www.google.com/schemas/sitemap-news/0.9}"


class ParseError(Exception):
    """A document that is not a feed of any supported format."""


def parse_document(
    body: bytes, *, url: str, kind: str = "auto", headers: Mapping[str, str] | None = None
) -> Feed:
    """Parse ``body`` fetched from ``url``; ``kind`` is the source's declared type or ``auto``."""
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise ParseError("empty body")
    if kind in ("jsonfeed", "gdelt") or (kind == "auto" and head[:1] in (b"{", b"[")):
        return _parse_json(head, kind)
    if kind == "sitemap" or (kind == "auto" and _looks_like_sitemap(head[:2048])):
        return parse_sitemap(head)
    plain = read_plain_feed(body, url, headers or {})
    return plain or _parse_feedparser(body, url, headers or {})


def _looks_like_sitemap(head: bytes) -> bool:
    return b"<urlset" in head or b"<sitemapindex" in head


# RSS 0.9x/1.0/2.0, Atom 0.3/1.0, CDF -------------------------------------------------------


def _parse_feedparser(body: bytes, url: str, headers: Mapping[str, str]) -> Feed:
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
        content = item.get("content") or []
        summary = item.get("summary") or (content[0].get("value", "") if content else "")
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


# JSON Feed 1.0/1.1 and GDELT DOC 2.0 -------------------------------------------------------


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_date(value: str | None) -> datetime | None:
    """An ISO 8601 / RFC 3339 or RFC 822 date, made timezone-aware (naive means UTC)."""
    if not value:
        return None
    text = value.strip()
    try:
        return _aware(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        pass
    try:
        return _aware(parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError):
        return None


class _JsonItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    url: str | None = None
    external_url: str | None = None
    title: str | None = None
    content_html: str | None = None
    content_text: str | None = None
    summary: str | None = None
    date_published: datetime | None = None
    date_modified: datetime | None = None
    language: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float) else value

    @field_validator("date_published", "date_modified", mode="before")
    @classmethod
    def _lenient_date(cls, value: object) -> datetime | None:
        """RFC 3339 as the spec says, RFC 822 as some feeds write; unreadable dates are dropped."""
        return parse_date(value) if isinstance(value, str) else None


class _JsonHub(BaseModel):
    type: str = ""
    url: str = ""


class _JsonFeed(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: str
    title: str | None = None
    feed_url: str | None = None
    language: str | None = None
    hubs: list[_JsonHub] = []
    items: list[_JsonItem]


class _GdeltArticle(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str
    title: str = ""
    seendate: str | None = None


class _GdeltList(BaseModel):
    articles: list[_GdeltArticle] = []


def _parse_json(body: bytes, kind: str) -> Feed:
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ParseError(f"invalid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ParseError("JSON that is neither a JSON Feed nor a GDELT article list")
    try:
        if kind == "gdelt" or (kind == "auto" and "articles" in data):
            return _gdelt(_GdeltList.model_validate(data))
        if kind == "jsonfeed" or "jsonfeed.org" in str(data.get("version", "")):
            return _jsonfeed(_JsonFeed.model_validate(data))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ParseError(f"invalid {kind if kind != 'auto' else 'JSON feed'}: {where}: "
                         f"{first['msg']}") from error  # fmt: skip
    raise ParseError("JSON that is neither a JSON Feed nor a GDELT article list")


def _jsonfeed(feed: _JsonFeed) -> Feed:
    entries = [
        Entry(
            link=item.url or item.external_url,
            guid=item.id,
            title=item.title or "",
            summary=item.content_html or item.content_text or item.summary or "",
            published=_aware(item.date_published or item.date_modified),
            language=item.language or feed.language,
        )
        for item in feed.items
    ]
    hub = next((h.url for h in feed.hubs if h.type.lower() == "websub" and h.url), None)
    return Feed("jsonfeed", entries, hub, feed.feed_url)


def _gdelt_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _gdelt(listing: _GdeltList) -> Feed:
    entries = [
        Entry(link=a.url, guid=None, title=a.title, published=_gdelt_time(a.seendate))
        for a in listing.articles
    ]
    return Feed("gdelt", entries)


# News sitemaps ------------------------------------------------------------------------------


def _text(node: Element | None) -> str | None:
    return node.text.strip() if node is not None and node.text else None


def parse_sitemap(body: bytes) -> Feed:
    """Entries of a Google News sitemap: ``<url>`` elements that carry ``<news:news>``."""
    try:
        root = fromstring(body, forbid_dtd=True)
    except (XmlParseError, DefusedXmlException) as error:
        raise ParseError(f"invalid sitemap XML: {error}") from error
    if root.tag == f"{_SITEMAP_NS}sitemapindex":
        raise ParseError("a sitemap index, not a news sitemap: list its news sitemaps as sources")
    if root.tag != f"{_SITEMAP_NS}urlset":
        raise ParseError(f"not a sitemap (root element {root.tag!r})")
    entries = []
    for url in root.iter(f"{_SITEMAP_NS}url"):
        news = url.find(f"{_NEWS_NS}news")
        loc = _text(url.find(f"{_SITEMAP_NS}loc"))
        if news is None or not loc:
            continue
        entries.append(
            Entry(
                link=loc,
                guid=None,
                title=_text(news.find(f"{_NEWS_NS}title")) or "",
                published=parse_date(_text(news.find(f"{_NEWS_NS}publication_date"))),
                language=_text(news.find(f"{_NEWS_NS}publication/{_NEWS_NS}language")),
            )
        )
    return Feed("sitemap", entries)
