"""Adapters whose source is one document at a URL (http, https or file), parsed on the pool.

Every format Vigil reads today is such a document: the adapter fetches it conditionally,
hands the body to the format's ``parse`` on the parse pool, and keeps the large-body slot
(:meth:`~services.poller.fetch.Fetcher.document`) through the parse only.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from services.poller import metrics
from services.poller.adapters.base import Hub, Polled, Tools
from services.poller.adapters.file import is_file_url, read_file
from services.poller.entries import Feed
from services.poller.fetch import Fetched, Validators
from shared.metrics import STAGE_SECONDS
from shared.models import utcnow

if TYPE_CHECKING:
    from services.poller.sources import Source
    from services.poller.state import SourceState

Parse = Callable[[bytes, str, Mapping[str, str]], Feed]
"""A format's parser: body, the URL it came from, the response headers → its entries."""


@asynccontextmanager
async def open_document(
    tools: Tools, source: Source, validators: Validators
) -> AsyncIterator[Fetched]:
    """The source's document (or its 304), from the web or a file, timed as the fetch stage."""
    started = time.perf_counter()
    async with _opened(tools, source, validators) as fetched:
        STAGE_SECONDS.labels("fetch").observe(time.perf_counter() - started)
        if fetched.status != 304:
            metrics.POLLER_FETCHED_BYTES.inc(len(fetched.body))
        yield fetched


@asynccontextmanager
async def _opened(tools: Tools, source: Source, validators: Validators) -> AsyncIterator[Fetched]:
    if is_file_url(source.url):
        yield await read_file(source.url, validators, max_bytes=tools.settings.max_body_bytes)
        return
    async with tools.fetcher.document(
        source.url, validators=validators, headers=source.headers
    ) as fetched:
        yield fetched


class DocumentAdapter:
    """Polls a document and reads it with ``parse``; gives the WebSub hub it names when
    ``follows_hubs``."""

    def __init__(self, tools: Tools, parse: Parse, *, follows_hubs: bool = False) -> None:
        self.tools = tools
        self.parse = parse
        self.follows_hubs = follows_hubs

    async def poll(self, source: Source, state: SourceState) -> Polled:
        async with open_document(self.tools, source, state.validators) as fetched:
            if fetched.status == 304:
                return Polled([], fetched.validators, url=fetched.url, modified=False)
            return await self.read(fetched)

    async def read(self, document: Fetched) -> Polled:
        """The entries of a document (polled, or pushed by a WebSub hub), parsed on the pool."""
        fetched_at = utcnow()
        feed = await self.tools.pool.run(
            "parse", self.parse, document.body, document.url, document.headers
        )
        hub = Hub(feed.hub, feed.topic or document.url) if self.follows_hubs and feed.hub else None
        return Polled(
            feed.entries, document.validators, hub, url=document.url, kind=feed.kind,
            warning=feed.warning, fetched_at=fetched_at,
        )  # fmt: skip
