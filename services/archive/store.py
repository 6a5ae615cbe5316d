"""The alert archive in Redis: history for the console, bounded in time and size.

Each alert of ``vigil:alerts`` is kept (without its article text) under a short id made from
its stream entry id, so ids sort by arrival and an entry read twice is stored once. A story
(near-duplicate copies, the poller's ``story_id``) is shown once, led by its first alert
stored (copies read at the same moment by concurrent handlers: whichever is stored first);
the other copies count as "reported by N sources" and add their claims to the ledger.

Keys, all under one hash tag (``vigil:{archive}:``) so that a transaction may touch several
on Redis Cluster:

- ``alerts``: hash, short id -> the alert's JSON (article text dropped);
- ``stored``: every kept alert by arrival (trimming walks it);
- ``time``: the stories' first alerts by arrival (the alerts view, newest first);
- ``idx:{theater|stance|language|source|claimant}:{value}``: first alerts of the stories
  holding that value in any of their copies (the alerts view's filters);
- ``claims:{theater}`` and ``claims:{theater}:{stance}``, ``claims:claimant:{name}``: claim
  references ``{short id}.{n}`` by arrival (the claims ledger);
- ``claimants``: normalised claimant name -> the name as first written;
- ``story:{story}``: the story's first alert, its sources and the stances seen per theater
  (``contested``: an assertion and a denial in one theater), expiring with the retention;
- ``indexes``: every index key above, so that trimming reaches them all.

Scores are the arrival in microseconds (entry milliseconds * 1000 + sequence): exact in a
double, unique per entry. Trimming drops what is older than ``VIGIL_ARCHIVE__DAYS`` and the
oldest beyond ``VIGIL_ARCHIVE__MAX_ALERTS``, from every key at once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from services.archive.settings import ArchiveSettings
from services.notifier.jobs import story_key
from shared.models import Alert, Claim, Theater

PREFIX = "vigil:{archive}:"
ALERTS = PREFIX + "alerts"
STORED = PREFIX + "stored"
TIME = PREFIX + "time"
CLAIMANTS = PREFIX + "claimants"
INDEXES = PREFIX + "indexes"
_TRIM_BATCH = 1000
_TEMP_TTL_SECONDS = 30


def entry_score(entry_id: str) -> int:
    """The arrival of a stream entry in microseconds: ``1700000000000-3`` -> ...000003."""
    millis, _, sequence = entry_id.partition("-")
    return int(millis) * 1000 + min(int(sequence or 0), 999)


def score_at(epoch: float) -> int:
    """The score of an arrival at ``epoch`` seconds."""
    return int(epoch * 1_000_000)


def short_id(score: int) -> str:
    """A compact id (base 36 of the score): index members stay small."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while score:
        score, rest = divmod(score, 36)
        text = digits[rest] + text
    return text or "0"


def normal_claimant(name: str) -> str:
    """How claimants are grouped: case and spacing do not matter."""
    return " ".join(name.casefold().split())


def _story(story: str) -> str:
    return f"{PREFIX}story:{story}"


def _index(kind: str, value: str) -> str:
    return f"{PREFIX}idx:{kind}:{value}"


def _claims(theater: str, stance: str | None = None) -> str:
    return f"{PREFIX}claims:{theater}" + (f":{stance}" if stance else "")


def _claimant_claims(name: str) -> str:
    return f"{PREFIX}claims:claimant:{normal_claimant(name)}"


@dataclass(frozen=True)
class Archived:
    """An alert as the archive keeps it."""

    id: str
    alert: Alert

    @property
    def arrived(self) -> float:
        """Epoch seconds when the alert reached ``vigil:alerts``."""
        return int(self.id, 36) / 1_000_000

    @property
    def when(self) -> datetime:
        """The article's publication time, else when it was fetched."""
        return self.alert.article.published_at or self.alert.article.fetched_at


@dataclass(frozen=True)
class Story:
    """A story's first alert, the other sources' copies, and its contested theaters."""

    lead: Archived
    copies: list[Archived] = field(default_factory=list)
    contested: frozenset[str] = frozenset()

    @property
    def sources(self) -> list[str]:
        return [self.lead.alert.article.source, *(c.alert.article.source for c in self.copies)]


@dataclass(frozen=True)
class ClaimRow:
    """One claim of the ledger, with the alert that carries it."""

    archived: Archived
    claim: Claim
    contested: bool


@dataclass(frozen=True)
class Query:
    """The alerts view's filters: any of the values of each, all filters together."""

    theaters: Sequence[str] = ()
    stances: Sequence[str] = ()
    claimant: str = ""
    languages: Sequence[str] = ()
    sources: Sequence[str] = ()

    def matches(self, story: Story) -> bool:
        """Whether a story passes the filters (for alerts arriving live)."""
        alerts = [story.lead.alert, *(c.alert for c in story.copies)]
        values = _index_values(alerts)
        wanted = normal_claimant(self.claimant)
        return (
            _any(self.theaters, values["theater"])
            and _any(self.stances, values["stance"])
            and _any(self.languages, values["language"])
            and _any(self.sources, values["source"])
            and (not wanted or any(wanted in name for name in values["claimant"]))
        )


def _any(wanted: Sequence[str], present: set[str]) -> bool:
    return not wanted or bool(present.intersection(wanted))


def _index_values(alerts: Iterable[Alert]) -> dict[str, set[str]]:
    """The values each filter indexes for some alerts (claimants normalised)."""
    values: dict[str, set[str]] = {k: set() for k in ("theater", "stance", "language", "source")}
    values["claimant"] = set()
    for alert in alerts:
        verdict = alert.classification
        values["theater"].update(verdict.theaters, (c.theater for c in verdict.claims))
        values["stance"].update(verdict.stances, (c.stance for c in verdict.claims))
        values["language"].add(alert.article.language or verdict.language)
        values["source"].add(alert.article.source)
        values["claimant"].update(normal_claimant(c.claimant) for c in verdict.claims)
    return values


def _kept(alert: Alert) -> Alert:
    """What the archive keeps of an alert: all but the article's text, and the evidence
    sentences that its claims quote already (the views show those with their claims)."""
    verdict = alert.classification
    quoted = {claim.evidence for claim in verdict.claims}
    evidence = [sentence for sentence in verdict.evidence if sentence not in quoted]
    return alert.model_copy(update={
        "article": alert.article.model_copy(update={"text": ""}),
        "classification": verdict.model_copy(update={"evidence": evidence}),
    })  # fmt: skip


class AlertArchive:
    """Writes, trims and reads the archive."""

    def __init__(self, redis: Redis, settings: ArchiveSettings) -> None:
        self.redis = redis
        self.settings = settings

    async def add(self, alert: Alert, entry_id: str) -> bool:
        """Keep ``alert``; False if its story already has this source (a repeat)."""
        score = entry_score(entry_id)
        new_id = short_id(score)
        story = _story(story_key(alert))
        source = alert.article.source
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(story)
                    known = _text_hash(await pipe.hgetall(story))
                    if f"src:{source}" in known:
                        return False
                    lead = known.get("lead")
                    if lead is None or not await pipe.hexists(ALERTS, lead):
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
        pipe.hset(ALERTS, new_id, _kept(alert).model_dump_json(exclude_defaults=True))
        pipe.zadd(STORED, {new_id: score})
        fields: dict[Any, str] = {"lead": lead, f"src:{alert.article.source}": new_id}
        if lead == new_id:
            pipe.zadd(TIME, {new_id: score})
        keys = [
            _index(kind, value)
            for kind, values in _index_values([alert]).items()
            for value in values
        ]
        for key in keys:
            pipe.zadd(key, {lead: lead_score})
        for number, claim in enumerate(alert.classification.claims):
            reference = f"{new_id}.{number}"
            claim_keys = [
                _claims(claim.theater),
                _claims(claim.theater, claim.stance),
                _claimant_claims(claim.claimant),
            ]
            for key in claim_keys:
                pipe.zadd(key, {reference: score})
            keys += claim_keys
            pipe.hsetnx(CLAIMANTS, normal_claimant(claim.claimant), claim.claimant)
            fields[f"stance:{claim.theater}:{claim.stance}"] = "1"
        pipe.hset(story, mapping=fields)
        pipe.expire(story, int(self.settings.days * 86_400) + 3600)
        if keys:
            pipe.sadd(INDEXES, *keys)

    async def trim(self, now: float | None = None) -> int:
        """Drop what is past the retention or beyond the size limit; returns alerts dropped."""
        cutoff = score_at((now or time.time()) - self.settings.days * 86_400)
        beyond = await self.redis.zrevrange(
            STORED, self.settings.max_alerts, self.settings.max_alerts, withscores=True
        )
        if beyond:
            cutoff = max(cutoff, int(beyond[0][1]) + 1)
        dropped = 0
        while True:
            ids = await self.redis.zrangebyscore(STORED, "-inf", f"({cutoff}", 0, _TRIM_BATCH)
            if not ids:
                break
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hdel(ALERTS, *ids)
                pipe.zrem(STORED, *ids)
                await pipe.execute()
            dropped += len(ids)
        keys = [TIME, *await self.redis.smembers(INDEXES)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zremrangebyscore(key, "-inf", f"({cutoff}")
                pipe.zcard(key)
            counts = (await pipe.execute())[1::2]
        empty = [key for key, count in zip(keys, counts, strict=True) if not count and key != TIME]
        if empty:
            claimant = _claimant_claims("")
            names = [
                str(key).removeprefix(claimant) for key in empty if str(key).startswith(claimant)
            ]
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.srem(INDEXES, *empty)
                if names:
                    pipe.hdel(CLAIMANTS, *names)
                await pipe.execute()
        return dropped

    async def values(self, kind: str) -> list[str]:
        """The values kept of one filter (``language``, ``source``...), sorted."""
        prefix = _index(kind, "")
        keys = await self.redis.smembers(INDEXES)
        return sorted(str(k).removeprefix(prefix) for k in keys if str(k).startswith(prefix))

    async def count(self) -> int:
        """Alerts kept."""
        return int(await self.redis.zcard(STORED))

    async def _load(self, ids: Sequence[str]) -> dict[str, Archived]:
        if not ids:
            return {}
        rows = await self.redis.hmget(ALERTS, list(ids))
        return {
            short: Archived(short, Alert.model_validate_json(body))
            for short, body in zip(ids, rows, strict=True)
            if body is not None
        }

    async def _stories(self, lead_ids: Sequence[str]) -> list[Story]:
        leads = await self._load(lead_ids)
        async with self.redis.pipeline(transaction=False) as pipe:
            for lead in leads.values():
                pipe.hgetall(_story(story_key(lead.alert)))
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
            stories.append(Story(lead, others, _contested(fields)))
        return stories

    async def story(self, short: str) -> Story | None:
        """The story led by (or holding) the alert ``short``."""
        found = await self._load([short])
        if not found:
            return None
        lead = await self.redis.hget(_story(story_key(found[short].alert)), "lead")
        stories = await self._stories([str(lead or short)])
        return stories[0] if stories else Story(found[short])

    async def newer(self, after: int, limit: int = 50) -> list[Story]:
        """Stories first seen after the score ``after``, oldest first (the live view)."""
        ids = await self.redis.zrangebyscore(TIME, f"({after}", "+inf", 0, limit)
        return await self._stories([str(short) for short in ids])

    async def latest_score(self) -> int:
        """The score of the newest story (0 if none)."""
        last = await self.redis.zrevrange(TIME, 0, 0, withscores=True)
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
            await self.redis.zrevrangebyscore(TIME, top, "-inf", 0, count + 1, True)
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
            [_index(kind, value) for value in values]
            for kind, values in (
                ("theater", query.theaters),
                ("stance", query.stances),
                ("language", query.languages),
                ("source", query.sources),
            )
            if values
        ]
        wanted = normal_claimant(query.claimant)
        if wanted:
            names = [str(name) for name in await self.redis.hkeys(CLAIMANTS) if wanted in name]
            if not names:
                return None
            groups.append([_index("claimant", name) for name in names])
        return groups

    async def _intersect(
        self, groups: list[list[str]], top: str, count: int
    ) -> list[tuple[str, float]]:
        """A page of the stories in every group (in any key of each). The index keys hold
        stories' first alerts only, so a single key is read as it is."""
        if len(groups) == 1 and len(groups[0]) == 1:
            rows = await self.redis.zrevrangebyscore(groups[0][0], top, "-inf", 0, count, True)
            return cast(list[tuple[str, float]], rows)
        temp = f"{PREFIX}tmp:{uuid.uuid4().hex}"
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
            key = _claimant_claims(claimant)
        else:
            key = _claims(theater or "other", stance)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrevrange(key, offset, offset + count - 1)
            pipe.zcard(key)
            references, total = await pipe.execute()
        pairs = [str(ref).rpartition(".") for ref in references]
        loaded = await self._load(list(dict.fromkeys(short for short, _, _ in pairs)))
        async with self.redis.pipeline(transaction=False) as pipe:
            for archived in loaded.values():
                pipe.hgetall(_story(story_key(archived.alert)))
            contested = {
                short: _contested(fields)
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
            rows.append(ClaimRow(holder, claim, claim.theater in contested[short]))
        return rows, int(total)

    async def claim_counts(self, theaters: Sequence[Theater]) -> dict[Theater, int]:
        """Claims kept per theater, for each of ``theaters``."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for theater in theaters:
                pipe.zcard(_claims(theater))
            counts = await pipe.execute()
        return dict(zip(theaters, (int(c) for c in counts), strict=True))

    async def claimants(self, limit: int = 40) -> list[tuple[str, int]]:
        """The claimants with the most claims kept, as first written, with their counts."""
        names = _text_hash(await self.redis.hgetall(CLAIMANTS))
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.zcard(_claimant_claims(name))
            counts = await pipe.execute()
        ranked = sorted(
            zip(names.values(), (int(c) for c in counts), strict=True), key=lambda r: -r[1]
        )
        return [row for row in ranked if row[1]][:limit]

    async def claimant_name(self, name: str) -> str | None:
        """The claimant as first written, if any claim of it is kept."""
        found = await self.redis.hget(CLAIMANTS, normal_claimant(name))
        return None if found is None else str(found)


def _text_hash(raw: Mapping[Any, Any]) -> dict[str, str]:
    """A hash as text (the client decodes responses; its types say bytes or str)."""
    return {str(k): str(v) for k, v in raw.items()}


def _contested(fields: Mapping[str, str]) -> frozenset[str]:
    """Theaters in which the story holds both an assertion and a denial."""
    return frozenset(
        name.split(":")[1]
        for name in fields
        if name.startswith("stance:")
        and name.endswith(":assertion")
        and f"stance:{name.split(':')[1]}:denial" in fields
    )
