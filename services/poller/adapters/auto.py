"""Sources of type ``auto``: the format is told by the document itself.

JSON is a GDELT article list or a JSON Feed, a ``<urlset>`` a news sitemap, anything else a
feed (RSS, Atom, CDF) or not a document Vigil reads.
"""

from __future__ import annotations

from collections.abc import Mapping

from services.poller.adapters import feed, gdelt, jsonfeed, sitemap
from services.poller.adapters.base import ParseError, content
from services.poller.adapters.jsondoc import load_json
from services.poller.entries import Feed

_SNIFFED_BYTES = 2048


def parse(body: bytes, url: str, headers: Mapping[str, str]) -> Feed:
    """The entries of ``body``, in whichever supported format it is written."""
    start = content(body)
    if start[:1] in (b"{", b"["):
        data = load_json(start)
        if isinstance(data, dict) and gdelt.is_article_list(data):
            return gdelt.from_json(data)
        if isinstance(data, dict) and jsonfeed.is_json_feed(data):
            return jsonfeed.from_json(data)
        raise ParseError("JSON that is neither a JSON Feed nor a GDELT article list")
    if sitemap.looks_like_sitemap(start[:_SNIFFED_BYTES]):
        return sitemap.parse(start, url, headers)
    return feed.parse(body, url, headers)
