"""The schedule shared by poller replicas: due times in a Redis sorted set.

A replica claims due sources with one Lua script that moves each claimed source's due time
to the end of a lease, so no other replica fetches it meanwhile; after the poll the replica
sets the real next due time. A replica that dies mid-poll loses its lease and the source
becomes due again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from redis.asyncio import Redis

DUE_KEY = "vigil:poller:due"

_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES',
                      'LIMIT', 0, tonumber(ARGV[3]))
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], ARGV[2], due[i])
end
return due
"""


class Schedule:
    """Due times of sources, claimed atomically."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._claim = redis.register_script(_CLAIM)

    async def register(self, source_ids: Iterable[str]) -> int:
        """Make unscheduled sources due now, keeping the others' due times; how many were added."""
        ids = list(source_ids)
        if not ids:
            return 0
        added = await self.redis.zadd(DUE_KEY, dict.fromkeys(ids, time.time()), nx=True)
        return int(added or 0)

    async def claim(self, limit: int, lease_seconds: float) -> list[tuple[str, float]]:
        """Up to ``limit`` due sources with their due times, leased for ``lease_seconds``."""
        now = time.time()
        flat = await self._claim(keys=[DUE_KEY], args=[now, now + lease_seconds, limit])
        return [(str(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2)]

    async def reschedule(self, source_id: str, delay_seconds: float) -> None:
        await self.redis.zadd(DUE_KEY, {source_id: time.time() + delay_seconds})

    async def forget(self, source_id: str) -> None:
        await self.redis.zrem(DUE_KEY, source_id)

    async def next_due(self) -> float | None:
        """The earliest due time (epoch seconds), or None when nothing is scheduled."""
        first = await self.redis.zrange(DUE_KEY, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def due_times(self, source_ids: list[str]) -> list[float | None]:
        if not source_ids:
            return []
        return [
            None if s is None else float(s) for s in await self.redis.zmscore(DUE_KEY, source_ids)
        ]
