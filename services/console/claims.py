"""The claims ledger: per theater, who asserted, denied, acknowledged or threatened Turkish
military involvement, when, where it was reported and the quote; and one claimant's record."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.archive.reader import ArchiveReader
from services.console.pages import render
from shared.vocabulary import published_vocabulary

PAGE_SIZE = 50


def _page(request: web.Request) -> int:
    text = request.query.get("page", "1")
    return max(1, int(text)) if text.isdigit() else 1


class ClaimViews:
    """``/claims`` (a theater's timeline) and ``/claims/claimant`` (one claimant's claims)."""

    def __init__(self, archive: ArchiveReader) -> None:
        self.archive = archive
        self.redis = archive.redis

    def routes(self) -> list[tuple[str, str, Any]]:
        return [("GET", "/claims", self.theater), ("GET", "/claims/claimant", self.claimant)]

    async def theater(self, request: web.Request) -> web.Response:
        vocabulary = await published_vocabulary(self.redis)
        counts = await self.archive.claim_counts(vocabulary.theaters)
        busiest = max(vocabulary.theaters, key=lambda t: counts[t])
        theater = request.query.get("theater", busiest)
        if theater not in vocabulary.theaters:
            raise web.HTTPNotFound(text=f"no theater {theater!r}")
        stance = request.query.get("stance") or None
        if stance is not None and stance not in vocabulary.stances:
            raise web.HTTPNotFound(text=f"no stance {stance!r}")
        page = _page(request)
        rows, total = await self.archive.claims(
            theater=theater, stance=stance, offset=(page - 1) * PAGE_SIZE, count=PAGE_SIZE
        )
        return render(request, "claims.html.j2", {
            "theater": theater,
            "stance": stance,
            "rows": rows,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "counts": counts,
            "theaters": vocabulary.theaters,
            "stances": vocabulary.stances,
            "claimants": await self.archive.claimants(),
        })  # fmt: skip

    async def claimant(self, request: web.Request) -> web.Response:
        name = request.query.get("name", "")
        shown = await self.archive.claimant_name(name)
        if shown is None:
            raise web.HTTPNotFound(text="no claims of that claimant are kept")
        page = _page(request)
        rows, total = await self.archive.claims(
            claimant=name, offset=(page - 1) * PAGE_SIZE, count=PAGE_SIZE
        )
        known = (await published_vocabulary(self.redis)).stances
        stances = dict.fromkeys([*known, *(row.claim.stance for row in rows)])  # known first
        by_stance = {stance: [r for r in rows if r.claim.stance == stance] for stance in stances}
        return render(request, "claimant.html.j2", {
            "name": shown,
            "query_name": name,
            "by_stance": {s: r for s, r in by_stance.items() if r},
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
        })  # fmt: skip
