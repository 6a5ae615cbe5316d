"""Delivery jobs, and the Redis keys of their schedule (:mod:`services.notifier.queue`).

A job is one message for one subscriber: an alert, a digest of alerts, or a test event. Its
id is the ``webhook-id`` and never changes, across retries, restarts and dead-letter replays.

Keys (all under ``{vigil:notifier}:``, one hash tag: on a Redis Cluster every notifier key is
in one slot, so that each script and transaction of the queue may touch several of them):

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
from collections.abc import Callable
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator
from redis.asyncio import Redis

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


class Job(Message):
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


def due_key(channel: str | None) -> str:
    """The due-jobs sorted set of a channel (``due`` for a job whose channel is not known)."""
    return f"{DUE}:{channel}" if channel else DUE


async def waiting_jobs(redis: Redis) -> dict[str, int]:
    """Jobs waiting per subscription (for ``vigil status``)."""
    counts: dict[str, int] = {}
    async for _, body in redis.hscan_iter(JOBS):
        subscription = orjson.loads(body)["subscription_id"]
        counts[subscription] = counts.get(subscription, 0) + 1
    return counts


def digest_list(subscription_id: str, window: int) -> str:
    """The key of the alert list of one subscriber's digest window."""
    return f"{PREFIX}digest:{subscription_id}:{window}"


def digest_job(subscription_id: str, channel: str, window: int, created_at: float) -> Job:
    """The digest job of one subscriber's time window."""
    key = digest_list(subscription_id, window)
    return Job(
        id=job_id(subscription_id, f"digest:{window}"),
        subscription_id=subscription_id,
        kind="digest",
        channel=channel,
        digest_key=key,
        created_at=created_at,
    )


def overflow_job(job: Job, minute: int) -> Job:
    """The one message that carries a subscriber's alerts over the rate limit, sent at the
    start of ``minute`` (epoch minutes)."""
    return Job(
        id=job_id(job.subscription_id, f"overflow:{minute}"),
        subscription_id=job.subscription_id,
        kind="overflow",
        channel=job.channel,
        digest_key=f"{PREFIX}overflow:{job.subscription_id}:{minute}",
        created_at=minute * 60.0,
    )
