"""The stream bus: the only code in Vigil that speaks Redis ``X*`` commands.

Producers call :meth:`StreamBus.publish`; consumers hand :meth:`StreamBus.consumer` a message
model and an async handler, and :class:`Consumer` does the rest: group creation, own pending
entries first, bounded concurrency, acknowledgement after the handler's effect, reclaiming
idle entries of dead consumers with ``XAUTOCLAIM``, delivery counting, dead letters, ``NOGROUP``
recovery and graceful shutdown. Handlers never touch redis-py for streams.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from shared import metrics
from shared.aio import sleep_or_stop
from shared.durability import Durable
from shared.models import DeadLetter, Message
from shared.resilience import TRANSIENT_ERRORS, Backoff
from shared.settings import BusSettings
from shared.streams import DEAD, DecodeError, M, companion, decode, encode

log = structlog.get_logger(component="bus")

# TRANSIENT_ERRORS is re-exported: the services have always imported it from here.
__all__ = ["TRANSIENT_ERRORS", "Consumer", "Delivery", "PermanentError", "StreamBus"]
_ERROR_TEXT_LIMIT = 500

# KEYS: the stream; ARGV: group, consumer. Deletes the consumer only if it holds no entry.
_DELETE_IDLE_CONSUMER = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


class PermanentError(Exception):
    """Raised by a handler for an entry that can never succeed: it is dead-lettered at once."""


@dataclass(frozen=True)
class Delivery:
    """Where a message came from and how many times it has been delivered."""

    stream: str
    group: str
    entry_id: str
    deliveries: int


Handler = Callable[[M, Delivery], Awaitable[None]]


@dataclass(frozen=True)
class GroupStatus:
    """A consumer group's state as ``vigil status`` and the lag gauges show it."""

    stream: str
    group: str
    consumers: int
    pending: int
    lag: int | None
    last_delivered_id: str


class StreamBus:
    """Publishing, dead letters and stream inspection over one Redis connection pool."""

    def __init__(self, redis: Redis, settings: BusSettings | None = None) -> None:
        self.redis = redis
        self.settings = settings or BusSettings()
        self.durable = Durable.of(redis, self.settings)
        self._delete_idle_consumer = redis.register_script(_DELETE_IDLE_CONSUMER)

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
        letter = DeadLetter(
            source_stream=stream,
            group=group,
            entry_id=entry_id,
            reason=reason,
            deliveries=deliveries,
            fields=dict(fields),
        )
        dead_id = await self.redis.xadd(
            DEAD,
            {"letter": letter.model_dump_json()},
            maxlen=self.settings.dead_maxlen,
            approximate=True,
        )
        if ack:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xack(stream, group, entry_id)
                pipe.hdel(_errors_key(stream, group), entry_id)
                await pipe.execute()
        if also is not None:
            async with self.redis.pipeline(transaction=True) as pipe:
                also(pipe)
                await pipe.execute()
        kind = reason.split(":", 1)[0]
        metrics.DEAD_LETTERS.labels(stream, kind).inc()
        log.warning(
            "bus.dead_lettered",
            stream=stream,
            group=group,
            entry_id=entry_id,
            reason=reason,
            deliveries=deliveries,
            dead_id=dead_id,
        )
        return str(dead_id)

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
        """The consumer groups of a stream with their pending count and lag."""
        try:
            groups = await self.redis.xinfo_groups(stream)
        except ResponseError:  # no such stream yet
            return []
        return [
            GroupStatus(
                stream=stream,
                group=str(g["name"]),
                consumers=int(g["consumers"]),
                pending=int(g["pending"]),
                lag=int(g["lag"]) if g.get("lag") is not None else None,
                last_delivered_id=str(g["last-delivered-id"]),
            )
            for g in groups
        ]

    async def update_gauges(self, streams: Sequence[str]) -> None:
        """Refresh the length, lag and pending gauges of the given streams."""
        for stream in streams:
            metrics.STREAM_LENGTH.labels(stream).set(int(await self.redis.xlen(stream)))
            for status in await self.group_status(stream):
                metrics.CONSUMER_PENDING.labels(stream, status.group).set(status.pending)
                if status.lag is not None:
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


def _errors_key(stream: str, group: str) -> str:
    """Hash of the last handler error per pending entry, quoted in dead letters; in the
    stream's cluster slot, so that acknowledging and forgetting the error is one step."""
    return companion(stream, f"errors:{group}")


def _letter(fields: Mapping[Any, Any] | None) -> DeadLetter:
    return DeadLetter.model_validate_json((fields or {})["letter"])


class Consumer(Generic[M]):
    """One consumer of a group: reads, dispatches to a handler, acks, reclaims, dead-letters."""

    def __init__(
        self,
        bus: StreamBus,
        *,
        stream: str,
        group: str,
        name: str,
        model: type[M],
        handler: Handler[M],
        observer: bool = False,
    ) -> None:
        self.bus = bus
        self.observer = observer
        self.redis = bus.redis
        self.settings = bus.settings
        self.stream = stream
        self.group = group
        self.name = name
        self.model = model
        self.handler = handler
        self.ready = False
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._acks = _Acks(self.redis, stream, group)
        self._next_reclaim = 0.0
        self._next_sweep = time.monotonic() + self.settings.consumer_sweep_seconds
        self._log = log.bind(stream=stream, group=group, consumer=name)
        metrics.prime_consumer(stream, group)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then give in-flight messages the grace period."""
        backoff = Backoff(self.redis)
        try:
            while not stop.is_set():
                try:
                    await self.bus.ensure_group(self.stream, self.group)
                    await self._read_own_pending(stop)
                    self.ready = True
                    backoff.reset()
                    await self._consume(stop)
                except TRANSIENT_ERRORS as error:  # READONLY and cluster errors included
                    kind, failure = "connection", error
                    self._log.warning("bus.redis_unavailable", error=str(error))
                except ResponseError as error:
                    # The stream or group vanished (FLUSHALL, DEL): recreate it after a pause.
                    if not str(error).startswith(("NOGROUP", "UNBLOCKED")):
                        raise
                    kind, failure = "nogroup", error
                else:
                    continue
                self.ready = False
                metrics.BUS_ERRORS.labels(self.stream, kind).inc()
                delay = await backoff.failed(failure)
                self._log.warning("bus.backoff", kind=kind, failures=backoff.failures, delay=delay)
                await sleep_or_stop(stop, delay)
        finally:
            self.ready = False
            await self._drain()

    async def _read_own_pending(self, stop: asyncio.Event) -> None:
        """After a restart, finish the entries this consumer had taken but not acknowledged."""
        last_id = "0"
        while not stop.is_set():
            await self._wait_for_slot()
            response = await self.redis.xreadgroup(
                self.group, self.name, {self.stream: last_id}, count=self._free_slots()
            )
            entries = _entries(response)
            if not entries:
                return
            last_id = entries[-1][0]
            fresh = [(i, f) for i, f in entries if i not in self._in_flight]
            if not fresh:
                return
            counts = await self._delivery_counts([i for i, _ in fresh])
            self._log.info("bus.resuming_pending", count=len(fresh))
            for entry_id, fields in fresh:
                self._dispatch(entry_id, fields, counts.get(entry_id, 1))

    async def _consume(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._reclaim_idle()
            await self._sweep_consumers()
            await self._wait_for_slot()
            response = await self.redis.xreadgroup(
                self.group,
                self.name,
                {self.stream: ">"},
                count=min(self.settings.batch_size, self._free_slots()),
                block=self.settings.block_ms,
            )
            for entry_id, fields in _entries(response):
                self._dispatch(entry_id, fields, 1)

    async def _reclaim_idle(self) -> None:
        """Take over entries idle past ``claim_idle_ms``: their consumer died or failed."""
        now = time.monotonic()
        if now < self._next_reclaim:
            return
        self._next_reclaim = now + self.settings.claim_interval_seconds
        cursor = "0-0"
        while self._free_slots() > 0:
            response = await self.redis.xautoclaim(
                self.stream,
                self.group,
                self.name,
                min_idle_time=self.settings.claim_idle_ms,
                start_id=cursor,
                count=self._free_slots(),
            )
            cursor = str(response[0])
            claimed = [(i, f) for i, f in response[1] if i not in self._in_flight]
            if claimed:
                metrics.BUS_RECLAIMED.labels(self.stream, self.group).inc(len(claimed))
                counts = await self._delivery_counts([i for i, _ in claimed])
                self._log.info("bus.reclaimed", count=len(claimed))
                for entry_id, fields in claimed:
                    self._dispatch(entry_id, fields, counts.get(entry_id, 2))
            if cursor in ("0-0", "0"):
                return

    async def _sweep_consumers(self) -> None:
        """Now and then, remove consumers of gone replicas (see ``remove_idle_consumers``)."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.settings.consumer_sweep_seconds
        await self.bus.remove_idle_consumers(
            self.stream,
            self.group,
            idle_seconds=self.settings.consumer_idle_seconds,
            keep=self.name,
        )

    async def _delivery_counts(self, entry_ids: Sequence[str]) -> dict[str, int]:
        rows = await self.redis.xpending_range(
            self.stream,
            self.group,
            min=min(entry_ids, key=_id_key),
            max=max(entry_ids, key=_id_key),
            count=len(entry_ids) + len(self._in_flight) + 1,
            consumername=self.name,
        )
        return {str(row["message_id"]): int(row["times_delivered"]) for row in rows}

    def _free_slots(self) -> int:
        return self.settings.concurrency - len(self._in_flight)

    async def _wait_for_slot(self) -> None:
        while self._free_slots() <= 0:
            await asyncio.wait(self._in_flight.values(), return_when=asyncio.FIRST_COMPLETED)

    def _dispatch(self, entry_id: str, fields: Mapping[str, str] | None, deliveries: int) -> None:
        task = asyncio.create_task(self._process(entry_id, fields, deliveries))
        self._in_flight[entry_id] = task
        task.add_done_callback(lambda _: self._in_flight.pop(entry_id, None))

    async def _process(
        self, entry_id: str, fields: Mapping[str, str] | None, deliveries: int
    ) -> None:
        """Handle one entry; every path ends acked, dead-lettered, or pending for a retry."""
        structlog.contextvars.bind_contextvars(
            stream=self.stream, entry_id=entry_id, deliveries=deliveries
        )
        started = time.perf_counter()
        try:
            await self._process_entry(entry_id, fields, deliveries)
        except TRANSIENT_ERRORS as error:
            # The entry stays pending and is reclaimed once Redis is back.
            self._log.warning("bus.ack_failed", entry_id=entry_id, error=str(error))
        finally:
            metrics.BUS_HANDLE_SECONDS.labels(self.stream, self.group).observe(
                time.perf_counter() - started
            )

    async def _process_entry(
        self, entry_id: str, fields: Mapping[str, str] | None, deliveries: int
    ) -> None:
        if not fields:
            # Trimmed from the stream while pending: nothing is left to process.
            await self.redis.xack(self.stream, self.group, entry_id)
            metrics.BUS_MESSAGES.labels(self.stream, self.group, "trimmed").inc()
            self._log.warning("bus.entry_trimmed", entry_id=entry_id)
            return
        if deliveries > self.settings.max_deliveries:
            last_error = await self.redis.hget(_errors_key(self.stream, self.group), entry_id)
            await self._dead_letter(
                entry_id,
                fields,
                f"max_deliveries: failed {deliveries - 1} times; last error: {last_error!s}",
                deliveries,
            )
            return
        try:
            message = decode(self.model, fields)
        except DecodeError as error:
            await self._dead_letter(entry_id, fields, f"decode: {error}", deliveries)
            return
        delivery = Delivery(self.stream, self.group, entry_id, deliveries)
        try:
            await self.handler(message, delivery)
        except PermanentError as error:
            await self._dead_letter(entry_id, fields, f"rejected: {error}", deliveries)
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - any handler failure means "retry later"
            text = f"{type(error).__name__}: {error}"[:_ERROR_TEXT_LIMIT]
            await self.redis.hset(_errors_key(self.stream, self.group), entry_id, text)
            metrics.BUS_MESSAGES.labels(self.stream, self.group, "failed").inc()
            self._log.warning("bus.handler_failed", entry_id=entry_id, error=text)
            return
        await self._acks.ack(entry_id, forget_error=deliveries > 1)
        metrics.BUS_MESSAGES.labels(self.stream, self.group, "acked").inc()

    async def _dead_letter(
        self, entry_id: str, fields: Mapping[str, str], reason: str, deliveries: int
    ) -> None:
        if self.observer:
            await self.redis.xack(self.stream, self.group, entry_id)
            metrics.BUS_MESSAGES.labels(self.stream, self.group, "skipped").inc()
            self._log.warning("bus.entry_skipped", entry_id=entry_id, reason=reason)
            return
        await self.bus.dead_letter(
            stream=self.stream,
            group=self.group,
            entry_id=entry_id,
            fields=fields,
            reason=reason,
            deliveries=deliveries,
        )
        metrics.BUS_MESSAGES.labels(self.stream, self.group, "dead_lettered").inc()

    async def _drain(self) -> None:
        """Let in-flight messages finish within the grace period; the rest stay pending."""
        if not self._in_flight:
            return
        tasks = list(self._in_flight.values())
        self._log.info("bus.draining", in_flight=len(tasks))
        _, still_running = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace_seconds)
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running)
            self._log.warning("bus.released_pending", count=len(still_running))


class _Acks:
    """A consumer's acknowledgements, sent together.

    Handlers that finish while an XACK is on its way share the next one, so under load a
    consumer pays one round trip per batch instead of one per entry; when idle an entry is
    acknowledged at once. Each handler still waits for its own entry's acknowledgement.
    """

    def __init__(self, redis: Redis, stream: str, group: str) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group
        self._waiting: list[tuple[str, bool, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def ack(self, entry_id: str, *, forget_error: bool) -> None:
        """Acknowledge ``entry_id`` (and forget its last error); return once Redis has it."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((entry_id, forget_error, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            errors = [entry_id for entry_id, forget, _ in batch if forget]
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.xack(self.stream, self.group, *(entry_id for entry_id, _, _ in batch))
                    if errors:
                        pipe.hdel(_errors_key(self.stream, self.group), *errors)
                    await pipe.execute()
            except Exception as error:  # noqa: BLE001 - each waiting handler gets it
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(error)
            else:
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)


def _id_key(entry_id: str) -> tuple[int, int]:
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)


def _entries(response: Any) -> list[tuple[str, Mapping[str, str] | None]]:
    """The (id, fields) pairs of an XREADGROUP reply: ``[[stream, [(id, fields), ...]]]``."""
    return [(str(i), f) for _, stream_entries in response or () for i, f in stream_entries]
