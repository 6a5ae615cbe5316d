"""The operator's pages: sources with their health, and the dead letters (replay, purge)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import orjson
from aiohttp import web
from redis.asyncio import Redis

from services.console.pages import render, see_other
from services.poller.health import source_rows
from services.poller.sources import Source
from services.poller.state import StateStore
from shared.bus import StreamBus
from shared.models import DeadLetter
from shared.streams import DEAD

DEAD_PAGE = 100
_SECRET_WORDS = ("key", "token", "secret", "password", "auth", "sig", "session")


def shown_url(url: str) -> str:
    """A source URL safe to show: no user or password, and query values that look like
    credentials replaced by ``…``."""
    parts = urlsplit(url)
    if not parts.netloc:
        return url
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    query = "&".join(
        f"{name}=…" if any(word in name.lower() for word in _SECRET_WORDS) else f"{name}={value}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class SourceViews:
    """``/sources``: last success, last error, next poll and articles per day of each source."""

    def __init__(self, redis: Redis, sources: Sequence[Source]) -> None:
        self.redis = redis
        self.sources = list(sources)

    def routes(self) -> list[tuple[str, str, Any]]:
        return [("GET", "/sources", self.list)]

    async def list(self, request: web.Request) -> web.Response:
        rows = await source_rows(self.redis, self.sources)
        daily = await StateStore(self.redis).articles_per_day([s.id for s in self.sources])
        names = {s.id: s.name or s.id for s in self.sources}
        for row, per_day in zip(rows, daily, strict=True):
            row.update(per_day=per_day, name=names[str(row["id"])], url=shown_url(str(row["url"])))
        counts = {h: sum(1 for r in rows if r["health"] == h) for h in ("ok", "failing")}
        return render(request, "sources.html.j2", {"rows": rows, "counts": counts,
                                                   "now": time.time()})  # fmt: skip


@dataclass(frozen=True)
class DeadView:
    """A dead letter as the page shows it: what it was, for whom, and why it failed."""

    id: str
    letter: DeadLetter
    what: str
    subscription: str


def _describe(letter: DeadLetter) -> tuple[str, str]:
    """The title it carried and, for a delivery, its subscriber (never the raw payload)."""
    try:
        data = orjson.loads(letter.fields.get("data", "{}"))
    except orjson.JSONDecodeError:
        return "(unreadable entry)", ""
    if not isinstance(data, dict):
        return "(unreadable entry)", ""
    article = data.get("article") or {}
    alerts = data.get("alerts") or []
    if alerts:
        article = alerts[0].get("article") or {}
    title = str(article.get("title") or "(no title)")
    if data.get("kind") in ("digest", "overflow"):
        title = f"{len(alerts)} alerts in one message"
    return title, str(data.get("subscription_id") or "")


class DeadLetterViews:
    """``/dead``: list with reasons, replay, and purge after a confirmation."""

    def __init__(self, redis: Redis) -> None:
        self.bus = StreamBus(redis)

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/dead", self.list),
            ("POST", "/dead/{id}/replay", self.replay),
            ("GET", "/dead/purge", self.confirm_purge),
            ("POST", "/dead/purge", self.purge),
        ]

    async def _views(self, end: str = "+", count: int = DEAD_PAGE) -> list[DeadView]:
        letters = await self.bus.newest_dead_letters(end=end, count=count)
        return [DeadView(dead_id, letter, *_describe(letter)) for dead_id, letter in letters]

    async def list(self, request: web.Request) -> web.Response:
        end = request.query.get("before", "+")
        views = await self._views(end, DEAD_PAGE + 1)
        older = views[DEAD_PAGE].id if len(views) > DEAD_PAGE else None
        total = await self.bus.redis.xlen(DEAD)
        return render(request, "dead.html.j2", {"letters": views[:DEAD_PAGE], "older": older,
                                                "total": total})  # fmt: skip

    async def replay(self, request: web.Request) -> web.Response:
        replayed = await self.bus.replay(request.match_info["id"])
        raise see_other("/dead", "replayed" if replayed else "not_replayed")

    async def confirm_purge(self, request: web.Request) -> web.Response:
        everything = request.query.get("all") == "1"
        ids = request.query.getall("id", [])
        if not everything and not ids:
            raise see_other("/dead", "nothing_selected")
        chosen = []
        for dead_id in [] if everything else ids:
            letter = await self.bus.get_dead_letter(dead_id)
            if letter is not None:
                chosen.append(DeadView(dead_id, letter, *_describe(letter)))
        total = await self.bus.redis.xlen(DEAD)
        context = {"everything": everything, "chosen": chosen, "total": total}
        return render(request, "dead_purge.html.j2", context)

    async def purge(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("confirm") != "yes":
            raise see_other("/dead")
        everything = form.get("all") == "1"
        ids = [str(v) for v in form.getall("id", [])]
        await self.bus.purge(None if everything else ids)
        raise see_other("/dead", "purged")
