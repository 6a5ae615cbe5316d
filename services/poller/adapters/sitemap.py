"""Google News sitemaps: the ``<url>`` elements that carry ``<news:news>``, DTDs refused."""

from __future__ import annotations

from collections.abc import Mapping
from xml.etree.ElementTree import Element
from xml.etree.ElementTree import ParseError as XmlParseError

from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped]

from services.poller.adapters.base import ParseError, content
from services.poller.entries import Entry, Feed, parse_date

_SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_NEWS_NS = "{http://www.google.com/schemas/sitemap-news/0.9}"


def looks_like_sitemap(start: bytes) -> bool:
    """Whether the first bytes of a document open a sitemap (or a sitemap index)."""
    return b"<urlset" in start or b"<sitemapindex" in start


def _text(node: Element | None) -> str | None:
    return node.text.strip() if node is not None and node.text else None


def parse(body: bytes, url: str, headers: Mapping[str, str]) -> Feed:
    """The news entries of a sitemap; a sitemap index or another document is refused."""
    try:
        root = fromstring(content(body), forbid_dtd=True)
    except (XmlParseError, DefusedXmlException) as error:
        raise ParseError(f"invalid sitemap XML: {error}") from error
    if root.tag == f"{_SITEMAP_NS}sitemapindex":
        raise ParseError("a sitemap index, not a news sitemap: list its news sitemaps as sources")
    if root.tag != f"{_SITEMAP_NS}urlset":
        raise ParseError(f"not a sitemap (root element {root.tag!r})")
    entries = []
    for item in root.iter(f"{_SITEMAP_NS}url"):
        news = item.find(f"{_NEWS_NS}news")
        loc = _text(item.find(f"{_SITEMAP_NS}loc"))
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
