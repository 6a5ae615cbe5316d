"""The notifier's durable delivery schedule, shared by every replica.

Jobs (:mod:`services.notifier.jobs`, where the keys are described) wait in a
:class:`shared.schedule.LeasedSchedule` of one due set per channel, each leased for its
channel's send timeout and a margin, all under the ``{vigil:notifier}`` hash tag. The scripts
here add what is the notifier's own to it, atomically: the idempotency key of a new job, a
digest's alert list, an overflow message that takes the alerts over a rate limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from services.notifier.jobs import (
    JOBS,
    PREFIX,
    Job,
    digest_job,
    digest_list,
    due_key,
    overflow_job,
)
from services.notifier.settings import NotifierSettings
from shared.connection import connection_epoch
from shared.durability import Durable
from shared.models import Alert
from shared.schedule import LeasedSchedule

_SCHEDULE_ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[4]) then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
  return 1
end
return 0
"""

# Move a job's alerts into the first overflow message not yet read for sending (not marked
# closed, and its due score is still the minute it was scheduled for), then forget the job.
# KEYS: jobs, the overflow's due set, the two candidates' lists, their closed marks, then every
# due set; ARGV: job id, list TTL, then id, due time and JSON of each candidate, then the
# alerts. Returns the candidate used, 0 if none was.
_FOLD = """
local function open(c, id, at)
  if redis.call('EXISTS', KEYS[5 + c]) == 1 then return false end
  if redis.call('HEXISTS', KEYS[1], id) == 0 then return true end
  local score = redis.call('ZSCORE', KEYS[2], id)
  return score ~= false and tonumber(score) == tonumber(at)
end
local chosen = 0
for c = 0, 1 do
  if chosen == 0 and open(c, ARGV[3 + 3 * c], ARGV[4 + 3 * c]) then chosen = c + 1 end
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
for i = 7, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return chosen
"""

# Add an alert to the digest of its window, or to the next window's once the first has been
# read for sending (closed): an alert pushed after that read would be deleted with the list,
# unsent. KEYS: the story's idempotency key, jobs, the due set, then the list and the closed
# mark of this window, the list of the next; ARGV: the alert, the TTL, then the id, due time
# and JSON of this window's digest and of the next's. Returns 1 if added, 0 if seen before.
_ADD_TO_DIGEST = """
if not redis.call('SET', KEYS[1], ARGV[3], 'NX', 'EX', ARGV[2]) then return 0 end
local list, at = KEYS[4], 3
if redis.call('EXISTS', KEYS[5]) == 1 then list, at = KEYS[6], 6 end
redis.call('RPUSH', list, ARGV[1])
redis.call('EXPIRE', list, ARGV[2])
if redis.call('HSETNX', KEYS[2], ARGV[at], ARGV[at + 2]) == 1 then
  redis.call('ZADD', KEYS[3], ARGV[at + 1], ARGV[at])
end
return 1
"""

# A digest's alerts, read for its first attempt; the window is closed to new alerts (they go to
# the next one). KEYS: the list, its closed mark; ARGV: the mark's TTL.
_CLOSE_DIGEST = """
redis.call('SET', KEYS[2], 1, 'EX', ARGV[1])
return redis.call('LRANGE', KEYS[1], 0, -1)
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
        self.schedule = LeasedSchedule(redis, self.due_keys, self.durable)
        self._fold = redis.register_script(_FOLD)

    def _due_key(self, job: Job) -> str:
        return due_key(job.channel if job.channel in self.leases else None)

    def forget(self, pipe: Pipeline, job: Job) -> None:
        """Queue the commands that drop ``job`` (and its alert list) on a transaction."""
        self.schedule.remove(pipe, job.id)
        _drop(pipe, job)

    @property
    def _seen_ttl(self) -> int:
        return int(self.settings.dedupe_ttl_days * 86_400)

    def _seen_key(self, subscription_id: str, story: str) -> str:
        return f"{PREFIX}seen:{subscription_id}:{story}"

    async def schedule_once(self, job: Job, story: str, due: float) -> bool:
        """Schedule ``job`` unless this subscriber already has this story; atomic."""
        keys = [self._seen_key(job.subscription_id, story), JOBS, self._due_key(job)]
        args: list[str | float | int] = [job.id, job.model_dump_json(), due, self._seen_ttl]
        [created] = await self.durable.execute(
            JOBS, lambda pipe: pipe.eval(_SCHEDULE_ONCE, len(keys), *keys, *args)
        )
        return bool(created)

    async def add_to_digest(
        self, subscription_id: str, channel: str, alert: Alert, now: float, period: float
    ) -> bool:
        """Queue ``alert`` for the subscriber's digest of the window of ``now`` (``period``
        seconds long), or of the next window if that digest has already been read for sending;
        schedule the digest once. False if the alert's story was seen before."""
        window = int(now // period)
        digests = [digest_job(subscription_id, channel, w, now) for w in (window, window + 1)]
        this, following = (digest_list(subscription_id, w) for w in (window, window + 1))
        keys = [self._seen_key(subscription_id, alert.story_key), JOBS,
                self._due_key(digests[0]), this, _closed(this), following]  # fmt: skip
        args: list[str | float | int] = [alert.model_dump_json(), self._seen_ttl]
        for ends, digest in enumerate(digests, start=window + 1):
            args += [digest.id, ends * period, digest.model_dump_json()]
        [added] = await self.durable.execute(
            JOBS, lambda pipe: pipe.eval(_ADD_TO_DIGEST, len(keys), *keys, *args)
        )
        return bool(added)

    async def put(self, job: Job, due: float) -> None:
        """Store ``job`` (new or updated) due at ``due``, in its channel's due set only."""
        await self.schedule.put(
            {job.id: due},
            key=self._due_key(job),
            also=lambda pipe: pipe.hset(JOBS, job.id, job.model_dump_json()),
        )

    async def claim_due(self, now: float, limit: int) -> list[Job]:
        """Jobs due by ``now``, each leased to this replica for its channel's lease."""
        longest = max(self.leases.values(), default=0.0)
        epoch = connection_epoch(self.redis)
        claimed = await self.schedule.claim(now, limit, [longest, *self.leases.values()])
        ids = [job_id for job_id, _ in claimed]
        if not ids:
            return []
        jobs = []
        for job_id, body in zip(ids, await self.redis.hmget(JOBS, ids), strict=True):
            if body is None:
                # Finished by another replica in the meantime; unless the master changed
                # between the claim and the read: then leave it leased, to come back.
                if connection_epoch(self.redis) == epoch:
                    await self.schedule.finish(job_id)
                continue
            jobs.append(Job.model_validate_json(body))
        return jobs

    async def fold(self, job: Job, alerts: Sequence[Alert], minute: int) -> bool:
        """Move ``alerts`` of ``job`` into the subscriber's overflow message of ``minute`` (or
        of the next one, if that one is already being sent) and forget ``job``; atomic.
        False if neither could take them."""
        candidates = [overflow_job(job, m) for m in (minute, minute + 1)]
        args: list[str | float | int] = [job.id, self._seen_ttl]
        for candidate in candidates:
            args += [candidate.id, candidate.created_at, candidate.model_dump_json()]
        args += [alert.model_dump_json() for alert in alerts]
        lists = [c.digest_key or "" for c in candidates]
        keys = [JOBS, self._due_key(job), *lists, *(_closed(key) for key in lists)]
        chosen = await self._fold(keys=[*keys, *self.due_keys], args=args)
        return bool(chosen)

    async def due_counts(self, now: float) -> dict[str, int]:
        """Jobs due by ``now`` per channel (the backlog an autoscaler reads)."""
        counts = await self.schedule.count_due(now, [due_key(channel) for channel in self.leases])
        return dict(zip(self.leases, counts, strict=True))

    async def digest_alerts(self, job: Job) -> list[Alert]:
        """The alerts a job carries; a digest's are collected until its first attempt."""
        if job.alerts or job.digest_key is None:
            return list(job.alerts)
        keys = [job.digest_key, _closed(job.digest_key)]
        rows = await self.redis.eval(_CLOSE_DIGEST, len(keys), *keys, self._seen_ttl)
        alerts = [Alert.model_validate_json(row) for row in rows]
        return sorted(alerts, key=_reading_order)

    async def hurry(self, job_id: str, now: float) -> bool:
        """Make a job that waits for a retry due now (the console's "retry now"); False if it
        is not waiting: finished, dead-lettered, or leased by a send in flight (a leased job
        is due at most its lease ahead, a waiting one later)."""
        body = await self.redis.hget(JOBS, job_id)
        if body is None:
            return False
        job = Job.model_validate_json(body)
        key = self._due_key(job)
        [due] = await self.schedule.due_times([job_id], key)
        lease = self.leases.get(job.channel or "", max(self.leases.values(), default=0.0))
        if due is None or due <= now + lease:
            return False
        await self.schedule.put({job_id: now}, key=key, xx=True)
        return True

    async def finish(self, job: Job) -> None:
        """Forget a job that was delivered."""
        await self.schedule.finish(job.id, also=lambda pipe: _drop(pipe, job))


def _closed(list_key: str) -> str:
    """The mark of a digest or overflow list read for sending (same cluster slot)."""
    return f"{list_key}:closed"


def _drop(pipe: Pipeline, job: Job) -> None:
    """Queue the commands that drop ``job`` and its alert list (not its place in the schedule)."""
    pipe.hdel(JOBS, job.id)
    if job.digest_key:
        pipe.delete(job.digest_key)
