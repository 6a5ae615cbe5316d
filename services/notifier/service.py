"""The notifier service: alerts in, one delivery per matching subscriber and story out.

Two halves share Redis and nothing else:

- the alert handler matches each alert against the subscriptions and *schedules* a job per
  subscriber (atomically with the subscriber's idempotency key), then the entry is acked;
- the dispatcher claims due jobs from the durable schedule, sends them, and reschedules
  failures with backoff or dead-letters them. A job keeps its id, the ``webhook-id``,
  through every retry, restart and replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TextIO

import structlog
from aiohttp import web
from redis.asyncio import Redis

from services.notifier.admin import AdminApi
from services.notifier.channels.base import Channel, SendResult
from services.notifier.channels.chat import ChatChannel
from services.notifier.channels.console import ConsoleChannel
from services.notifier.channels.email import EmailChannel
from services.notifier.channels.webhook import WebhookChannel
from services.notifier.jobs import (
    Attempt,
    DeliveryJob,
    JobQueue,
    digest_job,
    forget,
    job_id,
    retry_delay,
    story_key,
)
from services.notifier.store import SubscriptionStore
from services.notifier.subscriptions import Subscription
from shared import metrics
from shared.aio import sleep_or_stop
from shared.bus import TRANSIENT_ERRORS, Delivery, StreamBus
from shared.models import Alert
from shared.settings import Settings
from shared.streams import ALERTS, DELIVERIES, NOTIFIER_GROUP, encode

log = structlog.get_logger(component="notifier")

Clock = Callable[[], float]


def default_channels(settings: Settings, console: TextIO | None) -> dict[str, Channel]:
    """One instance of every channel, configured from settings."""
    return {
        "webhook": WebhookChannel(
            timeout_seconds=settings.notifier.webhook_timeout_seconds,
            allow_private=settings.allow_private_targets,
        ),
        "email": EmailChannel(settings.smtp, unsubscribe_url=settings.notifier.unsubscribe_url),
        "chat": ChatChannel(),
        "console": ConsoleChannel(console),
    }


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
        self.config = settings.notifier
        self.clock = clock
        self.bus = StreamBus(redis, settings.bus)
        self.queue = JobQueue(redis, settings.notifier)
        self.store = SubscriptionStore(redis)
        self.file_subscriptions = list(subscriptions)
        self.channels = dict(channels or default_channels(settings, console))
        self.lease_seconds = (
            max(self.config.webhook_timeout_seconds, settings.smtp.timeout_seconds)
            + self.config.lease_margin_seconds
        )
        self.alerts = self.bus.consumer(
            stream=ALERTS,
            group=NOTIFIER_GROUP,
            name=settings.consumer_name,
            model=Alert,
            handler=self.handle_alert,
        )
        self.replays = self.bus.consumer(
            stream=DELIVERIES,
            group=NOTIFIER_GROUP,
            name=settings.consumer_name,
            model=DeliveryJob,
            handler=self.handle_replay,
        )
        self.admin = AdminApi(self)
        self._wake = asyncio.Event()
        self._subscriptions: list[Subscription] = []
        self._version = -1
        self._in_flight: set[asyncio.Task[None]] = set()

    def is_ready(self) -> bool:
        return self.alerts.ready

    def setup_app(self, app: web.Application) -> None:
        """Mount the admin API on the service's HTTP server."""
        self.admin.setup(app)

    def wake(self) -> None:
        """Look for due jobs now (a new job was scheduled, or a test moved the clock)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        await self._load_file_subscriptions(stop)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.alerts.run(stop))
                group.create_task(self.replays.run(stop))
                group.create_task(self._dispatch(stop))
        finally:
            for channel in self.channels.values():
                await channel.close()

    async def _load_file_subscriptions(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                await self.store.sync_file(self.file_subscriptions)
            except TRANSIENT_ERRORS as error:
                attempt += 1
                log.warning("notifier.redis_error", error=str(error), attempt=attempt)
                await sleep_or_stop(stop, min(5.0, 0.1 * 2**attempt))
            else:
                log.info("notifier.subscriptions_loaded", count=len(self.file_subscriptions))
                return

    async def subscriptions(self) -> list[Subscription]:
        """The current subscriptions, re-read when another replica or the API changed them."""
        version = await self.store.version()
        if version != self._version:
            self._subscriptions = await self.store.all()
            self._version = version
        return self._subscriptions

    # Scheduling --------------------------------------------------------------------------

    async def handle_alert(self, alert: Alert, _: Delivery) -> None:
        """Schedule one job per matching subscriber; already-seen stories are corroboration."""
        now = self.clock()
        story = story_key(alert)
        scheduled = 0
        for subscription in await self.subscriptions():
            if not subscription.enabled or not subscription.filters.matches(alert):
                continue
            if subscription.mode == "digest":
                period = subscription.digest_minutes * 60
                window = int(now // period)
                digest = digest_job(subscription.id, window, now)
                created = await self.queue.add_to_digest(
                    subscription.id, alert, (window + 1) * period, digest
                )
            else:
                job = DeliveryJob(
                    id=job_id(subscription.id, story),
                    subscription_id=subscription.id,
                    kind="alert",
                    alerts=[alert],
                    story_id=story,
                    created_at=now,
                )
                created = await self.queue.schedule_once(job, story, now)
            if created:
                scheduled += 1
            else:
                metrics.DELIVERIES.labels(subscription.channel, "skipped_duplicate").inc()
                log.info(
                    "notifier.corroboration",
                    subscription=subscription.id,
                    story=story,
                    alert_id=alert.alert_id,
                    source=alert.article.source,
                )
        if scheduled:
            self.wake()
        log.debug("notifier.alert_scheduled", alert_id=alert.alert_id, jobs=scheduled)

    async def handle_replay(self, job: DeliveryJob, _: Delivery) -> None:
        """A dead-lettered job put back by ``vigil dlq replay``: same id, attempts from zero."""
        await self.queue.put(job.model_copy(update={"attempts": 0}), self.clock())
        log.info("notifier.job_replayed", job_id=job.id, subscription=job.subscription_id)
        self.wake()

    async def send_test(self, subscription: Subscription, alert: Alert) -> str:
        """Schedule a test event for one subscriber now; returns its job id."""
        now = self.clock()
        job = DeliveryJob(
            id=job_id(subscription.id, f"test:{now}"),
            subscription_id=subscription.id,
            kind="test",
            alerts=[alert],
            created_at=now,
        )
        await self.queue.put(job, now)
        self.wake()
        return job.id

    # Dispatching -------------------------------------------------------------------------

    async def _dispatch(self, stop: asyncio.Event) -> None:
        """Claim due jobs and deliver them, at most ``concurrency`` at a time."""
        failures = 0
        while not stop.is_set():
            self._wake.clear()
            free = self.config.concurrency - len(self._in_flight)
            if free <= 0:
                # Every slot is busy: a finishing send frees one and wakes this loop. Waiting
                # here (never spinning) lets the sends and the signal handlers run.
                await self._wait_wake_or_stop(stop)
                continue
            try:
                jobs = await self.queue.claim_due(self.clock(), self.lease_seconds, free)
                failures = 0
            except TRANSIENT_ERRORS as error:
                failures += 1
                log.warning("notifier.redis_error", error=str(error), attempt=failures)
                await sleep_or_stop(stop, min(5.0, 0.1 * 2**failures))
                continue
            for job in jobs:
                task = asyncio.create_task(self._deliver_safely(job))
                self._in_flight.add(task)
                task.add_done_callback(self._done)
            if len(jobs) < free:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wait_wake_or_stop(stop), self.config.poll_interval_seconds
                    )
        await self._drain()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self.wake()  # a slot is free

    async def _wait_wake_or_stop(self, stop: asyncio.Event) -> None:
        waits = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()

    async def _drain(self) -> None:
        """Give in-flight sends the grace period; unfinished jobs stay leased and come back."""
        if not self._in_flight:
            return
        _, pending = await asyncio.wait(
            self._in_flight, timeout=self.settings.bus.shutdown_grace_seconds
        )
        for task in pending:
            task.cancel()
        if pending:
            log.warning("notifier.drain_timeout", unfinished=len(pending))

    async def _deliver_safely(self, job: DeliveryJob) -> None:
        structlog.contextvars.bind_contextvars(job_id=job.id, subscription=job.subscription_id)
        try:
            await self.deliver(job)
        except TRANSIENT_ERRORS as error:
            # The job stays in the schedule under its lease and is tried again after it.
            log.warning("notifier.deliver_interrupted", error=str(error))

    async def deliver(self, job: DeliveryJob) -> None:
        """One attempt at a claimed job, ending delivered, rescheduled or dead-lettered."""
        subscription = await self.store.get(job.subscription_id)
        if subscription is None or not subscription.enabled:
            why = "deleted" if subscription is None else "disabled"
            await self._dead_letter(
                job, f"subscription_{why}: {job.subscription_id} is {why}", subscription
            )
            return
        now = self.clock()
        state = await self.store.state(subscription.id)
        if state.circuit_open_until > now:
            await self.queue.put(job, state.circuit_open_until)
            metrics.DELIVERIES.labels(subscription.channel, "circuit_open").inc()
            return
        limit = subscription.rate_limit
        if limit is not None and not await self.store.take_rate_slot(subscription.id, limit, now):
            await self.queue.put(job, (now // 60 + 1) * 60)
            metrics.DELIVERIES.labels(subscription.channel, "rate_limited").inc()
            log.info("notifier.rate_limited", limit=limit)
            return
        alerts = await self.queue.digest_alerts(job)
        if not alerts:
            await self.queue.finish(job)
            return
        result = await self._send(subscription, job, alerts)
        await self._settle(subscription, job, alerts, result)

    async def _send(
        self, subscription: Subscription, job: DeliveryJob, alerts: list[Alert]
    ) -> SendResult:
        channel = self.channels[subscription.channel]
        started = time.perf_counter()
        try:
            return await channel.send(subscription, job, alerts)
        except Exception as error:
            log.exception("notifier.channel_crashed", channel=subscription.channel)
            return SendResult("retry", f"{type(error).__name__}: {error}"[:300])
        finally:
            elapsed = time.perf_counter() - started
            metrics.DELIVERY_SECONDS.labels(subscription.channel).observe(elapsed)
            metrics.STAGE_SECONDS.labels("deliver").observe(elapsed)

    async def _settle(
        self, subscription: Subscription, job: DeliveryJob, alerts: list[Alert], result: SendResult
    ) -> None:
        now = self.clock()
        channel = subscription.channel
        if result.outcome == "delivered":
            await self.queue.finish(job)
            await self.store.record_success(subscription.id, now)
            metrics.DELIVERIES.labels(channel, "delivered").inc()
            for alert in alerts:
                metrics.END_TO_END_SECONDS.labels(channel).observe(
                    max(0.0, now - alert.article.fetched_at.timestamp())
                )
            log.info(
                "notifier.delivered",
                channel=channel,
                kind=job.kind,
                alerts=len(alerts),
                attempts=job.attempts + 1,
            )
            return
        attempt = Attempt(at=now, outcome=result.outcome, detail=result.detail)
        failed = job.model_copy(
            update={
                "attempts": job.attempts + 1,
                "alerts": alerts,
                "history": [*job.history, attempt],
            }
        )
        consecutive = await self.store.record_failure(subscription.id, now, result.detail)
        if result.outcome == "gone":
            await self.store.disable(subscription.id, f"target answered {result.detail}")
            metrics.DELIVERIES.labels(channel, "disabled").inc()
            log.warning("notifier.subscription_disabled", reason=result.detail)
            await self._dead_letter(failed, f"gone: {result.detail}", subscription)
            return
        if result.outcome == "rejected":
            await self._dead_letter(failed, f"rejected: {result.detail}", subscription)
            return
        if failed.attempts > len(self.config.retry_schedule_seconds):
            await self._dead_letter(
                failed,
                f"max_attempts: failed {failed.attempts} times; last: {result.detail}",
                subscription,
            )
            return
        delay = retry_delay(self.config, failed.attempts, result.retry_after)
        if consecutive >= self.config.circuit_failures:
            # No attempt while the circuit is open: the retry waits for it to close.
            delay = max(delay, self.config.circuit_open_seconds)
            await self.store.open_circuit(subscription.id, now + self.config.circuit_open_seconds)
            log.warning(
                "notifier.circuit_opened",
                failures=consecutive,
                seconds=self.config.circuit_open_seconds,
            )
        await self.queue.put(failed, now + delay)
        metrics.DELIVERIES.labels(channel, "retry").inc()
        metrics.DELIVERY_RETRIES.labels(channel).inc()
        log.warning(
            "notifier.retry_scheduled",
            channel=channel,
            attempts=failed.attempts,
            delay_seconds=round(delay, 3),
            detail=result.detail,
        )

    async def _dead_letter(
        self, job: DeliveryJob, reason: str, subscription: Subscription | None
    ) -> None:
        """Keep the job with its history in ``vigil:dead``; ``vigil dlq replay`` resends it."""
        await self.bus.dead_letter(
            stream=DELIVERIES,
            group=NOTIFIER_GROUP,
            entry_id=job.id,
            fields=encode(job),
            reason=reason,
            deliveries=job.attempts,
            ack=False,
            also=partial(forget, job=job),
        )
        channel = subscription.channel if subscription else "unknown"
        metrics.DELIVERIES.labels(channel, "dead_lettered").inc()
        if subscription is not None:
            await self.store.record_dead_letter(subscription.id)
