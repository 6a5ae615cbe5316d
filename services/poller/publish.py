"""Publishing the new entries of a feed: exact dedupe, story grouping, then the stream.

Delivery is at-least-once: an article is marked as seen in the same transaction that puts it
on the stream, so a crash before it republishes it on the next poll rather than losing it.
Redis work is per batch of articles, not per article: one read of the seen set, one round of
claims, one read of the story index and one transaction of XADDs, story writes and seen marks.
The CPU work (canonical URLs, text, language, fingerprints) runs on the parse pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.asyncio.client import Pipeline

from services.poller import metrics
from services.poller.articles import Identified, build_article, identify
from services.poller.dedupe import SeenStore
from services.poller.entries import Entry
from services.poller.fetch import Fetcher
from services.poller.fulltext import with_full_text
from services.poller.pool import ParsePool
from services.poller.stories import Assigned, StoryIndex, fingerprint, group
from shared.bus import StreamBus
from shared.models import Article
from shared.streams import ARTICLES

BATCH = 64  # articles per transaction: a huge feed is written in short steps


@dataclass(frozen=True)
class Published:
    """What one batch of entries came to."""

    new: int
    duplicates: int
    skipped: int


class Publisher:
    """Turns entries into articles and publishes those not seen before."""

    def __init__(
        self,
        bus: StreamBus,
        seen: SeenStore,
        stories: StoryIndex,
        *,
        skew: timedelta,
        pool: ParsePool,
        fetcher: Fetcher | None = None,
    ) -> None:
        self.bus = bus
        self.seen = seen
        self.stories = stories
        self.skew = skew
        self.pool = pool
        self.fetcher = fetcher

    async def publish(
        self,
        entries: Sequence[Entry],
        *,
        source: str,
        base_url: str,
        fetched_at: datetime,
        full_text: bool = False,
    ) -> Published:
        """Publish the entries not seen before (in feed order); count the rest.

        With ``full_text``, each new article's page is fetched for its text first.
        """
        unique, skipped = await self.pool.run(None, _identify, entries, source, base_url)
        fresh = await self.seen.claim_unseen(list(unique))
        new = 0
        for start in range(0, len(fresh), BATCH):
            items = [unique[i] for i in fresh[start : start + BATCH]]
            new += await self._publish_batch(items, source, fetched_at, full_text=full_text)
        duplicates = len(entries) - skipped - new
        metrics.ARTICLES.labels("new").inc(new)
        metrics.ARTICLES.labels("duplicate").inc(duplicates)
        metrics.POLLER_ENTRIES_SKIPPED.inc(skipped)
        return Published(new, duplicates, skipped)

    async def _publish_batch(
        self, items: list[Identified], source: str, fetched_at: datetime, *, full_text: bool
    ) -> int:
        articles = await self.pool.run(None, self._build, items, source, fetched_at)
        if full_text and self.fetcher is not None:
            fetcher = self.fetcher
            articles = list(await asyncio.gather(*(with_full_text(fetcher, a) for a in articles)))
        prints = await self.pool.run(None, _fingerprints, articles)
        ids = [article.id for article in articles]
        buckets = await self.stories.buckets(prints)
        assigned = await self.pool.run(None, group, list(zip(ids, prints, strict=True)), buckets)
        stamped = await self.pool.run(None, _stamp, articles, assigned)

        def effects(pipe: Pipeline) -> None:
            self.stories.remember(pipe, assigned)
            self.seen.mark_on(pipe, ids)

        await self.bus.publish_many(ARTICLES, stamped, also=effects)
        for article, story in zip(stamped, assigned, strict=True):
            outcome = "new_story" if story.story_id == article.id else "near_duplicate"
            metrics.POLLER_STORIES.labels(outcome).inc()
        return len(stamped)

    def _build(self, items: list[Identified], source: str, fetched_at: datetime) -> list[Article]:
        return [
            build_article(item, source=source, fetched_at=fetched_at, skew=self.skew)
            for item in items
        ]


def _identify(
    entries: Sequence[Entry], source: str, base_url: str
) -> tuple[dict[str, Identified], int]:
    """Entries by id, the first of each id in feed order; and how many have no id at all."""
    unique: dict[str, Identified] = {}
    skipped = 0
    for entry in entries:
        item = identify(entry, source=source, base_url=base_url)
        if item is None:
            skipped += 1
        else:
            unique.setdefault(item.id, item)
    return unique, skipped


def _fingerprints(articles: list[Article]) -> list[int | None]:
    return [fingerprint(article) for article in articles]


def _stamp(articles: list[Article], assigned: list[Assigned]) -> list[Article]:
    return [
        article.model_copy(update={"story_id": story.story_id})
        for article, story in zip(articles, assigned, strict=True)
    ]
