"""The alerts view (the landing page): stories newest first, filters, paging into history,
and new stories pushed live by server-sent events."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp_sse import sse_response

from services.archive.reader import ArchiveReader
from services.archive.records import Query, Story
from services.console.live import LiveFeed
from services.console.pages import fragment, render
from shared.vocabulary import Vocabulary, published_vocabulary

PAGE_SIZE = 25
IDLE_CHECK_SECONDS = 15.0


def query_of(request: web.Request, vocabulary: Vocabulary) -> Query:
    """The filters in a request's query string (empty values mean "any"; theaters and stances
    outside the vocabulary are dropped)."""
    values = request.query

    def many(name: str) -> list[str]:
        return [v for v in values.getall(name, []) if v]

    return Query(
        theaters=[t for t in many("theater") if t in vocabulary.theaters],
        stances=[s for s in many("stance") if s in vocabulary.stances],
        claimant=values.get("claimant", "").strip()[:200],
        languages=many("language"),
        sources=many("source"),
    )


def _number(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def score(story: Story) -> int:
    """A story's place in time (its first alert's arrival): the live view's event id."""
    return int(story.lead.id, 36)


class AlertViews:
    """``/`` (the alerts), ``/alerts/{id}`` (one story) and ``/events`` (live stories)."""

    def __init__(self, archive: ArchiveReader, live: LiveFeed) -> None:
        self.archive = archive
        self.live = live

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/", self.index),
            ("GET", "/alerts/{id}", self.story),
            ("GET", "/events", self.events),
        ]

    async def index(self, request: web.Request) -> web.Response:
        vocabulary = await published_vocabulary(self.archive.redis)
        query = query_of(request, vocabulary)
        before = _number(request.query.get("before"))
        stories, older = await self.archive.stories(query, before=before, count=PAGE_SIZE)
        newest = score(stories[0]) if stories and before is None else None
        filters = [
            (name, value)
            for name, value in request.query.items()
            if value and name not in ("before", "notice")
        ]
        return render(request, "alerts.html.j2", {
            "stories": stories,
            "query": query,
            "older": older,
            "paged": before is not None,
            "filters": filters,
            "live_after": newest if newest is not None else await self.archive.latest_score(),
            "live": before is None,
            "theaters": vocabulary.theaters,
            "stances": vocabulary.stances,
            "languages": await self.archive.values("language"),
            "sources": await self.archive.values("source"),
        })  # fmt: skip

    async def story(self, request: web.Request) -> web.Response:
        story = await self.archive.story(request.match_info["id"])
        if story is None:
            raise web.HTTPNotFound(text="no such alert (it may have left the archive)")
        return render(request, "story.html.j2", {"story": story})

    async def events(self, request: web.Request) -> web.StreamResponse:
        """New stories matching the page's filters, as HTML fragments (event ``alert``)."""
        query = query_of(request, await published_vocabulary(self.archive.redis))
        async with sse_response(request) as stream, self.live.listen() as queue:
            sent = _number(stream.last_event_id) or _number(request.query.get("after")) or 0
            # First what arrived between the page and this stream, then what comes.
            backlog = await self.archive.newer(sent) if sent else []
            while stream.is_connected():
                if backlog:
                    story: Story | None = backlog.pop(0)
                else:
                    try:
                        story = await asyncio.wait_for(queue.get(), IDLE_CHECK_SECONDS)
                    except TimeoutError:
                        continue
                if story is None:
                    break
                if score(story) > sent and query.matches(story):
                    html = fragment(request, "_story.html.j2", {"story": story, "fresh": True})
                    await stream.send(html, id=str(score(story)), event="alert")
                    sent = score(story)
        return stream
