"""The dispatcher: claim due jobs, send them, and carry out what the delivery policy decides.

At most ``concurrency`` sends are in flight; when every slot is busy the loop waits for one to
free (it never spins, so sends and signal handlers always run). Each claimed job is leased
for its channel's send timeout plus a margin: a replica that dies mid-send leaves it to be
retried when the lease ends, with the same id. What happens to a job (send, hold, fold into
an overflow message, retry, dead-letter, disable) is :func:`services.notifier.policy.decide`;
this module only reads the facts it needs and writes the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping

import structlog

from services.notifier import metrics
from services.notifier.channels.base import Channel, SendResult
from services.notifier.channels.registry import lease_seconds
from services.notifier.deliverylog import DeliveryLog
from services.notifier.jobs import Clock, Job
from services.notifier.policy import (
    RATE_LIMITED,
    WINDOW_PERIODS,
    DeadLetter,
    Decision,
    Delivered,
    Disable,
    Fold,
    Pause,
    Retry,
    Send,
    Subscriber,
    decide,
)
from services.notifier.queue import JobQueue
from services.notifier.store import SubscriptionStore, UnreadableSubscriptionError
from services.notifier.subscriptions import Subscription
from services.settings import Settings
from shared.aio import Wakeup, sleep_or_stop
from shared.bus import StreamBus
from shared.logging import get_logger
from shared.metrics import STAGE_SECONDS
from shared.resilience import TRANSIENT_ERRORS, Backoff, RetryInPlace, transient
from shared.streams import NOTIFIER_GROUP, REPLAYS, encode
from shared.taskpool import Task, TaskPool

log = get_logger("notifier")

GAUGE_INTERVAL_SECONDS = 5.0
# Attempts that say something about the endpoint's health (the breaker's window).
_COUNTED = {"delivered": False, "retry": True}


class Dispatcher:
    """Dispatches due jobs with bounded concurrency."""

    def __init__(
        self,
        settings: Settings,
        *,
        queue: JobQueue,
        store: SubscriptionStore,
        bus: StreamBus,
        channels: Mapping[str, Channel],
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.config = settings.notifier
        self.queue = queue
        self.store = store
        self.bus = bus
        self.channels = channels
        self.clock = clock
        self.in_flight: TaskPool[str] = TaskPool(self.config.concurrency, self._done)
        self.delivery_log = DeliveryLog(queue.redis, self.config.delivery_log_length)
        self._wake = Wakeup()

    def wake(self) -> None:
        """Look for due jobs now (a job was scheduled, a slot freed, a test moved the clock)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim due jobs and dispatch them until ``stop``; then give in-flight sends the grace."""
        gauges = asyncio.create_task(self._refresh_gauges(stop))
        try:
            await self._claim_loop(stop)
            await self._drain()
        finally:
            gauges.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gauges

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        backoff = Backoff(self.queue.redis, log, "notifier.redis_error")
        while not stop.is_set():
            free = self.in_flight.free
            if free <= 0:
                # Every slot is busy: a finishing send frees one and wakes this loop. Waiting
                # here (never spinning) lets the sends and the signal handlers run.
                await self._wake.wait(stop)
                continue
            try:
                jobs = await self.queue.claim_due(self.clock(), free)
                backoff.reset()
            except TRANSIENT_ERRORS as error:
                await backoff.pause(stop, error)
                continue
            for job in jobs:
                self.in_flight.spawn(job.id, self._dispatch_safely(job, stop))
            if len(jobs) < free:
                await self._wake.wait(stop, self.config.poll_interval_seconds)

    def _done(self, _task: Task, _job_id: str) -> None:
        self.wake()  # a slot is free

    async def _drain(self) -> None:
        """Give in-flight sends the grace period; unfinished jobs stay leased and come back."""
        unfinished = await self.in_flight.drain(self.settings.bus.shutdown_grace_seconds)
        if unfinished:
            log.warning("notifier.drain_timeout", unfinished=len(unfinished))

    async def update_gauges(self) -> None:
        """``vigil_notifier_due_jobs{channel}``: jobs due now, the backlog to scale on."""
        for channel, count in (await self.queue.due_counts(self.clock())).items():
            metrics.NOTIFIER_DUE_JOBS.labels(channel).set(count)

    async def _refresh_gauges(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.update_gauges()
            except TRANSIENT_ERRORS as error:
                log.warning("notifier.gauges_failed", error=str(error))
            await sleep_or_stop(stop, GAUGE_INTERVAL_SECONDS)

    async def _dispatch_safely(self, job: Job, stop: asyncio.Event) -> None:
        """Dispatch a claimed job; Redis away meanwhile (a failover), try its turn again in
        place while half its lease's margin lasts, then leave it to come back when the lease
        ends (a repeated send keeps the job's id)."""
        structlog.contextvars.bind_contextvars(job_id=job.id, subscription=job.subscription_id)
        retry = RetryInPlace(self.queue.redis, stop, self.config.lease_margin_seconds / 2,
                             log, "notifier.retrying")  # fmt: skip
        while True:
            try:
                await self.dispatch(job)
            except Exception as error:
                if not transient(error):
                    raise
                metrics.TURNS_RETRIED_IN_PLACE.inc()
                if await retry.again(error):
                    continue
                log.warning("notifier.deliver_interrupted", error=str(error))
            return

    async def dispatch(self, job: Job) -> None:
        """One turn of a claimed job: ask the policy, send if it says so, carry out the end."""
        now = self.clock()
        subscriber = await self._subscriber(job, now)
        decision = decide(None, job, subscriber, self.config, now)
        subscription = subscriber.subscription
        if isinstance(decision, Send) and subscription is not None:
            if await self._take_slot(subscription, now):
                await self._attempt(job, subscription, subscriber)
                return
            decision = decide(RATE_LIMITED, job, subscriber, self.config, now)
        await self._apply(decision, job, subscriber, now)

    async def _take_slot(self, subscription: Subscription, now: float) -> bool:
        """One of the subscriber's messages of this minute, if it has a limit."""
        limit = subscription.rate_limit
        return limit is None or await self.store.take_rate_slot(subscription.id, limit, now)

    async def _attempt(self, job: Job, subscription: Subscription, subscriber: Subscriber) -> None:
        """Send the job, count the attempt, and carry out what the policy makes of it."""
        alerts = await self.queue.digest_alerts(job)
        if not alerts:  # a digest window that received nothing
            await self.queue.finish(job)
            return
        job = job.model_copy(update={"alerts": alerts})
        result, seconds = await self._send(subscription, job)
        now = self.clock()
        await self.delivery_log.attempt(job, result, at=now, seconds=seconds)
        subscriber = await self._observed(subscriber, result, now)
        await self._apply(decide(result, job, subscriber, self.config, now), job, subscriber, now)

    async def _subscriber(self, job: Job, now: float) -> Subscriber:
        try:
            subscription = await self.store.get(job.subscription_id)
        except UnreadableSubscriptionError as error:
            return Subscriber(None, problem=str(error))
        if subscription is None:
            return Subscriber(None)
        state = await self.store.state(subscription.id)
        if state.circuit(now) == "half-open" and state.probe_until <= now:
            lease = lease_seconds(self.settings, subscription.channel)
            state = await self.store.claim_probe(subscription.id, job.id, now, lease)
        return Subscriber(subscription, state)

    async def _observed(self, subscriber: Subscriber, result: SendResult, now: float) -> Subscriber:
        """``subscriber`` with this attempt counted (and its window, for the breaker)."""
        assert subscriber.subscription is not None
        subscription_id = subscriber.subscription.id
        if result.outcome in ("retry", "gone", "rejected"):
            await self.store.record_failure(subscription_id, now, result.detail)
        failed = _COUNTED.get(result.outcome)
        if failed is None:
            return subscriber
        period = self.config.circuit_window_seconds / WINDOW_PERIODS
        window = await self.store.record_attempt(
            subscription_id,
            failed=failed,
            period=int(now // period),
            periods=WINDOW_PERIODS,
            ttl=self.config.circuit_window_seconds * 2,
        )
        return Subscriber(subscriber.subscription, subscriber.state, window)

    async def _send(self, subscription: Subscription, job: Job) -> tuple[SendResult, float]:
        """The attempt's result and how long it took."""
        channel = self.channels[subscription.channel]
        started = time.perf_counter()
        try:
            result = await channel.send(subscription, job, job.alerts)
        except Exception as error:
            log.exception("notifier.channel_crashed", channel=subscription.channel)
            result = SendResult("retry", f"{type(error).__name__}: {error}"[:300])
        seconds = time.perf_counter() - started
        metrics.DELIVERY_SECONDS.labels(subscription.channel).observe(seconds)
        STAGE_SECONDS.labels("deliver").observe(seconds)
        return result, seconds

    async def _apply(
        self, decision: Decision, job: Job, subscriber: Subscriber, now: float
    ) -> None:
        subscription = subscriber.subscription
        channel = subscription.channel if subscription else job.channel or "unknown"
        match decision:
            case Delivered(close_circuit=close):
                await self._delivered(job, channel, now, close=close)
            case Retry(job=tried, at=at, reason=reason, open_circuit_until=open_until):
                await self._open_circuit(job.subscription_id, open_until, now)
                await self.queue.put(_owed(tried, subscription), at)
                metrics.DELIVERIES.labels(channel, "retry").inc()
                metrics.DELIVERY_RETRIES.labels(channel).inc()
                log.warning("notifier.retry_scheduled", channel=channel, attempts=tried.attempts,
                            delay_seconds=round(at - now, 3), detail=reason)  # fmt: skip
            case Pause(job=held, until=until, reason=reason, endpoint=endpoint):
                if endpoint:
                    await self.store.pause(job.subscription_id, until)
                    log.warning("notifier.endpoint_paused", until=until, detail=reason)
                await self.queue.put(_owed(held, subscription), until)
                metrics.DELIVERIES.labels(channel, reason).inc()
                log.info("notifier.held", reason=reason, seconds=round(until - now, 3))
            case Fold(minute=minute):
                await self._fold(job, channel, minute)
            case DeadLetter(job=dead, reason=reason, open_circuit_until=open_until):
                await self._open_circuit(job.subscription_id, open_until, now)
                await self._dead_letter(dead, reason, channel, now, known=subscription is not None)
            case Disable(job=dead, reason=reason):
                await self.store.disable(job.subscription_id, reason)
                metrics.DELIVERIES.labels(channel, "disabled").inc()
                log.warning("notifier.subscription_disabled", reason=reason)
                await self._dead_letter(dead, reason, channel, now, known=True)
            case Send():  # only without a subscription, which the policy dead-letters
                raise AssertionError("send without a subscription")

    async def _delivered(self, job: Job, channel: str, now: float, *, close: bool) -> None:
        await self.queue.finish(job)
        await self.store.record_success(job.subscription_id, now, close=close)
        metrics.DELIVERIES.labels(channel, "delivered").inc()
        for alert in job.alerts:
            metrics.END_TO_END_SECONDS.labels(channel).observe(
                max(0.0, now - alert.article.fetched_at.timestamp())
            )
        if close:
            log.info("notifier.circuit_closed", channel=channel)
        log.info("notifier.delivered", channel=channel, kind=job.kind, alerts=len(job.alerts),
                 attempts=job.attempts + 1)  # fmt: skip

    async def _open_circuit(self, subscription_id: str, until: float | None, now: float) -> None:
        if until is None:
            return
        await self.store.open_circuit(subscription_id, until, now)
        log.warning("notifier.circuit_opened", seconds=round(until - now, 3))

    async def _fold(self, job: Job, channel: str, minute: int) -> None:
        if await self.queue.fold(job, job.alerts, minute):
            metrics.DELIVERIES.labels(channel, "folded").inc()
            log.info("notifier.folded", alerts=len(job.alerts), minute=minute)
            return
        # Both overflow messages are already on their way: this one waits its turn.
        await self.queue.put(job, minute * 60.0)
        metrics.DELIVERIES.labels(channel, "rate_limited").inc()

    async def _dead_letter(
        self, job: Job, reason: str, channel: str, now: float, *, known: bool
    ) -> None:
        """Keep the job with its history in ``vigil:dead``; ``vigil dlq replay`` resends it."""
        dead_id = await self.bus.dead_letter(
            stream=REPLAYS,
            group=NOTIFIER_GROUP,
            entry_id=job.id,
            fields=encode(job),
            reason=reason,
            deliveries=job.attempts,
            ack=False,
            also=lambda pipe: self.queue.forget(pipe, job),
        )
        metrics.DELIVERIES.labels(channel, "dead_lettered").inc()
        if known:
            await self.store.record_dead_letter(job.subscription_id)
            await self.delivery_log.dead_lettered(job, reason, dead_id, now)


def _owed(job: Job, subscription: Subscription | None) -> Job:
    """``job`` filed under its subscriber's current channel (its due set follows the channel)."""
    if subscription is None or job.channel == subscription.channel:
        return job
    return job.model_copy(update={"channel": subscription.channel})
