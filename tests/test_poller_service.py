"""The poller against real local HTTP servers and a real Redis."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from structlog.testing import capture_logs

from services.poller.fetch import Validators
from services.poller.schedule import DUE_KEY
from services.poller.sources import Source
from services.poller.state import StateStore, daily_key
from services.settings import Settings
from shared.connection import drop_connections
from shared.embedded_redis import free_port
from shared.hashes import from_hash
from tests.helpers import local_server, wait_for
from tests.poller_support import poller_settings, published, rss, running, state

Probe = Callable[[], Awaitable[bool]]
ITEMS = [
    ("Turkish drones strike PKK targets", "http://wire.test/a?utm_source=rss#top", "g1"),
    ("Lira steadies", "http://WIRE.test:80/b", "g2"),
    ("Earthquake shakes western Turkey", "http://wire.test/c", "g3"),
]


class FeedServer:
    """A feed server that honours ETags and counts requests per path."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[str, str]] = {}  # path -> (body, etag)
        self.hits: Counter[str] = Counter()
        self.not_modified: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.delay = 0.0
        self.on_request: Callable[[], Awaitable[None]] | None = None

    def set(self, path: str, body: str, etag: str) -> None:
        self.docs[path] = (body, etag)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits[path] += 1
        if self.on_request is not None:
            await self.on_request()
        self.in_flight[path] += 1
        self.max_in_flight[path] = max(self.max_in_flight[path], self.in_flight[path])
        try:
            if self.delay:
                await asyncio.sleep(self.delay)  # a slow server, not synchronisation
            body, etag = self.docs[path]
            if request.headers.get("If-None-Match") == etag:
                self.not_modified[path] += 1
                return web.Response(status=304, headers={"ETag": etag})
            return web.Response(
                text=body, content_type="application/rss+xml", headers={"ETag": etag}
            )
        finally:
            self.in_flight[path] -= 1


@pytest.fixture
async def feeds() -> AsyncIterator[tuple[FeedServer, str]]:
    server = FeedServer()
    app = web.Application()
    app.router.add_get("/{name}", server.handle)
    async with local_server(app) as base:
        yield server, base


def metric(outcome: str) -> float:
    return REGISTRY.get_sample_value("vigil_polls_total", {"outcome": outcome}) or 0.0


async def test_new_items_published_once_then_304(
    settings: Settings, redis: Redis, feeds: tuple[FeedServer, str]
) -> None:
    server, base = feeds
    server.set("/feed.xml", rss(ITEMS), '"v1"')
    sources = [Source(id="wire", url=f"{base}/feed.xml", interval=0.1)]
    async with running(poller_settings(settings), redis, sources):
        await wait_for(lambda: server.not_modified["/feed.xml"] >= 2, message="two 304s")
    articles = await published(redis)
    assert [a.title for a in articles] == [t for t, _, _ in ITEMS]
    assert articles[0].url == "http://wire.test/a"  # tracking parameter and fragment removed
    assert articles[1].url == "http://wire.test/b"  # host lower-cased, default port dropped
    assert len({a.id for a in articles}) == 3
    assert all(a.fetched_at is not None and a.source == "wire" for a in articles)
    assert articles[0].text == "Body of Turkish drones strike PKK targets."
    assert articles[0].published_at is not None
    assert articles[0].published_at.utcoffset() is not None
    assert all(a.story_id for a in articles)
    health = await state(redis, "wire")
    assert health.items_seen == 3
    assert health.last_outcome == "not_modified"
    assert health.consecutive_failures == 0


async def test_a_poll_during_a_master_change_keeps_no_validators(
    settings: Settings, redis: Redis, feeds: tuple[FeedServer, str]
) -> None:
    """The connections are dropped for a new master while a feed is fetched: the articles may
    have gone to the old master, so the poll keeps no ETag and the next one reads the whole
    feed again (a conditional GET would answer 304 and lose them)."""
    server, base = feeds
    server.set("/feed.xml", rss(ITEMS), '"v1"')
    sources = [Source(id="wire", url=f"{base}/feed.xml", interval=0.1)]
    server.on_request = partial(_drop_once, server, redis)
    async with running(poller_settings(settings), redis, sources):
        await wait_for(lambda: server.not_modified["/feed.xml"] >= 1, message="a 304")
    full_reads = server.hits["/feed.xml"] - server.not_modified["/feed.xml"]
    assert full_reads == 2, "the poll after the change read the whole feed"
    assert len(await published(redis)) == 3, "dedupe kept the articles published once"


async def _drop_once(server: FeedServer, redis: Redis) -> None:
    """What the poller's client does when it finds a new master, during the first fetch."""
    if server.hits["/feed.xml"] == 1:
        await drop_connections(redis)


async def test_restart_and_republished_items_publish_nothing_new(
    settings: Settings, redis: Redis, feeds: tuple[FeedServer, str]
) -> None:
    server, base = feeds
    server.set("/feed.xml", rss(ITEMS), '"v1"')
    sources = [Source(id="wire", url=f"{base}/feed.xml", interval=0.1)]
    config = poller_settings(settings)
    async with running(config, redis, sources):
        await wait_for(lambda: server.not_modified["/feed.xml"] >= 1, message="a 304")
    # The feed changes its ETag and re-publishes old items alongside one new item.
    new_item = ("Turkish troops to train Somali army", "http://wire.test/d", "g4")
    server.set("/feed.xml", rss([new_item, *ITEMS]), '"v2"')
    async with running(config, redis, sources):
        await wait_for(lambda: server.not_modified["/feed.xml"] >= 2, message="a 304 after v2")
    titles = [a.title for a in await published(redis)]
    assert titles == [t for t, _, _ in ITEMS] + [new_item[0]]


async def test_duplicated_guids_and_entries_without_links_or_dates(
    settings: Settings, redis: Redis, feeds: tuple[FeedServer, str]
) -> None:
    server, base = feeds
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>First copy</title><guid isPermaLink='false'>same</guid></item>"
        "<item><title>Second copy</title><guid isPermaLink='false'>same</guid></item>"
        "<item><title>Guid only, no date</title><guid isPermaLink='false'>other</guid></item>"
        "<item><title>Neither link nor guid</title></item>"
        "</channel></rss>"
    )
    server.set("/odd.xml", body, '"o"')
    skipped = REGISTRY.get_sample_value("vigil_poller_entries_skipped_total") or 0.0
    async with running(poller_settings(settings), redis, [Source(id="odd", url=f"{base}/odd.xml",
                                                                 interval=0.1)]):  # fmt: skip
        await wait_for(lambda: server.not_modified["/odd.xml"] >= 1, message="a 304")
    articles = await published(redis)
    assert [a.title for a in articles] == ["First copy", "Guid only, no date"]
    assert all(a.url == "" for a in articles)
    assert articles[1].published_at == articles[1].fetched_at  # no date: the fetch time
    assert (REGISTRY.get_sample_value("vigil_poller_entries_skipped_total") or 0) == skipped + 1


async def test_file_source(settings: Settings, redis: Redis, tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_text(rss(ITEMS))
    source = Source(id="file", url=feed.as_uri(), interval=0.1)
    async with running(poller_settings(settings), redis, [source]):
        unchanged: Probe = partial(_outcome, redis, "file", "not_modified")
        await wait_for(unchanged, message="file unchanged")
    assert len(await published(redis)) == 3


async def _outcome(redis: Redis, source_id: str, outcome: str) -> bool:
    return (await state(redis, source_id)).last_outcome == outcome


FAULTS: dict[str, tuple[str, str]] = {
    # path: (outcome recorded, what the server does)
    "/malformed": ("parse_error", "XML cut off in the middle of the first element"),
    "/html": ("parse_error", "an HTML page instead of a feed"),
    "/empty": ("parse_error", "an empty body"),
    "/huge": ("too_large", "a body over the size limit"),
    "/stall": ("timeout", "headers, then nothing"),
    "/loop": ("http_error", "a redirect loop"),
    "/missing": ("http_error", "404"),
    "/gone": ("http_error", "410"),
    "/broken": ("http_error", "500"),
    "/busy": ("rate_limited", "429 with Retry-After"),
}


async def _fault(request: web.Request) -> web.StreamResponse:
    path = request.path
    if path == "/malformed":
        return web.Response(body=b"<?xml version='1.0'?><rss><chan", content_type="text/xml")
    if path == "/html":
        return web.Response(text="<html><body><h1>Welcome</h1></body></html>",
                            content_type="text/html")  # fmt: skip
    if path == "/empty":
        return web.Response(body=b"", content_type="application/rss+xml")
    if path == "/huge":
        return web.Response(body=b"<rss>" + b" " * 200_000, content_type="text/xml")
    if path == "/stall":
        response = web.StreamResponse()
        await response.prepare(request)
        await asyncio.sleep(30)  # the poller's read timeout must cut this short
        return response
    if path == "/loop":
        raise web.HTTPFound("/loop")
    if path == "/busy":
        return web.Response(status=429, headers={"Retry-After": "30"})
    status = {"/missing": 404, "/gone": 410, "/broken": 500}[path]
    return web.Response(status=status)


async def test_faulty_sources_never_stop_a_good_one(
    settings: Settings, redis: Redis, feeds: tuple[FeedServer, str]
) -> None:
    server, base = feeds
    server.set("/good.xml", rss(ITEMS), '"g"')
    app = web.Application()
    app.router.add_get("/{name}", _fault)
    before = {outcome: metric(outcome) for outcome, _ in FAULTS.values()}
    async with local_server(app) as bad_base:
        sources = [Source(id=p.strip("/"), url=f"{bad_base}{p}", interval=0.1) for p in FAULTS]
        sources.append(Source(id="good", url=f"{base}/good.xml", interval=0.1))
        config = poller_settings(settings, max_body_bytes=4096, max_redirects=3)
        with capture_logs() as logs:
            async with running(config, redis, sources):
                await wait_for(lambda: server.not_modified["/good.xml"] >= 1, message="good 304")
                for path in FAULTS:
                    failed: Probe = partial(_failed, redis, path.strip("/"))
                    await wait_for(failed, timeout=15, message=f"{path} to fail")
    assert len(await published(redis)) == 3
    for path, (outcome, what) in FAULTS.items():
        health = await state(redis, path.strip("/"))
        assert health.last_outcome == outcome, (path, what, health)
        assert health.consecutive_failures >= 1
        assert health.last_error
        assert metric(outcome) > before[outcome]
        assert any(
            e["event"] == "poll.failed" and e.get("source") == path.strip("/")
            and e["outcome"] == outcome for e in logs
        ), path  # fmt: skip
    # Retry-After: 30 pushed the next attempt at least that far out.
    due = await redis.zscore(DUE_KEY, "busy")
    busy = await state(redis, "busy")
    assert due is not None
    assert busy.last_error_at is not None
    assert due >= busy.last_error_at + 29


async def _failed(redis: Redis, source_id: str) -> bool:
    return (await state(redis, source_id)).consecutive_failures >= 1


async def test_unreachable_source_is_retried_with_backoff(
    settings: Settings, redis: Redis, feeds: tuple[FeedServer, str]
) -> None:
    server, base = feeds
    server.set("/good.xml", rss(ITEMS[:1]), '"g"')
    sources = [
        Source(id="down", url=f"http://127.0.0.1:{free_port()}/feed.xml", interval=60),
        Source(id="good", url=f"{base}/good.xml", interval=0.1),
    ]
    async with running(poller_settings(settings), redis, sources):
        retried: Probe = partial(_failures, redis, "down", 3)
        await wait_for(retried, message="three attempts")
    assert (await state(redis, "down")).last_outcome == "network_error"
    assert len(await published(redis)) == 1


async def _failures(redis: Redis, source_id: str, count: int) -> bool:
    return (await state(redis, source_id)).consecutive_failures >= count


async def test_two_replicas_never_fetch_one_source_at_once(
    settings: Settings, redis: Redis, feeds: tuple[FeedServer, str]
) -> None:
    server, base = feeds
    server.delay = 0.05
    paths = [f"/f{n}.xml" for n in range(4)]
    for path in paths:
        server.set(path, rss(ITEMS), f'"{path}"')
    sources = [Source(id=p.strip("/"), url=f"{base}{p}", interval=0.01) for p in paths]
    config = poller_settings(settings, per_host_concurrency=8)
    async with running(config, redis, sources), running(config, redis, sources):
        await wait_for(lambda: all(server.hits[p] >= 10 for p in paths), message="many polls")
    assert all(server.max_in_flight[p] == 1 for p in paths), server.max_in_flight
    assert len(await published(redis)) == 3  # same links in every feed: one article each


@pytest.mark.parametrize("new", [0, 3])
def test_interval_adapts_within_bounds(settings: Settings, redis: Redis, new: int) -> None:
    from services.poller.service import PollerService  # noqa: PLC0415
    from services.poller.state import SourceState  # noqa: PLC0415

    config = poller_settings(settings, min_interval_seconds=30, max_interval_seconds=600,
                             default_interval_seconds=300)  # fmt: skip
    service = PollerService(config, redis, [])
    adaptive = Source(id="a", url="http://x.test/")
    fixed = Source(id="f", url="http://x.test/", interval=42)
    blank = from_hash(SourceState, {})
    assert service._next_interval(fixed, blank, new) == 42
    interval = service._next_interval(adaptive, blank, new)
    assert interval < 300 if new else interval > 300
    for _ in range(50):
        blank = from_hash(SourceState, {"interval": str(interval)})
        interval = service._next_interval(adaptive, blank, new)
    assert interval == (30 if new else 600)


async def test_sources_lost_from_the_schedule_are_polled_again(
    settings: Settings, redis: Redis, feeds: tuple[FeedServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis losing its data (FLUSHALL, failover to an empty replica) must not stop polling."""
    monkeypatch.setattr("services.poller.service.HEALTH_REFRESH_SECONDS", 0.1)
    server, base = feeds
    server.set("/a.xml", rss(ITEMS[:1]), '"a"')
    server.set("/b.xml", rss(ITEMS[1:]), '"b"')
    sources = [Source(id=n, url=f"{base}/{n}.xml", interval=3600) for n in ("a", "b")]
    restored = REGISTRY.get_sample_value("vigil_poller_schedule_restored_total") or 0.0
    config = poller_settings(settings, max_interval_seconds=3600)
    with capture_logs() as logs:
        async with running(config, redis, sources):
            first_polls: Probe = partial(_polled, redis, sources)
            await wait_for(first_polls, message="first polls done")
            await redis.flushall()
            await wait_for(lambda: server.hits["/a.xml"] == server.hits["/b.xml"] == 2,
                           message="polled again after the schedule was lost")  # fmt: skip
    assert REGISTRY.get_sample_value("vigil_poller_schedule_restored_total") == restored + 2
    assert [e["sources"] for e in logs if e["event"] == "poller.schedule_restored"] == [2]
    assert len(await published(redis)) == 3  # the articles published after the loss


async def _polled(redis: Redis, sources: list[Source]) -> bool:
    outcomes = [(await state(redis, source.id)).last_outcome for source in sources]
    return outcomes == ["ok"] * len(sources)


async def test_new_articles_are_counted_per_day_for_the_console(redis: Redis) -> None:
    store = StateStore(redis)
    for new in (4, 2):
        await store.success("wire", outcome="ok", validators=Validators(None, None),
                            new_items=new, interval=60)  # fmt: skip
    assert await store.articles_per_day(["wire", "quiet"]) == [6.0, 0.0]
    # Past days: the average since the first day with articles (today not counted).
    three_days_ago = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%d")
    await redis.hset(daily_key("wire"), three_days_ago, 30)
    assert await store.articles_per_day(["wire"]) == [10.0]
    assert 0 < await redis.ttl(daily_key("wire")) <= 8 * 86_400
