"""Publishing the new entries of a feed: exact dedupe, story grouping, then the stream.

Delivery is at-least-once: an article is marked as seen only after it is on the stream, so a
crash in between republishes it on the next poll rather than losing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.poller.articles import Identified, build_article, identify
from services.poller.dedupe import SeenStore
from services.poller.fetch import Fetcher
from services.poller.fulltext import with_full_text
from services.poller.parse import Entry
from services.poller.stories import StoryIndex
from shared import metrics
from shared.bus import StreamBus
from shared.models import Article
from shared.streams import ARTICLES


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
        fetcher: Fetcher | None = None,
    ) -> None:
        self.bus = bus
        self.seen = seen
        self.stories = stories
        self.skew = skew
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
        unique: dict[str, Identified] = {}
        skipped = 0
        for entry in entries:
            item = identify(entry, source=source, base_url=base_url)
            if item is None:
                skipped += 1
            else:
                unique.setdefault(item.id, item)
        fresh = await self.seen.claim_unseen(list(unique))
        articles = await asyncio.to_thread(self._build, [unique[i] for i in fresh], source,
                                           fetched_at)  # fmt: skip
        if full_text and self.fetcher is not None:
            fetcher = self.fetcher
            articles = list(await asyncio.gather(*(with_full_text(fetcher, a) for a in articles)))
        for article in articles:
            story_id = await self.stories.story_for(article)
            outcome = "new_story" if story_id == article.id else "near_duplicate"
            metrics.POLLER_STORIES.labels(outcome).inc()
            await self.bus.publish(ARTICLES, article.model_copy(update={"story_id": story_id}))
            await self.seen.mark([article.id])
        duplicates = len(entries) - skipped - len(articles)
        metrics.ARTICLES.labels("new").inc(len(articles))
        metrics.ARTICLES.labels("duplicate").inc(duplicates)
        metrics.POLLER_ENTRIES_SKIPPED.inc(skipped)
        return Published(len(articles), duplicates, skipped)

    def _build(self, items: list[Identified], source: str, fetched_at: datetime) -> list[Article]:
        return [
            build_article(item, source=source, fetched_at=fetched_at, skew=self.skew)
            for item in items
        ]
