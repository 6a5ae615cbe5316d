"""Full text from the article's own page, for sources that ask for it; failures keep the summary."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from services.poller.sources import Source
from services.settings import Settings
from shared.models import Article
from tests.helpers import local_server, wait_for
from tests.poller_support import poller_settings, published, rss, running

STORY = (
    "Turkish troops crossed into northern Iraq overnight, the defence ministry in Ankara said. "
    "The operation targets PKK positions in the Metina region, officials added, and is "
    "supported by drones and artillery firing from across the border."
)
PAGE = f"""<!doctype html><html><head><title>Story</title></head><body>
<nav><a href="/">Home</a> <a href="/world">World</a></nav>
<article><h1>Turkish troops cross into Iraq</h1>
<p>{STORY}</p>
<p>Residents of nearby villages reported hearing explosions until dawn, and the Kurdistan
Regional Government called for restraint on all sides.</p></article>
<footer>Copyright The Wire. Subscribe to our newsletter.</footer></body></html>"""


async def test_full_text_replaces_the_summary_and_a_broken_page_keeps_it(
    settings: Settings, redis: Redis
) -> None:
    app = web.Application()
    feed: list[str] = []

    async def story(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def gone(_: web.Request) -> web.Response:
        return web.Response(status=404)

    async def feed_xml(_: web.Request) -> web.Response:
        return web.Response(text=feed[0], content_type="application/rss+xml")

    app.router.add_get("/story", story)
    app.router.add_get("/missing", gone)
    app.router.add_get("/feed.xml", feed_xml)
    async with local_server(app) as base:
        feed.append(rss([("Turkish troops cross into Iraq", f"{base}/story", None),
                         ("A page that is gone", f"{base}/missing", None)]))  # fmt: skip
        source = Source(id="wire", url=f"{base}/feed.xml", full_text=True)
        async with running(poller_settings(settings), redis, [source]):
            articles = await wait_for(lambda: _two(redis), message="both articles")
    by_title = {article.title: article for article in articles}
    full = by_title["Turkish troops cross into Iraq"].text
    assert STORY in full
    assert "newsletter" not in full, "boilerplate is left out"
    assert by_title["A page that is gone"].text == "Body of A page that is gone."


async def _two(redis: Redis) -> list[Article]:
    articles = await published(redis)
    return articles if len(articles) == 2 else []
