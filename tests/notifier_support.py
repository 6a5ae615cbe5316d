"""Helpers of the notifier tests: a fake clock, a running service, subscriptions to the
receiver of ``tests/receivers.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis

from services.notifier.service import NotifierService
from services.notifier.subscriptions import Subscription
from services.settings import Settings
from shared.bus import StreamBus
from shared.streams import ALERTS
from tests.helpers import background, wait_for
from tests.receivers import SECRET, Receiver

T0 = 1_800_000_000.0


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


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
