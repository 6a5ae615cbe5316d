"""Helpers of the notifier tests: a scripted webhook receiver, a fake clock, a running service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from redis.asyncio import Redis
from standardwebhooks import Webhook

from services.notifier.service import NotifierService
from services.notifier.subscriptions import Subscription
from services.settings import Settings
from shared.bus import StreamBus
from shared.streams import ALERTS
from tests.helpers import background, wait_for

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
T0 = 1_800_000_000.0


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Receiver:
    """Records every request, verifies its signature, answers from a script (then 200);
    ``first_reply``, if set, answers the first request of each message (by ``webhook-id``);
    ``answer``, if set, answers (the endpoint's state changing with time)."""

    url: str = ""
    script: list[Reply] = field(default_factory=list)
    first_reply: Reply | None = None
    answer: Callable[[], Reply] | None = None
    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    secret: str = SECRET

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        payload = Webhook(self.secret).verify(body, headers)
        first = headers["webhook-id"] not in self.ids
        self.requests.append((headers, payload))
        if self.answer is not None:
            reply = self.answer()
        elif first and self.first_reply is not None:
            reply = self.first_reply
        else:
            reply = self.script.pop(0) if self.script else Reply()
        if reply.delay:
            await asyncio.sleep(reply.delay)  # a slow endpoint, not synchronisation
        return web.Response(status=reply.status, headers=reply.headers)

    @property
    def ids(self) -> list[str]:
        return [headers["webhook-id"] for headers, _ in self.requests]


@dataclass
class ChatEndpoint:
    """A chat service as Apprise's ``json://`` plugin reaches it: records each message."""

    status: int = 200
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.Response(status=self.status)


def webhook(receiver: Receiver, sub_id: str = "analyst", **extra: Any) -> Subscription:
    return Subscription.model_validate(
        {"id": sub_id, "channel": "webhook", "url": receiver.url, "secret": SECRET, **extra}
    )


def fast(settings: Settings, **notifier: Any) -> Settings:
    config = settings.notifier.model_copy(
        update={"retry_schedule_seconds": [5, 300, 1800], "retry_jitter": 0.0,
                "webhook_timeout_seconds": 1.0, "lease_margin_seconds": 0.5,
                "poll_interval_seconds": 0.05, **notifier}
    )  # fmt: skip
    return settings.model_copy(update={"notifier": config})


@asynccontextmanager
async def running(
    settings: Settings, redis: Redis, subscriptions: Iterable[Subscription], clock: FakeClock
) -> AsyncIterator[NotifierService]:
    service = NotifierService(settings, redis, list(subscriptions), clock=clock)
    async with background(service):
        await wait_for(service.is_ready, message="notifier ready")
        yield service


async def publish(redis: Redis, *alerts: Any) -> None:
    bus = StreamBus(redis)
    for alert in alerts:
        await bus.publish(ALERTS, alert)


async def advance(clock: FakeClock, service: NotifierService, seconds: float) -> None:
    clock.now += seconds
    service.wake()


async def dead_letters(redis: Redis) -> list[Any]:
    return [letter for _, letter in await StreamBus(redis).dead_letters()]
