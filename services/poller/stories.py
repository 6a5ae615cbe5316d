"""Near-duplicates: syndicated copies of one story share a ``story_id``.

Each article gets a 64-bit SimHash of its title and lead. Fingerprints within
``MAX_DISTANCE`` bits of each other are one story; by the pigeonhole principle two such
fingerprints agree on at least one of ``BANDS`` 8-bit bands, so candidates are found by
looking up each band in Redis. Band buckets expire and are capped, so memory stays bounded.
"""

from __future__ import annotations

import re
import time

from redis.asyncio import Redis
from simhash import Simhash  # type: ignore[import-untyped]

from shared.models import Article
from shared.streams import ARTICLES, companion

BANDS = 8  # > MAX_DISTANCE, so near fingerprints share a band
MAX_DISTANCE = 6
MIN_WORDS = 8
BUCKET_CAP = 64
_LEAD_CHARS = 600
_WORD = re.compile(r"\w+", re.UNICODE)


def fingerprint(article: Article) -> int | None:
    """SimHash of word trigrams of the title and lead; None for too little text."""
    words = _WORD.findall(f"{article.title} {article.text[:_LEAD_CHARS]}".lower())
    if len(words) < MIN_WORDS:
        return None
    shingles = [" ".join(words[i : i + 3]) for i in range(len(words) - 2)]
    return int(Simhash(shingles, f=64).value)


def _bands(value: int) -> list[int]:
    return [(value >> (8 * band)) & 0xFF for band in range(BANDS)]


def _key(band: int, value: int) -> str:
    # Beside the articles stream, like the seen set: one cluster slot for a story's buckets.
    return companion(ARTICLES, f"story:{band}:{value:02x}")


class StoryIndex:
    """Assigns story ids, remembering fingerprints for ``ttl_seconds``."""

    def __init__(self, redis: Redis, *, ttl_seconds: float) -> None:
        self.redis = redis
        self.ttl = int(ttl_seconds)

    async def story_for(self, article: Article) -> str:
        """The story of a near-identical earlier article, else this article's own id."""
        value = fingerprint(article)
        if value is None:
            return article.id
        keys = [_key(band, part) for band, part in enumerate(_bands(value))]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zrange(key, 0, -1)
            buckets: list[list[str]] = await pipe.execute()
        best: tuple[int, str] | None = None
        for member in (m for bucket in buckets for m in bucket):
            other, story = member.split(":", 1)
            distance = (int(other, 16) ^ value).bit_count()
            if distance <= MAX_DISTANCE and (best is None or distance < best[0]):
                best = (distance, story)
        story_id = best[1] if best else article.id
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zadd(key, {f"{value:016x}:{story_id}": now})
                pipe.zremrangebyrank(key, 0, -BUCKET_CAP - 1)
                pipe.expire(key, self.ttl)
            await pipe.execute()
        return story_id
