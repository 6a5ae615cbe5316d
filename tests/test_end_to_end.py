"""A feed travels poller → classifier → notifier and arrives as a signed webhook."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from redis.asyncio import Redis

from services.runner import ALL_SERVICES, run_services
from services.settings import Settings
from shared.streams import ALERTS, ARTICLES, CLASSIFIER_GROUP
from tests.helpers import local_server, wait_for
from tests.receivers import SECRET, Receiver

FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
<title>Test Wire</title><link>http://wire.test/</link><description>t</description>
<item>
  <title>Turkish drones strike PKK positions in northern Iraq</title>
  <link>http://wire.test/news/drones-iraq?utm_source=rss&amp;utm_medium=feed</link>
  <guid>wire-1</guid>
  <pubDate>Tue, 24 Nov 2026 08:00:00 GMT</pubDate>
  <description>&lt;p&gt;Turkish armed drones struck PKK positions in the Qandil mountains
  of northern Iraq on Tuesday, the Turkish defence ministry said. The ministry said the
  strikes were part of Operation Claw-Lock.&lt;/p&gt;</description>
</item>
<item>
  <title>Lira steadies as central bank holds rates</title>
  <link>http://wire.test/news/lira</link>
  <guid>wire-2</guid>
  <pubDate>Tue, 24 Nov 2026 09:00:00 GMT</pubDate>
  <description>The Turkish lira was little changed after the central bank kept its
  policy rate unchanged, citing slowing inflation.</description>
</item>
</channel></rss>
"""


@pytest.fixture
async def feed_url() -> AsyncIterator[str]:
    async def feed(_: web.Request) -> web.Response:
        return web.Response(text=FEED, content_type="application/rss+xml")

    app = web.Application()
    app.router.add_get("/feed.xml", feed)
    async with local_server(app) as base:
        yield f"{base}/feed.xml"


async def test_feed_to_signed_webhook(
    settings: Settings,
    redis: Redis,
    tmp_path: Path,
    feed_url: str,
    receiver: Receiver,
) -> None:
    sources_file = tmp_path / "sources.yaml"
    sources_file.write_text(f"sources:\n  - id: wire\n    url: {feed_url}\n    interval: 60\n")
    subscriptions_file = tmp_path / "subscriptions.yaml"
    subscriptions_file.write_text(
        "subscriptions:\n"
        "  - id: analyst\n"
        "    channel: webhook\n"
        f"    url: {receiver.url}\n"
        f"    secret: {SECRET}\n"
        "    filters: {min_score: 0.5}\n"
    )
    config = settings.model_copy(
        update={"sources_file": sources_file, "subscriptions_file": subscriptions_file}
    )
    stop = asyncio.Event()
    started = datetime.now(UTC)
    task = asyncio.create_task(run_services(config, ALL_SERVICES, stop=stop))
    try:
        await wait_for(lambda: receiver.requests, timeout=30, message="a signed webhook")
        # Both articles went through the classifier before we judge what was not sent.
        await wait_for(lambda: _group_done(redis, ARTICLES, CLASSIFIER_GROUP, 2), timeout=15,
                       message="both articles classified")  # fmt: skip
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)

    [received] = receiver.requests
    headers, payload = received.headers, received.payload
    assert headers["webhook-id"]
    assert abs(int(headers["webhook-timestamp"]) - started.timestamp()) < 60
    assert headers["webhook-signature"].startswith("v1,")
    assert payload["type"] == "alert.created"
    assert datetime.fromisoformat(payload["timestamp"]) >= started.replace(microsecond=0)
    data = payload["data"]
    article = data["article"]
    assert set(article) == {"id", "url", "title", "source", "published_at"}
    assert article["title"] == "Turkish drones strike PKK positions in northern Iraq"
    assert article["url"] == "http://wire.test/news/drones-iraq"  # tracking parameters removed
    assert article["source"] == "wire"
    assert datetime.fromisoformat(article["published_at"]) == datetime(2026, 11, 24, 8, tzinfo=UTC)
    classification = data["classification"]
    assert classification["id"] == article["id"]
    assert classification["flagged"] is True
    assert 0.5 <= classification["score"] <= 1.0
    assert classification["theaters"] == ["iraq"]
    assert "acknowledgment" in classification["stances"] or "report" in classification["stances"]
    assert any("Qandil" in sentence for sentence in classification["evidence"])
    assert classification["language"] == "en"
    assert data["alert_id"]
    # Exactly one alert entry was produced: the lira story was not flagged.
    assert await redis.xlen(ALERTS) == 1
    entries = await redis.xrange(ALERTS)
    assert entries
    [(_, entry)] = entries
    assert entry is not None
    assert orjson.loads(entry["data"])["alert_id"] == data["alert_id"]


async def _group_done(redis: Redis, stream: str, group: str, entries: int) -> bool:
    [info] = await redis.xinfo_groups(stream)
    return bool(info["entries-read"] == entries and info["pending"] == 0)
