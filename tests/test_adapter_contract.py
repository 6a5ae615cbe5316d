"""The contract every source adapter keeps, run against each adapter of the registry.

Each registered source type needs a :class:`Sample` here: a document it reads, served by a
real aiohttp server (and read from a file), with the links its entries hold. An adapter
registered without one fails these tests. The contract: new entries come back (with the
WebSub hub the adapter follows); the validators of one poll make the next "not modified",
and the poller then publishes nothing twice; a malformed body is a ``ParseError`` with a
message and an oversized one a ``too_large`` ``FetchError``, never another exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest
from aiohttp import web
from redis.asyncio import Redis

from services.poller.adapters.base import Hub, ParseError, Polled, Tools
from services.poller.adapters.registry import ADAPTERS
from services.poller.cli import sources
from services.poller.fetch import Fetcher, FetchError
from services.poller.pool import ParsePool
from services.poller.sources import Source
from services.poller.state import SourceState
from services.settings import Settings
from tests.helpers import local_server, wait_for
from tests.poller_support import GDELT, SITEMAP, poller_settings, published, running, state

HUB = "https://hub.test/"
ETAG = '"v1"'
LAST_MODIFIED = "Tue, 24 Nov 2026 08:00:00 GMT"
NOTHING = SourceState()


@dataclass(frozen=True)
class Sample:
    """A document of the adapter's kind, the links of its entries, the hub it should give."""

    body: bytes
    links: list[str]
    content_type: str = "application/xml"
    hub: Hub | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    """Other fields of a source of this type."""

    @property
    def suffix(self) -> str:
        return ".json" if "json" in self.content_type else ".xml"


RSS_WITH_HUB = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>
 <title>Wire</title><link>https://wire.test/</link><description>d</description>
 <atom:link rel="hub" href="{HUB}"/><atom:link rel="self" href="https://wire.test/feed.xml"/>
 <item><title>Turkish drones strike</title><link>https://wire.test/1</link>
  <guid>https://wire.test/1</guid><pubDate>Tue, 24 Nov 2026 07:00:00 GMT</pubDate></item>
 <item><title>Lira steadies</title><link>https://wire.test/2</link></item>
</channel></rss>""".encode()

RSS_1_0 = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
 <channel rdf:about="https://rdf.test/"><title>RDF wire</title><link>https://rdf.test/</link>
  <description>d</description></channel>
 <item rdf:about="https://rdf.test/1"><title>One</title><link>https://rdf.test/1</link></item>
 <item rdf:about="https://rdf.test/2"><title>Two</title><link>https://rdf.test/2</link></item>
</rdf:RDF>"""

ATOM_WITH_HUB = f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom wire</title><id>urn:wire</id>
 <updated>2026-11-24T08:00:00Z</updated>
 <link rel="hub" href="{HUB}"/><link rel="self" href="https://atom.test/feed"/>
 <entry><id>urn:wire:1</id><title>One</title><link href="https://atom.test/1"/>
  <updated>2026-11-24T08:00:00Z</updated></entry>
</feed>""".encode()

JSON_FEED = b"""{"version": "https://jsonfeed.org/version/1.1", "title": "J",
 "items": [{"id": "1", "url": "https://j.test/1", "title": "One",
            "date_published": "2026-11-24T08:00:00Z"},
           {"id": "2", "url": "https://j.test/2", "title": "Two"}]}"""

SAMPLES: dict[str, Sample] = {
    "auto": Sample(
        RSS_WITH_HUB,
        ["https://wire.test/1", "https://wire.test/2"],
        hub=Hub(HUB, "https://wire.test/feed.xml"),
    ),
    "rss": Sample(RSS_1_0, ["https://rdf.test/1", "https://rdf.test/2"]),
    "atom": Sample(ATOM_WITH_HUB, ["https://atom.test/1"], hub=Hub(HUB, "https://atom.test/feed")),
    "jsonfeed": Sample(JSON_FEED, ["https://j.test/1", "https://j.test/2"], "application/json"),
    "sitemap": Sample(SITEMAP, ["https://s.test/a"]),
    "gdelt": Sample(GDELT, ["https://g.test/x"], "application/json"),
    "websub": Sample(
        RSS_WITH_HUB,
        ["https://wire.test/1", "https://wire.test/2"],
        hub=Hub(HUB, "https://wire.test/feed.xml"),
    ),
}

MALFORMED = {
    "empty": b"",
    "html page": b"<html><head><title>Welcome</title></head><body><h1>Hi</h1></body></html>",
    "binary": bytes(range(256)),
    "cut-off JSON": b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": ',
    "JSON array": b"[1, 2, 3]",
    "unknown XML": b'<?xml version="1.0"?><unknown><x/></unknown>',
}

KINDS = list(ADAPTERS)


def sample_of(kind: str) -> Sample:
    if kind not in SAMPLES:
        pytest.fail(f"the {kind!r} adapter has no contract sample: add one to SAMPLES")
    return SAMPLES[kind]


def contract_source(kind: str, url: str, **extra: Any) -> Source:
    fields = {"id": "contract", "url": url, "type": kind, **sample_of(kind).fields, **extra}
    return Source.model_validate(fields)


class DocumentServer:
    """Serves one body with an ETag and a Last-Modified date; 304 when either still matches."""

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.content_type = content_type
        self.not_modified = 0

    async def handle(self, request: web.Request) -> web.Response:
        validators = {"ETag": ETAG, "Last-Modified": LAST_MODIFIED}
        if (
            request.headers.get("If-None-Match") == ETAG
            or request.headers.get("If-Modified-Since") == LAST_MODIFIED
        ):
            self.not_modified += 1
            return web.Response(status=304, headers=validators)
        return web.Response(body=self.body, content_type=self.content_type, headers=validators)


@asynccontextmanager
async def served(body: bytes, content_type: str) -> AsyncIterator[tuple[DocumentServer, str]]:
    server = DocumentServer(body, content_type)
    app = web.Application()
    app.router.add_get("/doc", server.handle)
    async with local_server(app) as base:
        yield server, f"{base}/doc"


@asynccontextmanager
async def located(transport: str, body: bytes, sample: Sample, folder: Path) -> AsyncIterator[str]:
    """The URL of ``body`` on a local HTTP server or in a file."""
    if transport == "file":
        path = folder / f"document{sample.suffix}"
        path.write_bytes(body)
        yield path.as_uri()
        return
    async with served(body, sample.content_type) as (_, url):
        yield url


@asynccontextmanager
async def adapter_tools(settings: Settings) -> AsyncIterator[Tools]:
    made = Tools(Fetcher(settings.poller), ParsePool(1), settings.poller)
    try:
        yield made
    finally:
        await made.fetcher.close()
        made.pool.close()


@pytest.fixture
async def tools(settings: Settings) -> AsyncIterator[Tools]:
    async with adapter_tools(settings) as made:
        yield made


@pytest.fixture(params=["http", "file"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def poll(tools: Tools, source: Source, state: SourceState = NOTHING) -> Polled:
    return await ADAPTERS[source.type].make(tools).poll(source, state)


def test_every_sample_is_of_a_registered_adapter() -> None:
    assert set(SAMPLES) <= set(ADAPTERS), set(SAMPLES) - set(ADAPTERS)


@pytest.mark.parametrize("kind", KINDS)
def test_the_registry_lists_it_as_a_source_type(kind: str) -> None:
    assert contract_source(kind, "https://x.test/doc").type == kind
    [option] = [p for p in sources.commands["test"].params if p.name == "kind"]
    assert isinstance(option.type, click.Choice)
    assert kind in option.type.choices


def test_an_unregistered_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown type 'telepathy'"):
        Source.model_validate({"id": "s", "url": "https://x.test/", "type": "telepathy"})


@pytest.mark.parametrize("kind", KINDS)
async def test_new_entries_come_back_and_their_validators_make_the_next_poll_not_modified(
    kind: str, transport: str, tools: Tools, tmp_path: Path
) -> None:
    sample = sample_of(kind)
    async with located(transport, sample.body, sample, tmp_path) as url:
        source = contract_source(kind, url)
        first = await poll(tools, source)
        known = SourceState(
            etag=first.validators.etag, last_modified=first.validators.last_modified
        )
        second = await poll(tools, source, known)
    assert first.modified
    assert [entry.link for entry in first.entries] == sample.links
    assert first.url == url
    assert first.hub == sample.hub
    assert not second.modified
    assert not second.entries


@pytest.mark.parametrize("kind", KINDS)
async def test_the_poller_publishes_each_entry_once(
    kind: str, settings: Settings, redis: Redis
) -> None:
    sample = sample_of(kind)
    async with served(sample.body, sample.content_type) as (server, url):
        source = contract_source(kind, url, interval=0.1)
        async with running(poller_settings(settings), redis, [source]):

            async def unchanged() -> bool:
                return (await state(redis, "contract")).last_outcome == "not_modified"

            await wait_for(unchanged, message="a poll with the kept validators")
    assert server.not_modified >= 1
    assert len(await published(redis)) == len(sample.links)
    assert (await state(redis, "contract")).items_seen == len(sample.links)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("body", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_a_malformed_body_is_a_parse_error(kind: str, body: bytes, tools: Tools) -> None:
    sample = sample_of(kind)
    async with served(body, sample.content_type) as (_, url):
        with pytest.raises(ParseError) as refused:
            await poll(tools, contract_source(kind, url))
    assert str(refused.value)


@pytest.mark.parametrize("kind", KINDS)
async def test_an_oversized_body_is_too_large(
    kind: str, transport: str, settings: Settings, tmp_path: Path
) -> None:
    sample = sample_of(kind)
    oversized = sample.body + b" " * 2048
    async with (
        adapter_tools(poller_settings(settings, max_body_bytes=1024)) as tools,
        located(transport, oversized, sample, tmp_path) as url,
    ):
        with pytest.raises(FetchError) as refused:
            await poll(tools, contract_source(kind, url))
    assert refused.value.outcome == "too_large"
