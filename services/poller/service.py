"""The poller service: claims due sources from the shared schedule and polls them.

Each poll asks the source's adapter (:mod:`services.poller.adapters`) for its entries,
publishes those not seen before and subscribes to the WebSub hub the adapter names; failures
are recorded in the source's health and retried with exponential backoff and jitter, and
never stop the other sources.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from datetime import timedelta

from aiohttp import web
from redis.asyncio import Redis

from services.poller import metrics
from services.poller.adapters.base import ParseError, Polled, Tools
from services.poller.adapters.document import DocumentAdapter
from services.poller.adapters.registry import make_adapters
from services.poller.dedupe import SeenStore
from services.poller.fetch import Fetched, Fetcher, FetchError, Validators
from services.poller.pool import ParsePool
from services.poller.publish import Publisher
from services.poller.schedule import Schedule
from services.poller.sources import Source
from services.poller.state import SourceState, StateStore
from services.poller.stories import StoryIndex
from services.poller.websub import WebSub
from services.settings import Settings
from shared.aio import Wakeup
from shared.bus import StreamBus
from shared.connection import connection_epoch
from shared.language import load_models
from shared.logging import get_logger
from shared.metrics import STAGE_SECONDS
from shared.resilience import TRANSIENT_ERRORS, Backoff
from shared.retry import EQUAL_JITTER, RetryPolicy
from shared.taskpool import Task, TaskPool

log = get_logger("poller")

HEALTH_REFRESH_SECONDS = 30.0
_IDLE_CHECK_SECONDS = 1.0
_SPEED_UP = 0.75
_SLOW_DOWN = 1.25
_JITTER = 0.1
_REDIS_RETRY_SECONDS = 5.0


class PollerService:
    """Polls the configured sources on the Redis-side schedule shared by all replicas."""

    name = "poller"

    def __init__(self, settings: Settings, redis: Redis, sources: list[Source]) -> None:
        self.settings = settings
        self.config = settings.poller
        self.redis = redis
        self.sources = {s.id: s for s in sources if s.enabled}
        self.disabled = len(sources) - len(self.sources)
        self.fetcher = Fetcher(self.config)
        self.pool = ParsePool(self.config.parse_workers)
        self.schedule = Schedule(redis)
        self.state = StateStore(redis)
        ttl = self.config.dedupe_ttl_days * 86_400
        self.publisher = Publisher(
            StreamBus(redis, settings.bus),
            SeenStore(redis, ttl_seconds=ttl, max_entries=self.config.dedupe_max_entries),
            StoryIndex(redis, ttl_seconds=ttl),
            skew=timedelta(seconds=self.config.future_skew_seconds),
            pool=self.pool,
            fetcher=self.fetcher,
        )
        self.adapters = make_adapters(Tools(self.fetcher, self.pool, self.config))
        self.websub = WebSub(self.config, redis, self.fetcher, self._push)
        self.retry = RetryPolicy(
            base=self.config.retry_base_seconds,
            cap=self.config.max_interval_seconds,
            jitter=EQUAL_JITTER,
        )
        self.lease_seconds = self.config.total_timeout_seconds * 2 + 30
        self._polls: TaskPool[str] = TaskPool(self.config.global_concurrency, self._done)
        self._wake = Wakeup()
        self._ready = False
        self._health_at = 0.0

    def is_ready(self) -> bool:
        return self._ready

    def setup_app(self, app: web.Application) -> None:
        """Mount the WebSub callback routes on the service's HTTP server."""
        self.websub.setup_app(app)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; then let in-flight polls finish within the grace period."""
        backoff = Backoff(self.redis, log, "poller.redis_error")
        # Before any poll: parse threads then share one language model instead of each
        # loading its own, and the first polls do not wait for it.
        await asyncio.to_thread(load_models)
        try:
            while not stop.is_set():
                try:
                    if not self._ready:
                        await self.schedule.register(self.sources)
                        self._ready = True
                        log.info("poller.started", sources=len(self.sources))
                    await self._tick(stop)
                    backoff.reset()
                except TRANSIENT_ERRORS as error:
                    self._ready = False
                    await backoff.pause(stop, error)
        finally:
            self._ready = False
            await self._drain()
            await self.fetcher.close()
            self.pool.close()

    async def _tick(self, stop: asyncio.Event) -> None:
        if self._polls.free > 0:
            claimed = await self.schedule.claim(self._polls.free, self.lease_seconds)
            now = time.time()
            for source_id, due_at in claimed:
                metrics.POLLER_SCHEDULE_LAG_SECONDS.observe(max(0.0, now - due_at))
                source = self.sources.get(source_id)
                if source is None:  # removed from the configuration
                    await self.schedule.forget(source_id)
                    log.info("poller.source_forgotten", source=source_id)
                    continue
                self._polls.spawn(source_id, self.poll(source), name=f"poll:{source_id}")
            metrics.POLLER_IN_FLIGHT.set(len(self._polls))
            if claimed:
                return
        if time.monotonic() - self._health_at > HEALTH_REFRESH_SECONDS:
            await self._refresh_health()
        due = await self.schedule.next_due()
        wait = _IDLE_CHECK_SECONDS if due is None else due - time.time()
        # Until then, or a poll finishes (a slot is free), or stop.
        await self._wake.wait(stop, min(max(wait, 0.005), _IDLE_CHECK_SECONDS))

    def _done(self, task: Task, source_id: str) -> None:
        metrics.POLLER_IN_FLIGHT.set(len(self._polls))
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("poll.crashed", source=source_id, error=repr(task.exception()))

    async def _drain(self) -> None:
        """Give in-flight polls the grace period, then abandon them and release their lease."""
        abandoned = await self._polls.drain(self.settings.bus.shutdown_grace_seconds)
        with contextlib.suppress(*TRANSIENT_ERRORS):
            for source_id in abandoned:
                await self.schedule.reschedule(source_id, 0)
        if abandoned:
            log.warning("poller.polls_abandoned", sources=abandoned)

    async def poll(self, source: Source) -> None:
        """Poll one source once and schedule its next poll; never raises for source faults.

        When Redis fails mid-poll (a failover), the source is made due again shortly rather
        than left leased for the whole lease; if even that fails, the lease ends it.
        """
        try:
            await self._poll(source)
        except TRANSIENT_ERRORS as error:
            log.warning("poll.redis_error", source=source.id, error=str(error))
            with contextlib.suppress(*TRANSIENT_ERRORS):
                await self.schedule.reschedule(source.id, _REDIS_RETRY_SECONDS)

    async def _poll(self, source: Source) -> None:
        started = time.perf_counter()
        epoch = connection_epoch(self.state.redis)
        state = await self.state.get(source.id)
        try:
            outcome, validators, new = await self._fetch(source, state)
        except (FetchError, ParseError) as error:
            await self._failed(source, error, started)
            return
        if connection_epoch(self.state.redis) != epoch:
            # A failover during the poll: its articles may have gone to the old master. With
            # no validators kept, the next poll reads the whole feed and publishes them again.
            validators = Validators()
        interval = self._next_interval(source, state, new)
        await self.state.success(source.id, outcome=outcome, validators=validators,
                                 new_items=new, interval=interval)  # fmt: skip
        jitter = random.uniform(1 - _JITTER, 1 + _JITTER)  # noqa: S311 - not cryptographic
        await self.schedule.reschedule(source.id, interval * jitter)
        metrics.POLLS.labels(outcome).inc()
        duration = time.perf_counter() - started
        metrics.POLL_SECONDS.observe(duration)
        level = log.info if new else log.debug
        level("poll.fetched", source=source.id, outcome=outcome, new=new,
              interval=round(interval, 1), duration=round(duration, 4))  # fmt: skip

    async def _fetch(self, source: Source, state: SourceState) -> tuple[str, Validators, int]:
        polled = await self.adapters[source.type].poll(source, state)
        if not polled.modified:
            return "not_modified", polled.validators, 0
        new = await self._publish(source, polled)
        if polled.hub is not None:
            await self.websub.ensure(source, hub=polled.hub.url, topic=polled.hub.topic)
        return "ok", polled.validators, new

    async def _publish(self, source: Source, polled: Polled) -> int:
        if polled.warning:
            metrics.POLLER_PARSE_WARNINGS.labels(polled.kind).inc()
            log.info("poll.parse_warning", source=source.id, kind=polled.kind,
                     warning=polled.warning[:200])  # fmt: skip
        started = time.perf_counter()
        result = await self.publisher.publish(
            polled.entries, source=source.id, base_url=polled.url, fetched_at=polled.fetched_at,
            full_text=source.full_text,
        )  # fmt: skip
        if result.new:
            STAGE_SECONDS.labels("publish").observe(time.perf_counter() - started)
        return result.new

    async def _failed(self, source: Source, error: FetchError | ParseError, started: float) -> None:
        outcome = error.outcome if isinstance(error, FetchError) else "parse_error"
        failures = await self.state.failure(source.id, outcome=outcome, error=str(error))
        delay = self.retry.delay(failures)
        if isinstance(error, FetchError) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        await self.schedule.reschedule(source.id, delay)
        metrics.POLLS.labels(outcome).inc()
        metrics.POLL_SECONDS.observe(time.perf_counter() - started)
        metrics.POLLER_RETRIES.labels(outcome).inc()
        log.warning("poll.failed", source=source.id, outcome=outcome, error=str(error),
                    failures=failures, retry_in=round(delay, 2))  # fmt: skip

    def _next_interval(self, source: Source, state: SourceState, new: int) -> float:
        """A configured interval is kept; otherwise it adapts to how often the source publishes."""
        if source.interval is not None:
            return source.interval
        current = state.interval or self.config.default_interval_seconds
        current *= _SPEED_UP if new else _SLOW_DOWN
        return min(max(current, self.config.min_interval_seconds), self.config.max_interval_seconds)

    async def _push(self, source_id: str, body: bytes, headers: dict[str, str]) -> int:
        """Content pushed by a WebSub hub: publish it like a polled document."""
        source = self.sources[source_id]
        adapter = self.adapters[source.type]
        if not isinstance(adapter, DocumentAdapter):
            raise ParseError(f"a {source.type} source takes no pushed content")
        pushed = Fetched(200, source.url, body, headers)
        return await self._publish(source, await adapter.read(pushed))

    async def _refresh_health(self) -> None:
        self._health_at = time.monotonic()
        # Every configured source is always scheduled: one missing means Redis lost its data
        # (FLUSHALL, a failover to an empty replica) and the source would never be polled again.
        restored = await self.schedule.register(self.sources)
        if restored:
            log.warning("poller.schedule_restored", sources=restored)
            metrics.POLLER_SCHEDULE_RESTORED.inc(restored)
        states = await self.state.many(list(self.sources))
        failing = sum(1 for s in states if s.consecutive_failures)
        metrics.POLLER_SOURCES.labels("healthy").set(len(states) - failing)
        metrics.POLLER_SOURCES.labels("failing").set(failing)
        metrics.POLLER_SOURCES.labels("disabled").set(self.disabled)
