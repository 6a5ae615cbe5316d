"""Fault injection: real service processes, several replicas, crashes, restarts, poison.

A known set of articles is pushed through separate poller, classifier and notifier
processes while replicas are SIGKILLed mid-batch, Redis restarts (append-only persistence),
the webhook receiver fails for a while, poison entries are injected and every service is
stopped with SIGTERM and started again. Then every expected alert must have reached every
subscriber exactly once (by ``webhook-id``), every poison entry must be a dead letter with its
reason, nothing may be left pending, and Redis memory must have stayed bounded.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from redis.asyncio import Redis

from services.notifier.jobs import DUE, JOBS
from shared.bus import StreamBus
from shared.connection import connect
from shared.embedded_redis import EmbeddedRedis
from shared.streams import ALERTS, ARTICLES
from tests.helpers import group_done, local_server, wait_for
from tests.processes import Fleet
from tests.receivers import SECRET, Receiver, Reply

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

FEEDS = 4
ITEMS_PER_FEED = 6
SUBSCRIBERS = ("alpha", "beta")
MAX_REDIS_MEMORY_BYTES = 64 * 1024 * 1024

RELEVANT = [
    ("Turkish drones strike PKK targets in northern Iraq {n}",
     "Turkish armed drones struck PKK positions near Duhok in northern Iraq, the Turkish "
     "defence ministry said on Monday. Report number {n}."),
    ("Turkey deploys troops to Libya {n}",
     "Turkey sent more soldiers and military advisers to Tripoli, the Turkish defence "
     "ministry announced. Dispatch {n}."),
    ("Erdogan threatens new military operation in northern Syria {n}",
     "President Recep Tayyip Erdogan said Turkish forces could launch a new cross-border "
     "operation against Kurdish fighters in northern Syria. Item {n}."),
]  # fmt: skip
IRRELEVANT = (
    "Turkish lira slips before central bank meeting {n}",
    "The lira weakened as investors awaited the central bank's rate decision. Story {n}.",
)


def _distinct_words(n: int) -> str:
    """Words of this item only: distinct stories, not near-duplicates of one story."""
    return "Filed under " + " ".join(f"tag{n}x{j}" for j in range(12)) + "."


def feed_xml(feed: int) -> str:
    items = []
    for i in range(ITEMS_PER_FEED):
        n = feed * 100 + i
        title, text = RELEVANT[i % 3] if i % 2 == 0 else IRRELEVANT
        items.append(
            f"<item><title>{title.format(n=n)}</title>"
            f"<link>http://wire.test/{feed}/{i}</link><guid>wire-{feed}-{i}</guid>"
            f"<pubDate>Tue, 24 Nov 2026 08:{i:02d}:00 GMT</pubDate>"
            f"<description>{text.format(n=n)} {_distinct_words(n)}</description></item>"
        )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f"<link>http://wire.test/</link><description>d</description>{''.join(items)}"
        "</channel></rss>"
    )


EXPECTED_RELEVANT = FEEDS * len(range(0, ITEMS_PER_FEED, 2))


REPLICAS = ("poller-1", "classifier-1", "classifier-2", "notifier-1", "notifier-2")


async def test_nothing_is_lost_or_duplicated_under_faults(
    tmp_path: Path, receiver: Receiver
) -> None:
    feeds = {f"/feed{n}.xml": feed_xml(n) for n in range(FEEDS)}
    app = web.Application()
    for path, body in feeds.items():
        app.router.add_get(path, _static(body))
    redis_server = EmbeddedRedis(tmp_path / "redis", persist=True)
    redis_server.start()
    async with local_server(app) as feed_base:
        (tmp_path / "sources.yaml").write_text("sources:\n" + "".join(
            f"  - {{id: wire{n}, url: '{feed_base}/feed{n}.xml', interval: 2}}\n"
            for n in range(FEEDS)))  # fmt: skip
        (tmp_path / "subscriptions.yaml").write_text("subscriptions:\n" + "".join(
            f"  - {{id: {s}, channel: webhook, url: '{receiver.url_for(s)}', secret: {SECRET}}}\n"
            for s in SUBSCRIBERS))  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
        env.update({
            "VIGIL_REDIS_URL": redis_server.url,
            "VIGIL_SOURCES_FILE": str(tmp_path / "sources.yaml"),
            "VIGIL_SUBSCRIPTIONS_FILE": str(tmp_path / "subscriptions.yaml"),
            "VIGIL_ALLOW_PRIVATE_TARGETS": "true",
            "VIGIL_LOG__FORMAT": "json",
            "VIGIL_BUS__CLAIM_IDLE_MS": "1500",
            "VIGIL_BUS__CLAIM_INTERVAL_SECONDS": "0.5",
            "VIGIL_BUS__BLOCK_MS": "300",
            "VIGIL_BUS__MAX_DELIVERIES": "3",
            "VIGIL_BUS__SHUTDOWN_GRACE_SECONDS": "3",
            "VIGIL_NOTIFIER__RETRY_SCHEDULE_SECONDS": "[0.5, 1, 1, 2, 2, 4, 8]",
        })  # fmt: skip
        fleet = Fleet(env, tmp_path)
        redis = connect(redis_server.url)
        try:
            for replica in REPLICAS:
                await fleet.start(replica)
            await wait_for(lambda: receiver.alert_ids("alpha"), timeout=60, message="first alerts")

            # Crash a classifier and a notifier replica mid-batch, then bring them back.
            await fleet.kill("classifier-1")
            await fleet.kill("notifier-1")
            await fleet.start("classifier-1")
            await fleet.start("notifier-1")

            # The webhook receiver fails for a while.
            receiver.answer = lambda: Reply(500)
            await wait_for(lambda: _refused(receiver) >= 2 or _all_done(receiver), timeout=30,
                           message="receiver refusals")  # fmt: skip

            # Redis restarts mid-run (append-only persistence keeps streams and groups).
            await redis.aclose()
            redis_server.stop()
            redis_server.start()
            redis = connect(redis_server.url)
            receiver.answer = None

            # Poison entries on both streams.
            await redis.xadd(ARTICLES, {"type": "Article", "v": "1", "data": "{broken"})
            await redis.xadd(ALERTS, {"type": "Alert", "v": "99", "data": "{}"})
            await redis.xadd(ARTICLES, {"unexpected": "shape"})

            # SIGTERM everything and restart.
            codes = await fleet.terminate_all()
            assert set(codes.values()) == {0}, codes
            for replica in REPLICAS:
                await fleet.start(replica)

            try:
                await wait_for(lambda: _all_done(receiver), timeout=120,
                               message="every alert at every subscriber")  # fmt: skip
            except AssertionError as error:
                raise AssertionError(f"{error}\n{await _diagnosis(redis, receiver)}") from None
            await wait_for(lambda: _nothing_pending(redis), timeout=30, message="no pending")
            dead = await StreamBus(redis).dead_letters(count=100)
            memory = int((await redis.info("memory"))["used_memory"])
        finally:
            await fleet.terminate_all()
            await redis.aclose()
            redis_server.stop()

    counts: Counter[str] = Counter()
    for subscriber in SUBSCRIBERS:
        ids = [received.webhook_id for received in receiver.accepted(subscriber)]
        by_alert = receiver.alert_ids(subscriber)
        counts["delivered"] += len(set(ids))
        counts["duplicates"] += len(ids) - len(set(ids))
        counts["lost"] += EXPECTED_RELEVANT - len(by_alert)
        # One webhook-id per alert: a retry or a crash never mints a new id.
        assert len(set(ids)) == len(by_alert) == EXPECTED_RELEVANT, subscriber
    poison = [letter for _, letter in dead if letter.reason.startswith("decode")]
    counts["dead_lettered"] = len(poison)
    print(f"\nfault injection: sent={EXPECTED_RELEVANT * len(SUBSCRIBERS)} "
          + " ".join(f"{k}={counts[k]}" for k in ("delivered", "duplicates", "dead_lettered",
                                                   "lost")))  # fmt: skip
    assert counts["lost"] == 0
    assert len(poison) == 3, [(letter.source_stream, letter.reason) for _, letter in dead]
    assert {letter.source_stream for letter in poison} == {ARTICLES, ALERTS}
    assert all(letter.reason for letter in poison)
    assert memory < MAX_REDIS_MEMORY_BYTES


def _static(body: str) -> Handler:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(text=body, content_type="application/rss+xml")

    return handler


def _all_done(receiver: Receiver) -> bool:
    return all(len(receiver.alert_ids(s)) >= EXPECTED_RELEVANT for s in SUBSCRIBERS)


def _refused(receiver: Receiver) -> int:
    return len(receiver.requests) - len(receiver.accepted())


async def _diagnosis(redis: Redis, receiver: Receiver) -> str:
    """What a reader of a failure needs: who got what, and what Redis still holds."""
    bus = StreamBus(redis)
    groups = {s: await bus.group_status(s) for s in (ARTICLES, ALERTS)}
    return (
        f"received: { {s: sorted(receiver.alert_ids(s)) for s in SUBSCRIBERS} }\n"
        f"alerts stream: {await redis.xlen(ALERTS)} entries; groups: {groups}\n"
        f"jobs waiting: {await redis.hkeys(JOBS)}\n"
        f"due: {await redis.zrange(DUE, 0, -1, withscores=True)}"
    )


async def _nothing_pending(redis: Redis) -> bool:
    """Every group has read both streams to the end and acknowledged all it read."""
    return all([await group_done(redis, stream) for stream in (ARTICLES, ALERTS)])
