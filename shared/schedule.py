"""A leased schedule in Redis: items due at a time, each worked on by one claimer at a time.

Items (the poller's sources, the notifier's delivery jobs) wait in sorted sets scored by the
epoch second they are due. A claimer takes the due ones with one script that also moves each
a lease ahead, so no other claimer gets it meanwhile; after its work the claimer puts it back
at its next due time, or finishes it. A claimer that dies mid-work loses the lease: the item
is due again when the lease ends, and another claimer takes it.

A schedule may keep its items in several sets, each with its own lease (the notifier keeps
one per channel, so that each channel's backlog is counted apart). A claim reads them in
turn, from a different set each time, so that no set's backlog starves the others. The caller
names the keys, and they must share one cluster slot (one key, or a hash tag), since the
claim touches them all in one script.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shared.durability import Durable

# KEYS: the sets; ARGV: now, limit, the set to start from (0-based), then each set's lease.
# Returns the claimed items and their due times, flat: item, due, item, due...
_CLAIM = """
local now, limit, start = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local claimed = {}
for i = 0, #KEYS - 1 do
  if limit <= 0 then break end
  local k = ((start + i) % #KEYS) + 1
  local due = redis.call('ZRANGEBYSCORE', KEYS[k], '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
  for j = 1, #due, 2 do
    redis.call('ZADD', KEYS[k], now + tonumber(ARGV[3 + k]), due[j])
    table.insert(claimed, due[j])
    table.insert(claimed, due[j + 1])
  end
  limit = limit - #due / 2
end
return claimed
"""


class LeasedSchedule:
    """Items due in the sorted sets ``keys``, claimed with a lease (see the module).

    ``durable`` makes a claim wait for a replica before the caller acts on it
    (:mod:`shared.durability`).
    """

    def __init__(self, redis: Redis, keys: Sequence[str], durable: Durable | None = None) -> None:
        self.redis = redis
        self.keys = list(keys)
        self.durable = durable or Durable(redis, 0, 0)
        self._claims = 0

    async def claim(
        self, now: float, limit: int, leases: Sequence[float]
    ) -> list[tuple[str, float]]:
        """Up to ``limit`` items due by ``now`` with their due times; each stays leased for its
        set's entry in ``leases`` (one per key), during which no claim returns it again."""
        self._claims += 1
        args = [now, limit, self._claims % len(self.keys), *leases]
        [flat] = await self.durable.execute(
            self.keys[0], lambda pipe: pipe.eval(_CLAIM, len(self.keys), *self.keys, *args)
        )
        return [(str(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2)]

    async def put(
        self,
        due: Mapping[str, float],
        *,
        key: str | None = None,
        nx: bool = False,
        xx: bool = False,
        also: Callable[[Pipeline], object] | None = None,
    ) -> int:
        """Make items due at the given times in ``key`` (the first set unless named), and in
        no other set; one transaction with the commands ``also`` queues. ``nx`` adds only
        items not in ``key`` yet, ``xx`` only moves those in it. Returns how many were added.
        """
        target = key or self.keys[0]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(target, dict(due), nx=nx, xx=xx)
            if not (nx or xx):
                for other in self.keys:
                    if other != target:
                        pipe.zrem(other, *due)
            if also is not None:
                also(pipe)
            results = await pipe.execute()
        return int(results[0] or 0)

    def remove(self, pipe: Pipeline, item: str) -> None:
        """Queue the commands that take ``item`` out of the schedule."""
        for key in self.keys:
            pipe.zrem(key, item)

    async def finish(self, item: str, *, also: Callable[[Pipeline], object] | None = None) -> None:
        """Take ``item`` out of the schedule (its work is done); one transaction with the
        commands ``also`` queues."""
        async with self.redis.pipeline(transaction=True) as pipe:
            self.remove(pipe, item)
            if also is not None:
                also(pipe)
            await pipe.execute()

    async def next_due(self) -> float | None:
        """The earliest due time (leases included), or None when nothing is scheduled."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in self.keys:
                pipe.zrange(key, 0, 0, withscores=True)
            firsts = await pipe.execute()
        return min((float(first[0][1]) for first in firsts if first), default=None)

    async def due_times(self, items: Sequence[str], key: str | None = None) -> list[float | None]:
        """The due time of each of ``items`` in ``key`` (the first set unless named)."""
        if not items:
            return []
        scores = await self.redis.zmscore(key or self.keys[0], list(items))
        return [None if score is None else float(score) for score in scores]

    async def count_due(self, now: float, keys: Sequence[str] | None = None) -> list[int]:
        """How many items are due by ``now`` in each of ``keys`` (every set unless named)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys or self.keys:
                pipe.zcount(key, "-inf", now)
            return [int(count) for count in await pipe.execute()]
