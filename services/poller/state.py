"""Per-source state in Redis: HTTP validators for conditional GETs, and health.

One hash per source (``vigil:poller:source:<id>``), shared by replicas and kept across
restarts; ``vigil sources status`` and the health gauges read it. New articles are also
counted per UTC day for the console (``{vigil:poller:source:<id>}:daily``, a week kept),
beside the state hash in one cluster slot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from services.poller.fetch import Validators
from shared.hashes import from_hash, read_hash

_ERROR_TEXT_LIMIT = 300
DAYS_KEPT = 7


def state_key(source_id: str) -> str:
    return f"vigil:poller:source:{source_id}"


def daily_key(source_id: str) -> str:
    # Tagged with the state key's name: on a Redis Cluster both sit in one slot, so the
    # transaction that records a poll may write both (as companion() does for streams).
    return f"{{{state_key(source_id)}}}:daily"


def _day(at: datetime) -> str:
    return at.strftime("%Y-%m-%d")


@dataclass(frozen=True)
class SourceState:
    """What Redis holds about one source (read with :func:`shared.hashes.from_hash`)."""

    etag: str | None = None
    last_modified: str | None = None
    interval: float | None = None
    consecutive_failures: int = 0
    items_seen: int = 0
    last_success: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    last_outcome: str | None = None
    last_poll: float | None = None

    @property
    def validators(self) -> Validators:
        """What to send for a conditional GET."""
        return Validators(self.etag, self.last_modified)


class StateStore:
    """Reads and writes source state hashes."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def get(self, source_id: str) -> SourceState:
        return from_hash(SourceState, await read_hash(self.redis, state_key(source_id)))

    async def many(self, source_ids: list[str]) -> list[SourceState]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for source_id in source_ids:
                pipe.hgetall(state_key(source_id))
            rows: list[dict[str, str]] = await pipe.execute()
        return [from_hash(SourceState, row) for row in rows]

    async def success(
        self,
        source_id: str,
        *,
        outcome: str,
        validators: Validators,
        new_items: int,
        interval: float,
    ) -> None:
        """Record a good poll (new document or 304) and the validators to send next time."""
        now = time.time()
        key = state_key(source_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={
                "etag": validators.etag or "",
                "last_modified": validators.last_modified or "",
                "last_success": now,
                "last_poll": now,
                "last_outcome": outcome,
                "consecutive_failures": 0,
                "interval": interval,
            })  # fmt: skip
            pipe.hincrby(key, "items_seen", new_items)
            if new_items:
                pipe.hincrby(daily_key(source_id), _day(datetime.now(UTC)), new_items)
                pipe.expire(daily_key(source_id), (DAYS_KEPT + 1) * 86_400)
            await pipe.execute()

    async def articles_per_day(self, source_ids: list[str]) -> list[float]:
        """New articles per day of each source: the average of the last week's full days
        since the first one with articles (today's count for a source new today)."""
        today = datetime.now(UTC)
        days = [_day(today - timedelta(days=n)) for n in range(DAYS_KEPT + 1)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for source_id in source_ids:
                pipe.hgetall(daily_key(source_id))
            rows: list[dict[str, str]] = await pipe.execute()
        averages = []
        for row in rows:
            span = max((n for n in range(1, DAYS_KEPT + 1) if days[n] in row), default=0)
            total = sum(int(row.get(day, 0)) for day in days[1 : span + 1])
            averages.append(total / span if span else float(row.get(days[0], 0)))
        return averages

    async def failure(self, source_id: str, *, outcome: str, error: str) -> int:
        """Record a failed poll; return the number of consecutive failures."""
        now = time.time()
        key = state_key(source_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={
                "last_error": error[:_ERROR_TEXT_LIMIT],
                "last_error_at": now,
                "last_poll": now,
                "last_outcome": outcome,
            })  # fmt: skip
            pipe.hincrby(key, "consecutive_failures", 1)
            _, failures = await pipe.execute()
        return int(failures)
