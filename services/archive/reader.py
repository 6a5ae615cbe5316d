"""Reading the archive: pages of stories under the alerts view's filters, the live view's
newer stories, and the claims ledger. The console reads through this and never writes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis

from services.archive import keys
from services.archive.records import Archived, ClaimRow, Query, Story, contested, text_hash
from shared.models import Alert, Theater


class ArchiveReader:
    """The console's view of the archive."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def values(self, kind: str) -> list[str]:
        """The values kept of one filter (``language``, ``source``...), sorted."""
        prefix = keys.index(kind, "")
        found = await self.redis.smembers(keys.INDEXES)
        return sorted(str(k).removeprefix(prefix) for k in found if str(k).startswith(prefix))

    async def count(self) -> int:
        """Alerts kept."""
        return int(await self.redis.zcard(keys.STORED))

    async def _load(self, ids: Sequence[str]) -> dict[str, Archived]:
        if not ids:
            return {}
        rows = await self.redis.hmget(keys.ALERTS, list(ids))
        return {
            short: Archived(short, Alert.model_validate_json(body))
            for short, body in zip(ids, rows, strict=True)
            if body is not None
        }

    async def _stories(self, lead_ids: Sequence[str]) -> list[Story]:
        leads = await self._load(lead_ids)
        async with self.redis.pipeline(transaction=False) as pipe:
            for lead in leads.values():
                pipe.hgetall(keys.story(lead.alert.story_key))
            known: list[dict[str, str]] = await pipe.execute()
        copy_ids = [
            short
            for lead, fields in zip(leads.values(), known, strict=True)
            for name, short in fields.items()
            if name.startswith("src:") and short != lead.id
        ]
        copies = await self._load(copy_ids)
        stories = []
        for lead, fields in zip(leads.values(), known, strict=True):
            others = [
                copies[short]
                for name, short in sorted(fields.items())
                if name.startswith("src:") and short in copies and short != lead.id
            ]
            stories.append(Story(lead, others, contested(fields)))
        return stories

    async def story(self, short: str) -> Story | None:
        """The story led by (or holding) the alert ``short``."""
        found = await self._load([short])
        if not found:
            return None
        lead = await self.redis.hget(keys.story(found[short].alert.story_key), "lead")
        stories = await self._stories([str(lead or short)])
        return stories[0] if stories else Story(found[short])

    async def newer(self, after: int, limit: int = 50) -> list[Story]:
        """Stories first seen after the score ``after``, oldest first (the live view)."""
        ids = await self.redis.zrangebyscore(keys.TIME, f"({after}", "+inf", 0, limit)
        return await self._stories([str(short) for short in ids])

    async def latest_score(self) -> int:
        """The score of the newest story (0 if none)."""
        last = await self.redis.zrevrange(keys.TIME, 0, 0, withscores=True)
        return int(last[0][1]) if last else 0

    async def stories(
        self, query: Query, *, before: int | None = None, count: int = 25
    ) -> tuple[list[Story], int | None]:
        """A page of stories, newest first, older than ``before``; and the next page's
        ``before`` (None on the last page)."""
        top = f"({before}" if before is not None else "+inf"
        groups = await self._filter_keys(query)
        if groups is None:
            return [], None
        found: list[Any] = (
            await self.redis.zrevrangebyscore(keys.TIME, top, "-inf", 0, count + 1, True)
            if not groups
            else await self._intersect(groups, top, count + 1)
        )
        rows = [(str(member), int(score)) for member, score in found]
        page = rows[:count]
        stories = await self._stories([member for member, _ in page])
        return stories, page[-1][1] if len(rows) > count else None

    async def _filter_keys(self, query: Query) -> list[list[str]] | None:
        """Index keys per filter (any of each group, all groups); None: nothing can match."""
        groups = [
            [keys.index(kind, value) for value in values]
            for kind, values in (
                ("theater", query.theaters),
                ("stance", query.stances),
                ("language", query.languages),
                ("source", query.sources),
            )
            if values
        ]
        wanted = keys.normal_claimant(query.claimant)
        if wanted:
            found = await self.redis.hkeys(keys.CLAIMANTS)
            names = [str(name) for name in found if wanted in name]
            if not names:
                return None
            groups.append([keys.index("claimant", name) for name in names])
        return groups

    async def _intersect(
        self, groups: list[list[str]], top: str, count: int
    ) -> list[tuple[str, float]]:
        """A page of the stories in every group (in any key of each). The index keys hold
        stories' first alerts only, so a single key is read as it is."""
        if len(groups) == 1 and len(groups[0]) == 1:
            rows = await self.redis.zrevrangebyscore(groups[0][0], top, "-inf", 0, count, True)
            return cast(list[tuple[str, float]], rows)
        temp = f"{keys.PREFIX}tmp:{uuid.uuid4().hex}"
        unions = []
        async with self.redis.pipeline(transaction=True) as pipe:
            for number, group in enumerate(groups):
                if len(group) == 1:
                    unions.append(group[0])
                    continue
                union = f"{temp}:{number}"
                pipe.zunionstore(union, group, aggregate="MAX")
                unions.append(union)
            pipe.zinterstore(temp, unions, aggregate="MAX")
            pipe.zrevrangebyscore(temp, top, "-inf", 0, count, True)
            pipe.delete(temp, *(u for u in unions if u.startswith(temp)))
            results = await pipe.execute()
        return cast(list[tuple[str, float]], results[-2])

    async def claims(
        self,
        *,
        theater: str | None = None,
        stance: str | None = None,
        claimant: str | None = None,
        offset: int = 0,
        count: int = 50,
    ) -> tuple[list[ClaimRow], int]:
        """A page of the ledger, newest first: a theater's claims (of one stance), or one
        claimant's; and how many there are in all."""
        if claimant is not None:
            key = keys.claimant_claims(claimant)
        else:
            key = keys.claims(theater or "other", stance)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrevrange(key, offset, offset + count - 1)
            pipe.zcard(key)
            references, total = await pipe.execute()
        pairs = [str(ref).rpartition(".") for ref in references]
        loaded = await self._load(list(dict.fromkeys(short for short, _, _ in pairs)))
        async with self.redis.pipeline(transaction=False) as pipe:
            for archived in loaded.values():
                pipe.hgetall(keys.story(archived.alert.story_key))
            disputed = {
                short: contested(fields)
                for short, fields in zip(loaded, await pipe.execute(), strict=True)
            }
        rows = []
        for short, _, number in pairs:
            holder = loaded.get(short)
            claims = holder.alert.classification.claims if holder else []
            if holder is None or int(number) >= len(claims):
                continue
            claim = claims[int(number)]
            if stance is not None and claim.stance != stance:
                continue
            rows.append(ClaimRow(holder, claim, claim.theater in disputed[short]))
        return rows, int(total)

    async def claim_counts(self, theaters: Sequence[Theater]) -> dict[Theater, int]:
        """Claims kept per theater, for each of ``theaters``."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for theater in theaters:
                pipe.zcard(keys.claims(theater))
            counts = await pipe.execute()
        return dict(zip(theaters, (int(c) for c in counts), strict=True))

    async def claimants(self, limit: int = 40) -> list[tuple[str, int]]:
        """The claimants with the most claims kept, as first written, with their counts."""
        names = text_hash(await self.redis.hgetall(keys.CLAIMANTS))
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.zcard(keys.claimant_claims(name))
            counts = await pipe.execute()
        ranked = sorted(
            zip(names.values(), (int(c) for c in counts), strict=True), key=lambda r: -r[1]
        )
        return [row for row in ranked if row[1]][:limit]

    async def claimant_name(self, name: str) -> str | None:
        """The claimant as first written, if any claim of it is kept."""
        found = await self.redis.hget(keys.CLAIMANTS, keys.normal_claimant(name))
        return None if found is None else str(found)
