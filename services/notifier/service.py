"""The notifier service: alerts in, one delivery per matching subscriber and story out.

Three parts share Redis and nothing else:

- :class:`~services.notifier.intake.Intake` turns each alert into a durable job per matching
  subscriber (atomically with the subscriber's idempotency key), then the entry is acked;
- :class:`~services.notifier.dispatcher.Dispatcher` claims due jobs and sends them;
- :func:`~services.notifier.policy.decide` says what becomes of each job: sent, held, folded,
  retried, dead-lettered or its subscription disabled. A job keeps its id, the
  ``webhook-id``, through every retry, restart and replay.

Words, each with one meaning in the notifier's code:

- **alert**: a flagged article, from ``vigil:alerts``;
- **job** (:class:`~services.notifier.jobs.Job`): one message owed to one subscriber
  (an alert, a digest, an overflow notice or a test event), durable until it is settled;
- **send**: one try of a job through its channel (``Channel.send``); an **attempt** is a
  send as recorded, with its outcome (:class:`~services.notifier.channels.base.SendResult`);
- **delivered**: the outcome of an attempt that the endpoint accepted;
- **delivery**: a job's whole way to its subscriber, every attempt included, whatever its
  end: the *delivery policy* rules it, the *delivery log* lists its attempts, and the metric
  ``vigil_deliveries_total`` counts how the dispatcher's turns ended;
- **dispatch**: the dispatcher's turn with one claimed job (ask the policy, send, settle);
- **endpoint state** (:class:`~services.notifier.state.EndpointState`): a subscriber's
  attempts by outcome, circuit and pause;
- **replay**: a dead-lettered job put back by ``vigil dlq replay``: it comes back through
  the stream :data:`shared.streams.REPLAYS` (``vigil:deliveries``, named before this rule).

The bus's :class:`~shared.consumer.Receipt` (where a stream entry came from, with Redis's
delivery count) belongs to the bus, not to this vocabulary.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import TextIO

from aiohttp import web
from redis.asyncio import Redis

from services.notifier import metrics
from services.notifier.admin import AdminApi
from services.notifier.channels.base import Channel
from services.notifier.channels.registry import CHANNELS, job_queue, make_channels
from services.notifier.dispatcher import Dispatcher
from services.notifier.intake import Intake
from services.notifier.jobs import Clock, Job
from services.notifier.policy import DEAD_LETTER_REASONS
from services.notifier.store import SubscriptionStore
from services.notifier.subscriptions import Subscription
from services.settings import Settings
from shared.bus import StreamBus
from shared.models import Alert
from shared.streams import ALERTS, NOTIFIER_GROUP, REPLAYS


class NotifierService:
    """Match alerts to subscriptions and deliver them durably, once per subscriber and story."""

    name = "notifier"

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        subscriptions: Sequence[Subscription] = (),
        *,
        clock: Clock = time.time,
        console: TextIO | None = None,
        channels: Mapping[str, Channel] | None = None,
    ) -> None:
        self.settings = settings
        self.bus = StreamBus(redis, settings.bus)
        self.queue = job_queue(redis, settings)
        self.store = SubscriptionStore(redis)
        self.file_subscriptions = list(subscriptions)
        self.channels = {**make_channels(settings, console), **(channels or {})}
        self.dispatcher = Dispatcher(
            settings,
            queue=self.queue,
            store=self.store,
            bus=self.bus,
            channels=self.channels,
            clock=clock,
        )
        self.intake = Intake(self.queue, self.store, clock=clock, wake=self.dispatcher.wake)
        self.alerts = self.bus.consumer(
            stream=ALERTS,
            group=NOTIFIER_GROUP,
            name=settings.consumer_name,
            model=Alert,
            handler=self.intake.handle_alert,
        )
        self.replays = self.bus.consumer(
            stream=REPLAYS,
            group=NOTIFIER_GROUP,
            name=settings.consumer_name,
            model=Job,
            handler=self.intake.handle_replay,
        )
        self.admin = AdminApi(self)
        metrics.prime_deliveries(CHANNELS, REPLAYS, DEAD_LETTER_REASONS)

    def is_ready(self) -> bool:
        return self.alerts.ready

    def setup_app(self, app: web.Application) -> None:
        """Mount the admin API on the service's HTTP server."""
        self.admin.setup(app)

    def wake(self) -> None:
        """Look for due jobs now (a new job was scheduled, or a test moved the clock)."""
        self.dispatcher.wake()

    async def send_test(self, subscription: Subscription, alert: Alert) -> str:
        """Schedule a test event for one subscriber now; returns its job id."""
        return await self.intake.send_test(subscription, alert)

    async def run(self, stop: asyncio.Event) -> None:
        await self.intake.load_file_subscriptions(self.file_subscriptions, stop)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.alerts.run(stop))
                group.create_task(self.replays.run(stop))
                group.create_task(self.dispatcher.run(stop))
        finally:
            for channel in self.channels.values():
                await channel.close()
