"""WebSub (W3C) push: subscribe to the hub a feed advertises, verify intent, accept content.

Subscriptions are kept in Redis (``vigil:poller:websub:<source>``) so that any replica can
answer the hub. Pushed content must carry a valid ``X-Hub-Signature`` HMAC of the body with
the subscription's secret; anything else is acknowledged (as the spec asks) and ignored.
Polling continues meanwhile, so a hub that stops pushing costs latency, never articles.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from redis.asyncio import Redis

from services.poller import metrics
from services.poller.adapters.base import ParseError
from services.poller.fetch import Fetcher, FetchError
from services.poller.settings import PollerSettings
from services.poller.sources import Source
from shared.hashes import read_hash
from shared.logging import get_logger

log = get_logger("poller")

PushHandler = Callable[[str, bytes, dict[str, str]], Awaitable[int]]
ROUTE = "/websub/{source}"
_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384,
               "sha512": hashlib.sha512}  # fmt: skip


def subscription_key(source_id: str) -> str:
    return f"vigil:poller:websub:{source_id}"


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` (``sha256=<hex>``) is the HMAC of ``body`` under ``secret``."""
    if not header or "=" not in header:
        return False
    method, _, digest = header.partition("=")
    algorithm = _ALGORITHMS.get(method.strip().lower())
    if algorithm is None:
        return False
    expected = hmac.new(secret.encode(), body, algorithm).hexdigest()
    return hmac.compare_digest(expected, digest.strip().lower())


class WebSub:
    """The subscriber side of WebSub for every source whose feed names a hub."""

    def __init__(
        self, settings: PollerSettings, redis: Redis, fetcher: Fetcher, on_push: PushHandler
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.fetcher = fetcher
        self.on_push = on_push

    def setup_app(self, app: web.Application) -> None:
        app.router.add_get(ROUTE, self.verify)
        app.router.add_post(ROUTE, self.deliver)

    def callback(self, source_id: str) -> str | None:
        base = self.settings.websub_callback_url
        return f"{base.rstrip('/')}/websub/{source_id}" if base else None

    async def ensure(self, source: Source, *, hub: str, topic: str) -> None:
        """Subscribe (or renew) unless an active subscription to this hub and topic is current."""
        callback = self.callback(source.id)
        if callback is None:
            return
        key = subscription_key(source.id)
        current = await read_hash(self.redis, key)
        renew_at = float(current.get("expires", 0)) - self.settings.websub_lease_seconds / 10
        pending_since = float(current.get("requested", 0))
        if current.get("hub") == hub and current.get("topic") == topic:
            if current.get("state") == "active" and time.time() < renew_at:
                return
            if current.get("state") == "pending" and time.time() - pending_since < 300:
                return
        secret = secrets.token_hex(32)
        await self.redis.hset(key, mapping={
            "hub": hub, "topic": topic, "secret": secret, "state": "pending",
            "requested": time.time(),
        })  # fmt: skip
        form = {
            "hub.mode": "subscribe",
            "hub.topic": topic,
            "hub.callback": callback,
            "hub.secret": secret,
            "hub.lease_seconds": str(self.settings.websub_lease_seconds),
        }
        try:
            status = await self.fetcher.post_form(hub, form)
        except FetchError as error:
            status, reason = 0, str(error)
        else:
            reason = f"HTTP {status}"
        if 200 <= status < 300:
            metrics.POLLER_WEBSUB.labels("subscribed").inc()
            log.info("websub.subscribe_requested", source=source.id, hub=hub, topic=topic)
        else:
            metrics.POLLER_WEBSUB.labels("subscribe_failed").inc()
            log.warning("websub.subscribe_failed", source=source.id, hub=hub, error=reason)

    async def verify(self, request: web.Request) -> web.Response:
        """The hub's verification of intent: echo the challenge for a subscription we asked for."""
        source_id = request.match_info["source"]
        query = request.query
        mode = query.get("hub.mode", "")
        current = await read_hash(self.redis, subscription_key(source_id))
        if mode == "denied":
            await self.redis.hset(subscription_key(source_id), "state", "denied")
            log.warning("websub.denied", source=source_id, reason=query.get("hub.reason", ""))
            return web.Response(status=200)
        if mode != "subscribe" or not current or current.get("topic") != query.get("hub.topic"):
            metrics.POLLER_WEBSUB.labels("refused").inc()
            log.warning("websub.verification_refused", source=source_id, mode=mode)
            return web.Response(status=404)
        lease = int(query.get("hub.lease_seconds") or self.settings.websub_lease_seconds)
        expires = time.time() + lease
        await self.redis.hset(
            subscription_key(source_id), mapping={"state": "active", "expires": expires}
        )
        metrics.POLLER_WEBSUB.labels("verified").inc()
        log.info("websub.verified", source=source_id, lease_seconds=lease)
        return web.Response(text=query.get("hub.challenge", ""))

    async def deliver(self, request: web.Request) -> web.Response:
        """Content distribution: a signed copy of the updated feed."""
        source_id = request.match_info["source"]
        current = await read_hash(self.redis, subscription_key(source_id))
        if current.get("state") != "active":
            return web.Response(status=410)
        if (request.content_length or 0) > self.settings.max_body_bytes:
            return web.Response(status=413)
        body = await request.content.read(self.settings.max_body_bytes + 1)
        if len(body) > self.settings.max_body_bytes:
            return web.Response(status=413)
        if not signature_valid(current["secret"], body, request.headers.get("X-Hub-Signature")):
            metrics.POLLER_WEBSUB.labels("bad_signature").inc()
            log.warning("websub.bad_signature", source=source_id)
            return web.Response(status=202)  # acknowledged and ignored, as the spec requires
        headers = {"content-type": request.headers.get("Content-Type", "")}
        try:
            new = await self.on_push(source_id, body, headers)
        except ParseError as error:
            log.warning("websub.parse_failed", source=source_id, error=str(error))
            return web.Response(status=202)
        metrics.POLLER_WEBSUB.labels("delivered").inc()
        log.info("websub.delivered", source=source_id, new=new)
        return web.Response(status=202)
