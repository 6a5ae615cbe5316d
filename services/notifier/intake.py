"""Alerts in, delivery jobs out: one durable job per matching subscriber and story.

Each alert from ``vigil:alerts`` is matched against the enabled subscriptions; a job is
scheduled per match atomically with the subscriber's idempotency key (a later copy of the same
story is corroboration, not a new alert), or added to the subscriber's digest window. Replays
from ``vigil dlq replay`` and test events come in here too. Nothing here sends anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from services.notifier import metrics
from services.notifier.jobs import Attempt, Clock, Job, job_id
from services.notifier.queue import JobQueue
from services.notifier.store import SubscriptionStore
from services.notifier.subscriptions import Subscription
from shared.bus import Receipt
from shared.logging import get_logger
from shared.models import Alert
from shared.resilience import TRANSIENT_ERRORS, Backoff
from shared.vocabulary import KINDS, Vocabulary, published_vocabulary

log = get_logger("notifier")


def _nothing() -> None:
    return None


class Intake:
    """Schedules jobs; ``wake`` tells the dispatcher that one is due now."""

    def __init__(
        self,
        queue: JobQueue,
        store: SubscriptionStore,
        *,
        clock: Clock,
        wake: Callable[[], None] = _nothing,
    ) -> None:
        self.queue = queue
        self.store = store
        self.clock = clock
        self.wake = wake
        self._subscriptions: list[Subscription] = []
        self._version = -1

    async def load_file_subscriptions(
        self, subscriptions: Sequence[Subscription], stop: asyncio.Event
    ) -> None:
        """Store the subscriptions file's entries, retrying while Redis is away."""
        backoff = Backoff(self.store.redis, log, "notifier.redis_error")
        while not stop.is_set():
            try:
                await self.store.sync_file(list(subscriptions))
                vocabulary = await published_vocabulary(self.store.redis)
            except TRANSIENT_ERRORS as error:
                await backoff.pause(stop, error)
            else:
                log.info("notifier.subscriptions_loaded", count=len(subscriptions))
                _warn_unknown_names(subscriptions, vocabulary)
                return

    async def subscriptions(self) -> list[Subscription]:
        """The current subscriptions, re-read when another replica or the API changed them."""
        version = await self.store.version()
        if version != self._version:
            self._subscriptions = await self.store.all()
            self._version = version
        return self._subscriptions

    async def handle_alert(self, alert: Alert, _: Receipt) -> None:
        """Schedule one job per matching subscriber; already-seen stories are corroboration."""
        now = self.clock()
        story = alert.story_key
        scheduled = 0
        for subscription in await self.subscriptions():
            if not subscription.enabled or not subscription.filters.matches(alert):
                continue
            if subscription.mode == "digest":
                created = await self.queue.add_to_digest(
                    subscription.id, subscription.channel, alert, now,
                    subscription.digest_minutes * 60,
                )  # fmt: skip
            else:
                job = Job(
                    id=job_id(subscription.id, story),
                    subscription_id=subscription.id,
                    kind="alert",
                    channel=subscription.channel,
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

    async def handle_replay(self, job: Job, _: Receipt) -> None:
        """A dead-lettered job put back by ``vigil dlq replay``: same id, attempts from zero,
        the replay noted in its history."""
        now = self.clock()
        history = [*job.history, Attempt(at=now, outcome="replayed")]
        await self.queue.put(job.model_copy(update={"attempts": 0, "history": history}), now)
        log.info("notifier.job_replayed", job_id=job.id, subscription=job.subscription_id)
        self.wake()

    async def send_test(self, subscription: Subscription, alert: Alert) -> str:
        """Schedule a test event for one subscriber now; returns its job id."""
        now = self.clock()
        job = Job(
            id=job_id(subscription.id, f"test:{now}"),
            subscription_id=subscription.id,
            kind="test",
            channel=subscription.channel,
            alerts=[alert],
            created_at=now,
        )
        await self.queue.put(job, now)
        self.wake()
        return job.id


def _warn_unknown_names(subscriptions: Sequence[Subscription], vocabulary: Vocabulary) -> None:
    """The file was read before Redis was reached: its filters meet the published vocabulary
    only now, and are only warned about (the classifier that declares a new theater may not
    have published it yet; a name it lacks matches nothing)."""
    for subscription in subscriptions:
        for kind in KINDS:
            try:
                vocabulary.check(kind, getattr(subscription.filters, kind))
            except ValueError as problem:
                log.warning(
                    "notifier.subscription_filter_unknown",
                    subscription=subscription.id,
                    field=f"filters.{kind}",
                    problem=str(problem),
                )
