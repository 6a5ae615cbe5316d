"""Shared pieces of the poller tests (no tests here): feeds, settings, a running poller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from redis.asyncio import Redis

from services.poller.service import PollerService
from services.poller.sources import Source
from services.poller.state import SourceState, StateStore
from services.settings import Settings
from shared.models import Article
from shared.streams import ARTICLES, decode
from tests.helpers import background

# The team's feed corpus (real feeds from feedparser's and feed-rs's test suites, licences
# beside them): read in place from the team handbook beside the repository when it is there,
# else from the copy bundled here, so a clone on its own runs the whole suite.
_TEAM_FEEDS = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "feeds"
FEEDS = _TEAM_FEEDS if _TEAM_FEEDS.is_dir() else Path(__file__).with_name("data") / "feeds"

# A news sitemap and a GDELT answer, as the sitemap and gdelt adapters read them.
SITEMAP = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
 <url><loc>https://s.test/a</loc><news:news><news:publication><news:name>S</news:name>
   <news:language>en</news:language></news:publication>
   <news:publication_date>2026-02-03T10:00:00Z</news:publication_date>
   <news:title>Sitemap story</news:title></news:news></url>
 <url><loc>https://s.test/about</loc></url>
</urlset>"""

GDELT = b"""{"articles": [{"url": "https://g.test/x", "title": "Gdelt story",
 "seendate": "20260203T101500Z", "language": "English", "domain": "g.test"}]}"""


def rss(items: Sequence[tuple[str, str | None, str | None]], *, title: str = "Wire") -> str:
    """An RSS 2.0 document of (title, link, guid) items."""
    body = []
    for n, (item_title, link, guid) in enumerate(items):
        link_xml = f"<link>{link}</link>" if link else ""
        guid_xml = f'<guid isPermaLink="false">{guid}</guid>' if guid else ""
        body.append(
            f"<item><title>{item_title}</title>{link_xml}{guid_xml}"
            f"<pubDate>Tue, 24 Nov 2026 0{n % 10}:00:00 GMT</pubDate>"
            f"<description>&lt;p&gt;Body of {item_title}.&lt;/p&gt;</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>http://wire.test/</link><description>d</description>"
        + "".join(body)
        + "</channel></rss>"
    )


def poller_settings(settings: Settings, **poller: object) -> Settings:
    """Test settings with short timeouts and fast retries, plus ``poller`` overrides."""
    values = {
        "connect_timeout_seconds": 2.0,
        "read_timeout_seconds": 0.5,
        "total_timeout_seconds": 3.0,
        "retry_base_seconds": 0.05,
        "max_interval_seconds": 5.0,
        "min_interval_seconds": 0.1,
        **poller,
    }
    return settings.model_copy(
        update={
            "poller": settings.poller.model_copy(update=values),
            "bus": settings.bus.model_copy(update={"shutdown_grace_seconds": 2.0}),
        }
    )


async def published(redis: Redis) -> list[Article]:
    """Every article on the stream, oldest first."""
    entries: list[tuple[str, dict[str, str]]] = await redis.xrange(ARTICLES)  # type: ignore[assignment]
    return [decode(Article, fields) for _, fields in entries]


async def state(redis: Redis, source_id: str) -> SourceState:
    return await StateStore(redis).get(source_id)


@asynccontextmanager
async def running(
    settings: Settings, redis: Redis, sources: list[Source]
) -> AsyncIterator[PollerService]:
    """A poller running in the background; stopped (and checked to stop) on exit."""
    service = PollerService(settings, redis, sources)
    async with background(service):
        yield service
