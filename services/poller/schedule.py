"""The schedule shared by poller replicas: each source's next due time, leased while polled.

A :class:`shared.schedule.LeasedSchedule` on one sorted set: a replica claims due sources,
which moves each one's due time to the end of a lease so that no other replica fetches it
meanwhile; after the poll the replica sets the real next due time. A replica that dies
mid-poll loses its lease and the source becomes due again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from redis.asyncio import Redis

from shared.schedule import LeasedSchedule

DUE_KEY = "vigil:poller:due"


class Schedule:
    """Due times of sources, claimed atomically."""

    def __init__(self, redis: Redis) -> None:
        self._due = LeasedSchedule(redis, [DUE_KEY])

    async def register(self, source_ids: Iterable[str]) -> int:
        """Make unscheduled sources due now, keeping the others' due times; how many were added."""
        ids = list(source_ids)
        if not ids:
            return 0
        return await self._due.put(dict.fromkeys(ids, time.time()), nx=True)

    async def claim(self, limit: int, lease_seconds: float) -> list[tuple[str, float]]:
        """Up to ``limit`` due sources with their due times, leased for ``lease_seconds``."""
        return await self._due.claim(time.time(), limit, [lease_seconds])

    async def reschedule(self, source_id: str, delay_seconds: float) -> None:
        await self._due.put({source_id: time.time() + delay_seconds})

    async def forget(self, source_id: str) -> None:
        await self._due.finish(source_id)

    async def next_due(self) -> float | None:
        """The earliest due time (epoch seconds), or None when nothing is scheduled."""
        return await self._due.next_due()

    async def due_times(self, source_ids: list[str]) -> list[float | None]:
        return await self._due.due_times(source_ids)
