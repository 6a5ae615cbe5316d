"""Delivery jobs and their durable schedule in Redis.

A job is one message for one subscriber: an alert, a digest of alerts, or a test event. Its
id is the ``webhook-id`` and never changes, across retries, restarts and dead-letter replays.

Keys (all under ``vigil:notifier:``):

- ``jobs``: hash, job id -> job JSON (attempts and history included);
- ``due``: sorted set, job id -> the epoch second it is due; a claimed job is pushed a lease
  ahead, so a replica that dies mid-send leaves the job to be retried when the lease ends;
- ``seen:{subscription}:{story}``: the idempotency key, one per subscriber and story;
- ``digest:{subscription}:{window}``: alerts waiting for a digest window to close.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shared.models import Alert, Message
from shared.settings import NotifierSettings

PREFIX = "vigil:notifier:"
JOBS = PREFIX + "jobs"
DUE = PREFIX + "due"

JobKind = Literal["alert", "digest", "test"]


class Attempt(BaseModel):
    """One try at delivering a job."""

    model_config = ConfigDict(frozen=True)

    at: float
    outcome: str
    detail: str = ""


class DeliveryJob(Message):
    """A message owed to one subscriber (also the payload of ``vigil:deliveries`` replays)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    subscription_id: str
    kind: JobKind
    alerts: list[Alert] = Field(default_factory=list)
    digest_key: str | None = None
    story_id: str | None = None
    created_at: float
    attempts: int = 0
    history: list[Attempt] = Field(default_factory=list)


def job_id(subscription_id: str, key: str) -> str:
    """A deterministic ``webhook-id``: the same subscriber and story always give the same id."""
    digest = hashlib.blake2b(f"{subscription_id}\x00{key}".encode(), digest_size=16).hexdigest()
    return f"msg_{digest}"


def story_key(alert: Alert) -> str:
    """What "the same story" means for deduplication: the poller's story id, else the article."""
    return alert.article.story_id or alert.article.id


def retry_delay(settings: NotifierSettings, attempts: int, retry_after: float | None) -> float:
    """Seconds until the next attempt after ``attempts`` failures (Retry-After wins if later)."""
    base = settings.retry_schedule_seconds[min(attempts, len(settings.retry_schedule_seconds)) - 1]
    jittered = base * random.uniform(1 - settings.retry_jitter, 1 + settings.retry_jitter)  # noqa: S311
    return max(jittered, retry_after or 0.0)


_SCHEDULE_ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[4]) then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
  return 1
end
return 0
"""

_CLAIM_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[1] + ARGV[2], id)
end
return ids
"""

_ADD_TO_DIGEST = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[4]) then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[5])
  if redis.call('HSETNX', KEYS[3], ARGV[6], ARGV[7]) == 1 then
    redis.call('ZADD', KEYS[4], ARGV[3], ARGV[6])
  end
  return 1
end
return 0
"""


def forget(pipe: Pipeline, job: DeliveryJob) -> None:
    """Queue the commands that drop ``job`` (and its digest list) on a transaction."""
    pipe.hdel(JOBS, job.id)
    pipe.zrem(DUE, job.id)
    if job.digest_key:
        pipe.delete(job.digest_key)


def _reading_order(alert: Alert) -> tuple[datetime, str]:
    """Digests list alerts oldest first, whatever order the notifier replicas saw them in."""
    article = alert.article
    return (article.published_at or article.fetched_at, alert.alert_id)


class JobQueue:
    """The durable delivery schedule shared by every notifier replica."""

    def __init__(self, redis: Redis, settings: NotifierSettings) -> None:
        self.redis = redis
        self.settings = settings
        self._schedule_once = redis.register_script(_SCHEDULE_ONCE)
        self._claim_due = redis.register_script(_CLAIM_DUE)
        self._add_to_digest = redis.register_script(_ADD_TO_DIGEST)

    @property
    def _seen_ttl(self) -> int:
        return int(self.settings.dedupe_ttl_days * 86_400)

    def _seen_key(self, subscription_id: str, story: str) -> str:
        return f"{PREFIX}seen:{subscription_id}:{story}"

    async def schedule_once(self, job: DeliveryJob, story: str, due: float) -> bool:
        """Schedule ``job`` unless this subscriber already has this story; atomic."""
        created = await self._schedule_once(
            keys=[self._seen_key(job.subscription_id, story), JOBS, DUE],
            args=[job.id, job.model_dump_json(), due, self._seen_ttl],
        )
        return bool(created)

    async def add_to_digest(
        self, subscription_id: str, alert: Alert, window_end: float, digest: DeliveryJob
    ) -> bool:
        """Queue ``alert`` for the digest closing at ``window_end``; schedule that digest once."""
        assert digest.digest_key is not None
        added = await self._add_to_digest(
            keys=[self._seen_key(subscription_id, story_key(alert)), digest.digest_key, JOBS, DUE],
            args=[
                digest.id,
                alert.model_dump_json(),
                window_end,
                self._seen_ttl,
                self._seen_ttl,
                digest.id,
                digest.model_dump_json(),
            ],
        )
        return bool(added)

    async def put(self, job: DeliveryJob, due: float) -> None:
        """Store ``job`` (new or updated) due at ``due``."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(JOBS, job.id, job.model_dump_json())
            pipe.zadd(DUE, {job.id: due})
            await pipe.execute()

    async def claim_due(self, now: float, lease: float, limit: int) -> list[DeliveryJob]:
        """Jobs due by ``now``, leased to this replica for ``lease`` seconds."""
        ids = await self._claim_due(keys=[DUE], args=[now, lease, limit])
        if not ids:
            return []
        raw = await self.redis.hmget(JOBS, ids)
        jobs = []
        for job_id_, body in zip(ids, raw, strict=True):
            if body is None:  # finished by another replica in the meantime
                await self.redis.zrem(DUE, job_id_)
                continue
            jobs.append(DeliveryJob.model_validate_json(body))
        return jobs

    async def digest_alerts(self, job: DeliveryJob) -> list[Alert]:
        """The alerts a job carries; a digest's are collected until its first attempt."""
        if job.alerts or job.digest_key is None:
            return list(job.alerts)
        rows = await self.redis.lrange(job.digest_key, 0, -1)
        alerts = [Alert.model_validate_json(row) for row in rows]
        return sorted(alerts, key=_reading_order)

    async def finish(self, job: DeliveryJob) -> None:
        """Forget a job that was delivered."""
        async with self.redis.pipeline(transaction=True) as pipe:
            forget(pipe, job)
            await pipe.execute()

    async def next_due(self) -> float | None:
        """When the earliest job is due, if any."""
        first = await self.redis.zrange(DUE, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def counts(self) -> dict[str, int]:
        """Jobs waiting per subscription (for ``vigil status``)."""
        counts: dict[str, int] = {}
        async for _, body in self.redis.hscan_iter(JOBS):
            subscription = orjson.loads(body)["subscription_id"]
            counts[subscription] = counts.get(subscription, 0) + 1
        return counts


def digest_job(subscription_id: str, window: int, created_at: float) -> DeliveryJob:
    """The digest job of one subscriber's time window."""
    key = f"{PREFIX}digest:{subscription_id}:{window}"
    return DeliveryJob(
        id=job_id(subscription_id, f"digest:{window}"),
        subscription_id=subscription_id,
        kind="digest",
        digest_key=key,
        created_at=created_at,
    )
