"""Keys of the layout before hash tags are moved once, so an upgraded deployment keeps its
subscriptions, jobs, idempotency keys and dedupe memory."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from services.layout import LAYOUT, LAYOUT_KEY, migrate_layout
from services.notifier.channels.registry import job_queue
from services.notifier.jobs import JOBS, PREFIX, Job, digest_job
from services.notifier.store import SubscriptionStore
from services.poller.dedupe import SEEN_KEY
from services.settings import Settings
from shared.streams import ARTICLES, companion
from tests.factories import make_alert

SECRET = "whsec_c3VwZXJzZWNyZXRzdXBlcnNlY3JldA=="


async def test_old_keys_are_renamed_once(redis: Redis, settings: Settings) -> None:
    old = "vigil:notifier:"
    subscription = (
        '{"id": "desk", "channel": "webhook", "url": "https://hooks.example.org/v", '
        f'"secret": "{SECRET}"}}'
    )
    await redis.hset(old + "subscriptions", "desk", subscription)
    await redis.set(old + "seen:desk:story-1", "msg_1", ex=3600)
    window = int(time.time() // 60)
    digest = digest_job("desk", "webhook", window, time.time())
    stored = digest.model_dump_json().replace(PREFIX, old)  # as an older version wrote it
    await redis.hset(old + "jobs", digest.id, stored)
    await redis.zadd(old + "due:webhook", {digest.id: time.time()})
    await redis.rpush(old + f"digest:desk:{window}", make_alert("a1").model_dump_json())
    await redis.zadd("vigil:poller:seen", {"article-1": time.time()})
    await redis.zadd("vigil:poller:story:0:ab", {"00ab:article-1": time.time()})
    await redis.hset("vigil:articles:errors:classifier", "1-0", "boom")

    assert await migrate_layout(redis) == 8
    assert await redis.get(LAYOUT_KEY) == LAYOUT
    assert [s.id for s in await SubscriptionStore(redis).all()] == ["desk"]
    assert 0 < await redis.ttl(PREFIX + "seen:desk:story-1") <= 3600, "TTLs survive"
    assert await redis.zscore(SEEN_KEY, "article-1") is not None
    assert await redis.exists(companion(ARTICLES, "story:0:ab"))
    assert await redis.hget(companion(ARTICLES, "errors:classifier"), "1-0") == "boom"
    assert not await redis.keys("vigil:notifier:*")

    # A digest stored under the old names still finds its alerts.
    [job] = await job_queue(redis, settings).claim_due(time.time() + 1, 10)
    assert job.digest_key == PREFIX + f"digest:desk:{window}"
    assert [a.alert_id for a in await job_queue(redis, settings).digest_alerts(job)] == ["alert_a1"]
    assert Job.model_validate_json(await redis.hget(JOBS, job.id) or "").digest_key == (
        job.digest_key
    )

    await redis.hset(old + "subscriptions", "late", subscription)
    assert await migrate_layout(redis) == 0, "done once: later starts skip the scan"
