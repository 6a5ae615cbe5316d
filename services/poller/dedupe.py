"""Exact duplicates: ids already published, kept in one bounded, expiring Redis sorted set.

Before publishing, a poll claims each unseen id for ``CLAIM_SECONDS`` (``SET NX EX``), so
two sources carrying the same article at the same moment publish it once; if the poll dies
before marking the id as seen, the claim lapses and a later poll publishes it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from redis.asyncio import Redis

from shared.streams import ARTICLES, companion

# Beside the articles stream (one cluster slot): marking an article seen and putting it on the
# stream may then be one transaction.
SEEN_KEY = companion(ARTICLES, "seen")
CLAIM_SECONDS = 120


def _claim_key(article_id: str) -> str:
    return companion(ARTICLES, f"claim:{article_id}")


class SeenStore:
    """Article ids published in the last ``ttl_seconds``, at most ``max_entries`` of them."""

    def __init__(self, redis: Redis, *, ttl_seconds: float, max_entries: int) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries

    async def claim_unseen(self, ids: Sequence[str]) -> list[str]:
        """The ids of ``ids`` not published yet and not being published by another poll."""
        if not ids:
            return []
        scores = await self.redis.zmscore(SEEN_KEY, list(ids))
        horizon = time.time() - self.ttl_seconds
        fresh = [i for i, s in zip(ids, scores, strict=True) if s is None or s < horizon]
        if not fresh:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for article_id in fresh:
                pipe.set(_claim_key(article_id), 1, nx=True, ex=CLAIM_SECONDS)
            claimed = await pipe.execute()
        return [i for i, ok in zip(fresh, claimed, strict=True) if ok]

    async def mark(self, ids: Sequence[str]) -> None:
        """Remember ``ids`` as published; forget the expired and the oldest past the bound."""
        if not ids:
            return
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(SEEN_KEY, dict.fromkeys(ids, now))
            pipe.delete(*(_claim_key(i) for i in ids))
            pipe.zremrangebyscore(SEEN_KEY, "-inf", now - self.ttl_seconds)
            pipe.zremrangebyrank(SEEN_KEY, 0, -self.max_entries - 1)
            await pipe.execute()
