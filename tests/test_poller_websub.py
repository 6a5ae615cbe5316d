"""WebSub: subscribe to the advertised hub, verify intent, accept only signed content."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession, web
from redis.asyncio import Redis

from services.poller.sources import Source
from services.settings import Settings
from tests.helpers import local_server, wait_for
from tests.poller_support import poller_settings, published, rss, running


class Hub:
    """A hub that records subscription requests."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append({k: str(v) for k, v in (await request.post()).items()})
        return web.Response(status=202)


@pytest.fixture
async def hub_and_feed() -> AsyncIterator[tuple[Hub, str]]:
    hub = Hub()
    app = web.Application()
    app.router.add_post("/hub", hub.handle)
    async with local_server(app) as base:
        feed = rss([("Polled item", "http://w.test/1", "1")]).replace(
            "<channel>",
            '<channel xmlns:atom="http://www.w3.org/2005/Atom">'
            f'<atom:link rel="hub" href="{base}/hub"/>'
            f'<atom:link rel="self" href="{base}/feed.xml"/>',
        )

        async def serve_feed(_: web.Request) -> web.Response:
            return web.Response(text=feed, content_type="application/rss+xml")

        app2 = web.Application()
        app2.router.add_get("/feed.xml", serve_feed)
        async with local_server(app2) as feed_base:
            yield hub, f"{feed_base}/feed.xml"


async def test_subscribe_verify_and_signed_push(
    settings: Settings, redis: Redis, hub_and_feed: tuple[Hub, str]
) -> None:
    hub, feed_url = hub_and_feed
    config_base = "http://127.0.0.1"
    sources = [Source(id="pushy", url=feed_url, interval=60)]
    app = web.Application()
    config = poller_settings(settings, websub_callback_url=f"{config_base}/cb")
    async with running(config, redis, sources) as service:
        service.setup_app(app)
        async with local_server(app) as base, ClientSession() as http:
            await wait_for(lambda: hub.requests, message="a subscription request")
            request = hub.requests[0]
            assert request["hub.mode"] == "subscribe"
            assert request["hub.callback"] == f"{config_base}/cb/websub/pushy"
            assert request["hub.topic"].endswith("/feed.xml")
            callback = f"{base}/websub/pushy"
            # Verification of intent: wrong topic refused, right topic echoed.
            async with http.get(callback, params={"hub.mode": "subscribe", "hub.topic": "x",
                                                  "hub.challenge": "c1"}) as bad:  # fmt: skip
                assert bad.status == 404
            params = {"hub.mode": "subscribe", "hub.topic": request["hub.topic"],
                      "hub.challenge": "c2", "hub.lease_seconds": "600"}  # fmt: skip
            async with http.get(callback, params=params) as good:
                assert good.status == 200
                assert await good.text() == "c2"
            pushed = rss([("Pushed item", "http://w.test/2", "2")]).encode()
            forged = "sha256=" + "0" * 64
            async with http.post(callback, data=pushed,
                                 headers={"X-Hub-Signature": forged}) as resp:  # fmt: skip
                assert resp.status == 202
            signature = hmac.new(request["hub.secret"].encode(), pushed, hashlib.sha256)
            headers = {"X-Hub-Signature": f"sha256={signature.hexdigest()}",
                       "Content-Type": "application/rss+xml"}  # fmt: skip
            async with http.post(callback, data=pushed, headers=headers) as resp:
                assert resp.status == 202
            titles = [a.title for a in await published(redis)]
    assert titles == ["Polled item", "Pushed item"]  # the forged push was ignored
