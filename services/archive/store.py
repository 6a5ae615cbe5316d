"""The alert archive in Redis: history for the console, bounded in time and size.

Each alert of ``vigil:alerts`` is kept (without its article text) under a short id made from
its stream entry id, so ids sort by arrival and an entry read twice is stored once. A story
(near-duplicate copies, the poller's ``story_id``) is shown once, led by its first alert
stored (copies read at the same moment by concurrent handlers: whichever is stored first);
the other copies count as "reported by N sources" and add their claims to the ledger.

Trimming drops what is older than ``VIGIL_ARCHIVE__DAYS`` and the oldest beyond
``VIGIL_ARCHIVE__MAX_ALERTS``, from every key at once. The keys are laid out in
:mod:`services.archive.keys`; reading is :class:`~services.archive.reader.ArchiveReader`.
"""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from services.archive import keys
from services.archive.reader import ArchiveReader
from services.archive.records import index_values, kept, text_hash
from services.archive.settings import ArchiveSettings
from shared.models import Alert

_TRIM_BATCH = 1000


class AlertArchive(ArchiveReader):
    """Writes and trims the archive (and reads it, as the console does)."""

    def __init__(self, redis: Redis, settings: ArchiveSettings) -> None:
        super().__init__(redis)
        self.settings = settings

    async def add(self, alert: Alert, entry_id: str) -> bool:
        """Keep ``alert``; False if its story already has this source (a repeat)."""
        score = keys.entry_score(entry_id)
        new_id = keys.short_id(score)
        story = keys.story(alert.story_key)
        source = alert.article.source
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(story)
                    known = text_hash(await pipe.hgetall(story))
                    if f"src:{source}" in known:
                        return False
                    lead = known.get("lead")
                    if lead is None or not await pipe.hexists(keys.ALERTS, lead):
                        lead = new_id
                    pipe.multi()  # type: ignore[no-untyped-call]
                    self._write(pipe, alert, new_id=new_id, score=score, story=story, lead=lead)
                    await pipe.execute()
                except WatchError:  # another replica wrote this story meanwhile: look again
                    continue
                return True

    def _write(
        self, pipe: Pipeline, alert: Alert, *, new_id: str, score: int, story: str, lead: str
    ) -> None:
        lead_score = int(lead, 36)
        pipe.hset(keys.ALERTS, new_id, kept(alert).model_dump_json(exclude_defaults=True))
        pipe.zadd(keys.STORED, {new_id: score})
        fields: dict[Any, str] = {"lead": lead, f"src:{alert.article.source}": new_id}
        if lead == new_id:
            pipe.zadd(keys.TIME, {new_id: score})
        written = [
            keys.index(kind, value)
            for kind, values in index_values([alert]).items()
            for value in values
        ]
        for key in written:
            pipe.zadd(key, {lead: lead_score})
        for number, claim in enumerate(alert.classification.claims):
            reference = f"{new_id}.{number}"
            claim_keys = [
                keys.claims(claim.theater),
                keys.claims(claim.theater, claim.stance),
                keys.claimant_claims(claim.claimant),
            ]
            for key in claim_keys:
                pipe.zadd(key, {reference: score})
            written += claim_keys
            pipe.hsetnx(keys.CLAIMANTS, keys.normal_claimant(claim.claimant), claim.claimant)
            fields[f"stance:{claim.theater}:{claim.stance}"] = "1"
        pipe.hset(story, mapping=fields)
        pipe.expire(story, int(self.settings.days * 86_400) + 3600)
        if written:
            pipe.sadd(keys.INDEXES, *written)

    async def trim(self, now: float | None = None) -> int:
        """Drop what is past the retention or beyond the size limit; returns alerts dropped."""
        cutoff = keys.score_at((now or time.time()) - self.settings.days * 86_400)
        beyond = await self.redis.zrevrange(
            keys.STORED, self.settings.max_alerts, self.settings.max_alerts, withscores=True
        )
        if beyond:
            cutoff = max(cutoff, int(beyond[0][1]) + 1)
        dropped = 0
        while True:
            ids = await self.redis.zrangebyscore(keys.STORED, "-inf", f"({cutoff}", 0, _TRIM_BATCH)
            if not ids:
                break
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hdel(keys.ALERTS, *ids)
                pipe.zrem(keys.STORED, *ids)
                await pipe.execute()
            dropped += len(ids)
        await self._trim_indexes(cutoff)
        return dropped

    async def _trim_indexes(self, cutoff: int) -> None:
        """Drop index and ledger entries before ``cutoff``; forget the keys left empty."""
        indexes = [keys.TIME, *await self.redis.smembers(keys.INDEXES)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in indexes:
                pipe.zremrangebyscore(key, "-inf", f"({cutoff}")
                pipe.zcard(key)
            counts = (await pipe.execute())[1::2]
        left = dict(zip(indexes, counts, strict=True))
        empty = [key for key, count in left.items() if not count and key != keys.TIME]
        if not empty:
            return
        claimant = keys.claimant_claims("")
        names = [str(key).removeprefix(claimant) for key in empty if str(key).startswith(claimant)]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.srem(keys.INDEXES, *empty)
            if names:
                pipe.hdel(keys.CLAIMANTS, *names)
            await pipe.execute()
