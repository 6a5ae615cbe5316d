"""Delivery jobs and their durable schedule in Redis.

A job is one message for one subscriber: an alert, a digest of alerts, or a test event. Its
id is the ``webhook-id`` and never changes, across retries, restarts and dead-letter replays.

Keys (all under ``{vigil:notifier}:``, one hash tag: on a Redis Cluster every notifier key is
in one slot, so that each script and transaction below may touch several of them):

- ``jobs``: hash, job id -> job JSON (attempts and history included);
- ``due:{channel}``: sorted set per channel, job id -> the epoch second it is due; a claimed
  job is pushed its channel's lease ahead, so a replica that dies mid-send leaves the job to
  be retried when the lease ends. Counting the due jobs of a channel is one ``ZCOUNT`` (the
  ``vigil_notifier_due_jobs`` gauge). ``due`` (no channel) holds jobs of a channel this
  version does not know, and those of older versions: they are claimed too, and settled;
- ``seen:{subscription}:{story}``: the idempotency key, one per subscriber and story;
- ``digest:{subscription}:{window}``: alerts waiting for a digest window to close;
- ``overflow:{subscription}:{minute}``: alerts over a subscriber's rate limit, sent as one
  message at the start of that minute.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from services.notifier.settings import NotifierSettings
from shared.durability import Durable
from shared.models import Alert, Message

Clock = Callable[[], float]  # seconds since the epoch; tests move it by hand

PREFIX = "{vigil:notifier}:"
OLD_PREFIX = "vigil:notifier:"  # before the cluster layout; see services/layout.py
JOBS = PREFIX + "jobs"
DUE = PREFIX + "due"

JobKind = Literal["alert", "digest", "overflow", "test"]


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
    channel: str | None = Field(default=None, description="the subscriber's, when scheduled")
    alerts: list[Alert] = Field(default_factory=list)
    digest_key: str | None = None
    story_id: str | None = None
    created_at: float
    attempts: int = 0
    history: list[Attempt] = Field(default_factory=list)

    @field_validator("digest_key")
    @classmethod
    def _tagged(cls, key: str | None) -> str | None:
        """A job stored, dead-lettered or replayed before the cluster layout names its alert
        list by the old prefix; the list itself was renamed (services/layout.py)."""
        if key is not None and key.startswith(OLD_PREFIX):
            return PREFIX + key.removeprefix(OLD_PREFIX)
        return key


def job_id(subscription_id: str, key: str) -> str:
    """A deterministic ``webhook-id``: the same subscriber and story always give the same id."""
    digest = hashlib.blake2b(f"{subscription_id}\x00{key}".encode(), digest_size=16).hexdigest()
    return f"msg_{digest}"


def story_key(alert: Alert) -> str:
    """What "the same story" means for deduplication: the poller's story id, else the article."""
    return alert.article.story_id or alert.article.id


def due_key(channel: str | None) -> str:
    """The due-jobs sorted set of a channel (``due`` for a job whose channel is not known)."""
    return f"{DUE}:{channel}" if channel else DUE


_SCHEDULE_ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[4]) then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
  return 1
end
return 0
"""

# KEYS: the due sets; ARGV: now, limit, the set to start from, then each set's lease. The
# starting set rotates from call to call, so that no channel's backlog starves the others.
_CLAIM_DUE = """
local now, limit, start = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local claimed = {}
for i = 0, #KEYS - 1 do
  if limit <= 0 then break end
  local k = ((start + i) % #KEYS) + 1
  local ids = redis.call('ZRANGEBYSCORE', KEYS[k], '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    redis.call('ZADD', KEYS[k], now + tonumber(ARGV[3 + k]), id)
    table.insert(claimed, id)
  end
  limit = limit - #ids
end
return claimed
"""

# Move a job's alerts into the first overflow message not yet claimed (its due score is still
# the minute it was scheduled for), then forget the job. KEYS: jobs, the overflow's due set,
# the two candidates' lists, then every due set; ARGV: job id, list TTL, then id, due time
# and JSON of each candidate, then the alerts. Returns the candidate used, 0 if none was.
_FOLD = """
local function open(id, at)
  if redis.call('HEXISTS', KEYS[1], id) == 0 then return true end
  local score = redis.call('ZSCORE', KEYS[2], id)
  return score ~= false and tonumber(score) == tonumber(at)
end
local chosen = 0
for c = 0, 1 do
  if chosen == 0 and open(ARGV[3 + 3 * c], ARGV[4 + 3 * c]) then chosen = c + 1 end
end
if chosen == 0 then return 0 end
local id, at, body = ARGV[3 * chosen], ARGV[1 + 3 * chosen], ARGV[2 + 3 * chosen]
if redis.call('HSETNX', KEYS[1], id, body) == 1 then
  redis.call('ZADD', KEYS[2], at, id)
end
local list = KEYS[2 + chosen]
for i = 9, #ARGV do redis.call('RPUSH', list, ARGV[i]) end
redis.call('EXPIRE', list, ARGV[2])
redis.call('HDEL', KEYS[1], ARGV[1])
for i = 5, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return chosen
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


def _reading_order(alert: Alert) -> tuple[datetime, str]:
    """Digests list alerts oldest first, whatever order the notifier replicas saw them in."""
    article = alert.article
    return (article.published_at or article.fetched_at, alert.alert_id)


class JobQueue:
    """The durable delivery schedule shared by every notifier replica.

    ``leases`` maps each channel the notifier knows to how long a claimed job of it stays
    leased (see :func:`services.notifier.channels.registry.lease_seconds`).
    """

    def __init__(
        self,
        redis: Redis,
        settings: NotifierSettings,
        leases: dict[str, float],
        durable: Durable | None = None,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.leases = leases
        # Scheduling (before the alert is acknowledged) and claiming (before the job is sent)
        # wait for a replica: after a failover neither is acted on unless the new master has it.
        self.durable = durable or Durable(redis, 0, 0)
        self.due_keys = [due_key(None), *(due_key(channel) for channel in leases)]
        self._claims = 0
        self._fold = redis.register_script(_FOLD)

    def _due_key(self, job: DeliveryJob) -> str:
        return due_key(job.channel if job.channel in self.leases else None)

    def forget(self, pipe: Pipeline, job: DeliveryJob) -> None:
        """Queue the commands that drop ``job`` (and its alert list) on a transaction."""
        pipe.hdel(JOBS, job.id)
        for key in self.due_keys:
            pipe.zrem(key, job.id)
        if job.digest_key:
            pipe.delete(job.digest_key)

    @property
    def _seen_ttl(self) -> int:
        return int(self.settings.dedupe_ttl_days * 86_400)

    def _seen_key(self, subscription_id: str, story: str) -> str:
        return f"{PREFIX}seen:{subscription_id}:{story}"

    async def schedule_once(self, job: DeliveryJob, story: str, due: float) -> bool:
        """Schedule ``job`` unless this subscriber already has this story; atomic."""
        keys = [self._seen_key(job.subscription_id, story), JOBS, self._due_key(job)]
        args: list[str | float | int] = [job.id, job.model_dump_json(), due, self._seen_ttl]
        [created] = await self.durable.execute(
            JOBS, lambda pipe: pipe.eval(_SCHEDULE_ONCE, len(keys), *keys, *args)
        )
        return bool(created)

    async def add_to_digest(
        self, subscription_id: str, alert: Alert, window_end: float, digest: DeliveryJob
    ) -> bool:
        """Queue ``alert`` for the digest closing at ``window_end``; schedule that digest once."""
        assert digest.digest_key is not None
        keys = [self._seen_key(subscription_id, story_key(alert)), digest.digest_key, JOBS,
                self._due_key(digest)]  # fmt: skip
        args: list[str | float | int] = [digest.id, alert.model_dump_json(), window_end,
                                         self._seen_ttl, self._seen_ttl, digest.id,
                                         digest.model_dump_json()]  # fmt: skip
        [added] = await self.durable.execute(
            JOBS, lambda pipe: pipe.eval(_ADD_TO_DIGEST, len(keys), *keys, *args)
        )
        return bool(added)

    async def put(self, job: DeliveryJob, due: float) -> None:
        """Store ``job`` (new or updated) due at ``due``, in its channel's due set only."""
        key = self._due_key(job)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(JOBS, job.id, job.model_dump_json())
            for other in self.due_keys:
                if other != key:
                    pipe.zrem(other, job.id)
            pipe.zadd(key, {job.id: due})
            await pipe.execute()

    async def claim_due(self, now: float, limit: int) -> list[DeliveryJob]:
        """Jobs due by ``now``, each leased to this replica for its channel's lease."""
        self._claims += 1
        longest = max(self.leases.values(), default=0.0)
        leases = [longest, *self.leases.values()]
        args = [now, limit, self._claims % len(self.due_keys), *leases]
        [ids] = await self.durable.execute(
            JOBS, lambda pipe: pipe.eval(_CLAIM_DUE, len(self.due_keys), *self.due_keys, *args)
        )
        if not ids:
            return []
        raw = await self.redis.hmget(JOBS, ids)
        jobs = []
        for job_id_, body in zip(ids, raw, strict=True):
            if body is None:  # finished by another replica in the meantime
                async with self.redis.pipeline(transaction=False) as pipe:
                    for key in self.due_keys:
                        pipe.zrem(key, job_id_)
                    await pipe.execute()
                continue
            jobs.append(DeliveryJob.model_validate_json(body))
        return jobs

    async def fold(self, job: DeliveryJob, alerts: Sequence[Alert], minute: int) -> bool:
        """Move ``alerts`` of ``job`` into the subscriber's overflow message of ``minute`` (or
        of the next one, if that one is already being sent) and forget ``job``; atomic.
        False if neither could take them."""
        candidates = [overflow_job(job, m) for m in (minute, minute + 1)]
        args: list[str | float | int] = [job.id, self._seen_ttl]
        for candidate in candidates:
            args += [candidate.id, candidate.created_at, candidate.model_dump_json()]
        args += [alert.model_dump_json() for alert in alerts]
        keys = [JOBS, self._due_key(job), *(c.digest_key or "" for c in candidates)]
        chosen = await self._fold(keys=[*keys, *self.due_keys], args=args)
        return bool(chosen)

    async def due_counts(self, now: float) -> dict[str, int]:
        """Jobs due by ``now`` per channel (the backlog an autoscaler reads)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for channel in self.leases:
                pipe.zcount(due_key(channel), "-inf", now)
            counts = await pipe.execute()
        return {channel: int(count) for channel, count in zip(self.leases, counts, strict=True)}

    async def digest_alerts(self, job: DeliveryJob) -> list[Alert]:
        """The alerts a job carries; a digest's are collected until its first attempt."""
        if job.alerts or job.digest_key is None:
            return list(job.alerts)
        rows = await self.redis.lrange(job.digest_key, 0, -1)
        alerts = [Alert.model_validate_json(row) for row in rows]
        return sorted(alerts, key=_reading_order)

    async def hurry(self, job_id: str, now: float) -> bool:
        """Make a job that waits for a retry due now (the console's "retry now"); False if it
        is not waiting: finished, dead-lettered, or leased by a send in flight (a leased job
        is due at most its lease ahead, a waiting one later)."""
        body = await self.redis.hget(JOBS, job_id)
        if body is None:
            return False
        job = DeliveryJob.model_validate_json(body)
        key = self._due_key(job)
        due = await self.redis.zscore(key, job_id)
        lease = self.leases.get(job.channel or "", max(self.leases.values(), default=0.0))
        if due is None or float(due) <= now + lease:
            return False
        await self.redis.zadd(key, {job_id: now}, xx=True)
        return True

    async def finish(self, job: DeliveryJob) -> None:
        """Forget a job that was delivered."""
        async with self.redis.pipeline(transaction=True) as pipe:
            self.forget(pipe, job)
            await pipe.execute()


async def waiting_jobs(redis: Redis) -> dict[str, int]:
    """Jobs waiting per subscription (for ``vigil status``)."""
    counts: dict[str, int] = {}
    async for _, body in redis.hscan_iter(JOBS):
        subscription = orjson.loads(body)["subscription_id"]
        counts[subscription] = counts.get(subscription, 0) + 1
    return counts


def digest_job(subscription_id: str, channel: str, window: int, created_at: float) -> DeliveryJob:
    """The digest job of one subscriber's time window."""
    key = f"{PREFIX}digest:{subscription_id}:{window}"
    return DeliveryJob(
        id=job_id(subscription_id, f"digest:{window}"),
        subscription_id=subscription_id,
        kind="digest",
        channel=channel,
        digest_key=key,
        created_at=created_at,
    )


def overflow_job(job: DeliveryJob, minute: int) -> DeliveryJob:
    """The one message that carries a subscriber's alerts over the rate limit, sent at the
    start of ``minute`` (epoch minutes)."""
    return DeliveryJob(
        id=job_id(job.subscription_id, f"overflow:{minute}"),
        subscription_id=job.subscription_id,
        kind="overflow",
        channel=job.channel,
        digest_key=f"{PREFIX}overflow:{job.subscription_id}:{minute}",
        created_at=minute * 60.0,
    )
