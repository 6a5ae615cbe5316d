"""Exact duplicates: ids already published, kept in one bounded, expiring Redis sorted set.

Before publishing, a poll claims each unseen id for ``CLAIM_SECONDS`` (``SET NX EX``), so
two sources carrying the same article at the same moment publish it once; if the poll dies
before marking the id as seen, the claim lapses and a later poll publishes it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shared.streams import ARTICLES, companion

# Beside the articles stream (one cluster slot): marking an article seen and putting it on the
# stream may then be one transaction.
SEEN_KEY = companion(ARTICLES, "seen")
CLAIM_SECONDS = 120


def _claim_key(article_id: str) -> str:
    return companion(ARTICLES, f"claim:{article_id}")


# SET NX EX on every key of KEYS, one command for a whole feed: 1 where claimed, else 0.
_CLAIM = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('SET', key, 1, 'NX', 'EX', ARGV[1]) and 1 or 0
end
return out
"""


class SeenStore:
    """Article ids published in the last ``ttl_seconds``, at most ``max_entries`` of them."""

    def __init__(self, redis: Redis, *, ttl_seconds: float, max_entries: int) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._claim = redis.register_script(_CLAIM)

    async def claim_unseen(self, ids: Sequence[str]) -> list[str]:
        """The ids of ``ids`` not published yet and not being published by another poll."""
        if not ids:
            return []
        scores = await self.redis.zmscore(SEEN_KEY, list(ids))
        horizon = time.time() - self.ttl_seconds
        fresh = [i for i, s in zip(ids, scores, strict=True) if s is None or s < horizon]
        if not fresh:
            return []
        claimed = await self._claim(keys=[_claim_key(i) for i in fresh], args=[CLAIM_SECONDS])
        return [i for i, ok in zip(fresh, claimed, strict=True) if ok]

    def mark_on(self, pipe: Pipeline, ids: Sequence[str]) -> None:
        """Queue the writes that remember ``ids`` as published on ``pipe`` (the transaction
        of the articles' own XADDs); forget the expired and the oldest past the bound."""
        if not ids:
            return
        now = time.time()
        pipe.zadd(SEEN_KEY, dict.fromkeys(ids, now))
        pipe.delete(*(_claim_key(i) for i in ids))
        pipe.zremrangebyscore(SEEN_KEY, "-inf", now - self.ttl_seconds)
        pipe.zremrangebyrank(SEEN_KEY, 0, -self.max_entries - 1)
