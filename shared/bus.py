"""The stream bus: the only code in Vigil that speaks Redis ``X*`` commands.

Producers call :meth:`StreamBus.publish`; consumers hand :meth:`StreamBus.consumer` a message
model and an async handler, and :class:`~shared.consumer.Consumer` does the rest (group
creation, own pending entries first, bounded concurrency, acknowledgement after the handler's
effect, reclaiming, delivery counting, dead letters, ``NOGROUP`` recovery, graceful
shutdown). This module holds publishing, dead letters and the inspection of streams and
groups. Handlers never touch redis-py for streams.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from shared import metrics
from shared.acks import errors_key
from shared.consumer import Consumer, Handler, PermanentError, Receipt
from shared.durability import Durable
from shared.logging import get_logger
from shared.models import DeadLetter, Message
from shared.resilience import TRANSIENT_ERRORS
from shared.settings import BusSettings
from shared.streams import DEAD, M, encode

log = get_logger("bus")

# Re-exported: the services have always imported these from here.
__all__ = ["TRANSIENT_ERRORS", "Consumer", "PermanentError", "Receipt", "StreamBus"]

# KEYS: the stream; ARGV: group, consumer. Deletes the consumer only if it holds no entry.
_DELETE_IDLE_CONSUMER = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# KEYS: the stream; ARGV: an entry id, a cap. How many entries follow it (at most the cap),
# counted where they are: only the number crosses the network.
_COUNT_AFTER = """
return #redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
"""
# The most entries counted when XINFO cannot give a group's lag.
LAG_COUNT_CAP = 10_000


@dataclass(frozen=True)
class GroupStatus:
    """A consumer group's state as ``vigil status`` and the lag gauges show it."""

    stream: str
    group: str
    consumers: int
    pending: int
    lag: int
    last_delivered_id: str


class StreamBus:
    """Publishing, dead letters and stream inspection over one Redis connection pool."""

    def __init__(self, redis: Redis, settings: BusSettings | None = None) -> None:
        self.redis = redis
        self.settings = settings or BusSettings()
        self.durable = Durable.of(redis, self.settings)
        self._delete_idle_consumer = redis.register_script(_DELETE_IDLE_CONSUMER)
        self._count_after = redis.register_script(_COUNT_AFTER)

    async def publish(self, stream: str, message: Message, *, maxlen: int | None = None) -> str:
        """Append a message to a stream, trimming it to about ``maxlen`` entries; with replicas
        to wait for (:mod:`shared.durability`), return once one holds it."""
        [entry_id] = await self.durable.execute(
            stream,
            lambda pipe: pipe.xadd(
                stream,
                encode(message),  # type: ignore[arg-type]
                maxlen=maxlen or self.settings.stream_maxlen,
                approximate=True,
            ),
        )
        metrics.BUS_PUBLISHED.labels(stream).inc()
        return str(entry_id)

    async def publish_many(
        self,
        stream: str,
        messages: Sequence[Message],
        *,
        also: Callable[[Pipeline], object] | None = None,
    ) -> list[str]:
        """Append messages in one round trip and one transaction: all are written or none.

        ``also`` adds the caller's own commands to the transaction (the poller marks the
        articles as seen with them), so those take effect exactly when the entries do.
        """
        async with self.redis.pipeline(transaction=True) as pipe:
            for message in messages:
                pipe.xadd(
                    stream,
                    encode(message),  # type: ignore[arg-type]
                    maxlen=self.settings.stream_maxlen,
                    approximate=True,
                )
            if also is not None:
                also(pipe)
            results = await pipe.execute()
        metrics.BUS_PUBLISHED.labels(stream).inc(len(messages))
        return [str(entry_id) for entry_id in results[: len(messages)]]

    async def ensure_group(self, stream: str, group: str) -> None:
        """Create ``group`` on ``stream`` (and the stream) unless it exists.

        A new group starts at the beginning of the stream, so entries written before the
        first consumer started are not skipped.
        """
        try:
            await self.redis.xgroup_create(stream, group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def dead_letter(
        self,
        *,
        stream: str,
        group: str,
        entry_id: str,
        fields: Mapping[str, str],
        reason: str,
        deliveries: int,
        ack: bool = True,
        also: Callable[[Pipeline], object] | None = None,
    ) -> str:
        """Move an entry to the dead-letter stream, then acknowledge it.

        Two steps, the letter first: on a Redis Cluster the dead-letter stream and the entry's
        stream are in different slots, which no transaction may span. A crash between them
        leaves the entry pending, to be dead-lettered again: two letters for one entry, never
        none (a replay is idempotent). ``ack=False`` dead-letters something that is not a
        pending stream entry (a notifier delivery job); ``entry_id`` then names it. ``also``
        queues the caller's own commands, run last in a transaction of their own (the
        notifier forgets the job it dead-letters).
        """
        letter = DeadLetter(source_stream=stream, group=group, entry_id=entry_id, reason=reason,
                            deliveries=deliveries, fields=dict(fields))  # fmt: skip
        dead_id = await self.redis.xadd(
            DEAD, {"letter": letter.model_dump_json()}, maxlen=self.settings.dead_maxlen,
            approximate=True,
        )  # fmt: skip
        if ack:
            await self._transaction(_forget_entry(stream, group, entry_id))
        if also is not None:  # a transaction of its own: its keys may be in another slot
            await self._transaction(also)
        metrics.DEAD_LETTERS.labels(stream, reason.split(":", 1)[0]).inc()
        log.warning("bus.dead_lettered", stream=stream, group=group, entry_id=entry_id,
                    reason=reason, deliveries=deliveries, dead_id=dead_id)  # fmt: skip
        return str(dead_id)

    async def _transaction(self, queue: Callable[[Pipeline], object]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            queue(pipe)
            await pipe.execute()

    async def dead_letters(
        self, *, start: str = "-", count: int = 100
    ) -> list[tuple[str, DeadLetter]]:
        """The oldest dead letters from ``start`` on."""
        rows = await self.redis.xrange(DEAD, min=start, max="+", count=count)
        return [(str(entry_id), _letter(fields)) for entry_id, fields in rows or ()]

    async def newest_dead_letters(
        self, *, end: str = "+", count: int = 100
    ) -> list[tuple[str, DeadLetter]]:
        """The newest dead letters up to ``end`` (inclusive), newest first."""
        rows = await self.redis.xrevrange(DEAD, max=end, min="-", count=count)
        return [(str(entry_id), _letter(fields)) for entry_id, fields in rows or ()]

    async def get_dead_letter(self, dead_id: str) -> DeadLetter | None:
        """One dead letter by its id in the dead-letter stream."""
        rows = await self.redis.xrange(DEAD, min=dead_id, max=dead_id, count=1)
        return _letter(rows[0][1]) if rows else None

    async def replay(self, dead_id: str) -> str | None:
        """Put a dead letter's original entry back on its stream, then remove the letter.

        The payload is unchanged, so downstream idempotency keys (article and alert ids)
        still hold and a replay never produces a duplicate effect. Two steps, for the same
        reason as :meth:`dead_letter`: a crash between them leaves the letter, whose next
        replay is harmless.
        """
        letter = await self.get_dead_letter(dead_id)
        if letter is None:
            return None
        new_id = await self.redis.xadd(
            letter.source_stream,
            letter.fields,  # type: ignore[arg-type]
            maxlen=self.settings.stream_maxlen,
            approximate=True,
        )
        await self.redis.xdel(DEAD, dead_id)
        log.info("bus.replayed", dead_id=dead_id, stream=letter.source_stream, entry_id=new_id)
        return str(new_id)

    async def purge(self, dead_ids: Sequence[str] | None = None) -> int:
        """Delete the given dead letters, or all of them when none are given."""
        if dead_ids is None:
            count = int(await self.redis.xlen(DEAD))
            await self.redis.delete(DEAD)
            return count
        return int(await self.redis.xdel(DEAD, *dead_ids)) if dead_ids else 0

    async def remove_idle_consumers(
        self, stream: str, group: str, *, idle_seconds: float, keep: str
    ) -> list[str]:
        """Delete the group's consumers idle for ``idle_seconds`` with no entry pending.

        Autoscaled replicas come and go under new names; without this, XINFO CONSUMERS lists
        every one that ever ran. Each deletion re-checks, in one script, that the consumer
        holds nothing (an entry it held would otherwise leave the pending list unprocessed);
        a live consumer deleted between two reads is recreated by its next read.
        """
        removed = []
        for consumer in await self.redis.xinfo_consumers(stream, group):
            name = str(consumer["name"])
            if (
                name == keep
                or int(consumer["pending"])
                or int(consumer["idle"]) < idle_seconds * 1000
            ):
                continue
            if await self._delete_idle_consumer(keys=[stream], args=[group, name]):
                removed.append(name)
                metrics.BUS_CONSUMERS_REMOVED.labels(stream, group).inc()
                log.info("bus.consumer_removed", stream=stream, group=group, consumer=name,
                         idle_seconds=int(consumer["idle"]) // 1000)  # fmt: skip
        return removed

    async def group_status(self, stream: str) -> list[GroupStatus]:
        """The consumer groups of a stream with their pending count and lag.

        XINFO gives no lag once it has lost count of what a group read (a restart replayed
        the groups from the append-only file, entries were deleted, an id was set by hand):
        then the entries after the group's last delivered one are counted, up to
        ``LAG_COUNT_CAP``.
        """
        try:
            groups = await self.redis.xinfo_groups(stream)
        except ResponseError:  # no such stream yet
            return []
        statuses = []
        for g in groups:
            last = str(g["last-delivered-id"])
            lag = g.get("lag")
            if lag is None:
                lag = await self._count_after(keys=[stream], args=[last, LAG_COUNT_CAP])
            statuses.append(GroupStatus(
                stream=stream, group=str(g["name"]), consumers=int(g["consumers"]),
                pending=int(g["pending"]), lag=int(lag), last_delivered_id=last,
            ))  # fmt: skip
        return statuses

    async def update_gauges(self, streams: Sequence[str]) -> None:
        """Refresh the length, lag and pending gauges of the given streams."""
        for stream in streams:
            metrics.STREAM_LENGTH.labels(stream).set(int(await self.redis.xlen(stream)))
            for status in await self.group_status(stream):
                metrics.CONSUMER_PENDING.labels(stream, status.group).set(status.pending)
                metrics.CONSUMER_LAG.labels(stream, status.group).set(status.lag)

    def consumer(
        self,
        *,
        stream: str,
        group: str,
        name: str,
        model: type[M],
        handler: Handler[M],
        observer: bool = False,
    ) -> Consumer[M]:
        """A consumer of ``stream`` in ``group`` that hands each message to ``handler``.

        An ``observer`` group (a second reader of a stream that another group acts on, like
        the archive of ``vigil:alerts``) skips the entries it cannot use instead of
        dead-lettering them: the acting group dead-letters them once, with its reason.
        """
        return Consumer(self, stream=stream, group=group, name=name, model=model,
                        handler=handler, observer=observer)  # fmt: skip


def _forget_entry(stream: str, group: str, entry_id: str) -> Callable[[Pipeline], object]:
    """The commands that acknowledge an entry and forget its last error."""

    def queue(pipe: Pipeline) -> None:
        pipe.xack(stream, group, entry_id)
        pipe.hdel(errors_key(stream, group), entry_id)

    return queue


def _letter(fields: Mapping[Any, Any] | None) -> DeadLetter:
    return DeadLetter.model_validate_json((fields or {})["letter"])
