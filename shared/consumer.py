"""One consumer of a group: reads, hands each entry to a handler, acks, reclaims, dead-letters.

Made by :meth:`shared.bus.StreamBus.consumer`. It creates the group, reads its own pending
entries first, runs up to ``concurrency`` handlers at once, acknowledges after the handler's
effect, reclaims idle entries of dead consumers (XPENDING, then XCLAIM), counts deliveries,
dead-letters what can never succeed, recovers from ``NOGROUP`` and drains on shutdown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic

import structlog
from redis.exceptions import ResponseError

from shared import metrics
from shared.acks import Acks, errors_key
from shared.connection import connection_epoch
from shared.logging import get_logger
from shared.resilience import TRANSIENT_ERRORS, Backoff, RetryInPlace, check_master, transient
from shared.streams import DecodeError, M, decode
from shared.taskpool import TaskPool
from shared.torn import torn_connection

if TYPE_CHECKING:
    from shared.bus import StreamBus

log = get_logger("bus")

_ERROR_TEXT_LIMIT = 500
Fields = Mapping[str, str] | None


class PermanentError(Exception):
    """Raised by a handler for an entry that can never succeed: it is dead-lettered at once."""


@dataclass(frozen=True)
class Receipt:
    """What a handler receives beside the message: the entry it came from and how many times
    Redis has handed it out (not a notifier delivery: see services/notifier/service.py)."""

    stream: str
    group: str
    entry_id: str
    deliveries: int


Handler = Callable[[M, Receipt], Awaitable[None]]


class Consumer(Generic[M]):
    """One consumer of a group (see the module's docstring)."""

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
        self._pool: TaskPool[str] = TaskPool(self.settings.concurrency)
        self._acks = Acks(self.redis, stream, group)
        self._stop = asyncio.Event()
        self._epoch = connection_epoch(self.redis)
        self._next_reclaim = 0.0
        self._next_sweep = time.monotonic() + self.settings.consumer_sweep_seconds
        self._log = log.bind(stream=stream, group=group, consumer=name)
        metrics.prime_consumer(stream, group)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then give in-flight messages the grace period."""
        self._stop = stop
        backoff = Backoff(self.redis, self._log, "bus.backoff")
        try:
            while not stop.is_set():
                try:
                    await self.bus.ensure_group(self.stream, self.group)
                    self._epoch = connection_epoch(self.redis)
                    await self._read_own_pending(stop)
                    self.ready = True
                    backoff.reset()
                    await self._consume(stop)
                except TRANSIENT_ERRORS as error:  # READONLY and cluster errors included
                    kind, failure = "connection", error
                    self._log.warning("bus.redis_unavailable", error=str(error))
                except AttributeError as error:
                    if not torn_connection(error):
                        raise
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
                await backoff.pause(stop, failure, kind=kind)
        finally:
            self.ready = False
            await self._drain()

    async def _read_own_pending(self, stop: asyncio.Event) -> None:
        """Finish the entries this consumer had taken but not acknowledged: after a restart,
        and after a failover (what it acknowledged on the old master is pending again on the
        new one). Entries in flight here are left to their task: only the others are claimed,
        since each claim counts a delivery (toward ``max_deliveries``)."""
        # Listed as a consumer at once: a blocked read that finds nothing does not list it.
        await self.redis.xgroup_createconsumer(self.stream, self.group, self.name)
        start: str | None = "-"
        while start is not None and not stop.is_set():
            await self._pool.wait_for_slot()
            delivered, ids, start = await self._pending_page(start, consumername=self.name)
            if not ids:
                continue
            claim = await self.redis.xclaim(self.stream, self.group, self.name, 0, [*ids])
            claimed = dict(_entries([(self.stream, claim)]))
            self._log.info("bus.resuming_pending", count=len(ids))
            for entry_id in ids:  # one no longer in the stream was trimmed: no fields
                # XCLAIM counted one more delivery than XPENDING listed.
                self._dispatch(entry_id, claimed.get(entry_id), delivered[entry_id] + 1)

    async def _pending_page(
        self, start: str, **which: Any
    ) -> tuple[dict[str, int], list[str], str | None]:
        """One page of the group's pending entries from ``start`` (XPENDING, which counts no
        delivery; ``which``: its consumer or idle filter): their deliveries so far, those not
        in flight here (at most as many as the pool has free slots), and where the next page
        starts (None after the last)."""
        rows = await self.redis.xpending_range(
            self.stream, self.group, min=start, max="+",
            count=self._pool.free + len(self._pool), **which,
        )  # fmt: skip
        delivered = {str(row["message_id"]): int(row["times_delivered"]) for row in rows}
        busy = self._pool.keys()
        ids = [i for i in delivered if i not in busy][: self._pool.free]
        last = ids[-1] if ids else next(reversed(delivered), None)
        return delivered, ids, None if last is None else f"({last}"

    async def _consume(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if connection_epoch(self.redis) != self._epoch:  # a failover, or Redis restarted
                self._epoch = connection_epoch(self.redis)
                await self._read_own_pending(stop)
            await self._reclaim_idle()
            await self._sweep_consumers()
            await self._pool.wait_for_slot()
            response = await self.redis.xreadgroup(
                self.group,
                self.name,
                {self.stream: ">"},
                count=min(self.settings.batch_size, self._pool.free),
                block=self.settings.block_ms,
            )
            for entry_id, fields in _entries(response):
                self._dispatch(entry_id, fields, 1)

    async def _reclaim_idle(self) -> None:
        """Take over entries idle past ``claim_idle_ms``: their consumer died or failed.

        Listed first, so that an entry still in flight here (a handler slower than
        ``claim_idle_ms``) is left to its task without a delivery counted against it."""
        now = time.monotonic()
        if now < self._next_reclaim:
            return
        self._next_reclaim = now + self.settings.claim_interval_seconds
        idle = self.settings.claim_idle_ms
        start: str | None = "-"
        while start is not None and self._pool.free > 0:
            delivered, ids, start = await self._pending_page(start, idle=idle)
            if not ids:
                continue
            # Claimed only if still idle: another consumer may have taken one meanwhile.
            claim = await self.redis.xclaim(self.stream, self.group, self.name, idle, [*ids])
            # Redis 6.2 answers a trimmed entry as an empty one (no id): the ids asked for only.
            claimed = [(i, f) for i, f in _entries([(self.stream, claim)]) if i in delivered]
            claimed += [(i, None) for i in await self._trimmed(ids, claimed)]
            if claimed:
                metrics.BUS_RECLAIMED.labels(self.stream, self.group).inc(len(claimed))
                self._log.info("bus.reclaimed", count=len(claimed))
                for entry_id, fields in claimed:  # XCLAIM counted one more delivery
                    self._dispatch(entry_id, fields, delivered[entry_id] + 1)

    async def _trimmed(self, ids: Sequence[str], claimed: list[tuple[str, Fields]]) -> list[str]:
        """Those of ``ids`` that XCLAIM did not return because they left the stream (Redis
        before 7.0 keeps them pending), not because another consumer took them meanwhile."""
        returned = {entry_id for entry_id, _ in claimed}
        missing = [i for i in ids if i not in returned]
        return [i for i in missing if not await self.redis.xrange(self.stream, i, i)]

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

    def _dispatch(self, entry_id: str, fields: Fields, deliveries: int) -> None:
        self._pool.spawn(entry_id, self._process(entry_id, fields, deliveries))

    async def _process(self, entry_id: str, fields: Fields, deliveries: int) -> None:
        """Handle one entry; every path ends acked, dead-lettered, or pending for a retry.

        Redis away meanwhile (a failover, a restart) does not count as the handler failing:
        the entry is handled again in place, with backoff, for up to half ``claim_idle_ms``
        (then it stays pending, and is reclaimed). So is an entry whose handler ran while
        the connections were dropped: its writes may have gone to a demoted master."""
        structlog.contextvars.bind_contextvars(
            stream=self.stream, entry_id=entry_id, deliveries=deliveries
        )
        started = time.perf_counter()
        retry = RetryInPlace(self.redis, self._stop, self.settings.claim_idle_ms / 2000,
                             self._log, "bus.retrying")  # fmt: skip
        try:
            while not await self._process_entry(entry_id, fields, deliveries, retry):
                pass
        finally:
            metrics.BUS_HANDLE_SECONDS.labels(self.stream, self.group).observe(
                time.perf_counter() - started
            )

    async def _process_entry(
        self, entry_id: str, fields: Fields, deliveries: int, retry: RetryInPlace
    ) -> bool:
        """One try at an entry; False if it is to be tried again at once."""
        epoch = connection_epoch(self.redis)
        try:
            if not await self._settle(entry_id, fields, deliveries):
                return True
            check_master(self.redis, epoch, f"{entry_id} was handled")
            await self._acks.ack(entry_id, forget_error=deliveries > 1)
        except Exception as error:
            if not transient(error):
                raise
            metrics.BUS_ERRORS.labels(self.stream, "in_flight").inc()
            if await retry.again(error, entry_id=entry_id):
                return False
            # The entry stays pending and is reclaimed once Redis is back.
            self._log.warning("bus.ack_failed", entry_id=entry_id, error=str(error))
            return True
        metrics.BUS_MESSAGES.labels(self.stream, self.group, "acked").inc()
        return True

    async def _settle(self, entry_id: str, fields: Fields, deliveries: int) -> bool:
        """Hand the entry to the handler, or dead-letter or drop it; True if it is to be
        acknowledged."""
        if not fields:
            # Trimmed from the stream while pending: nothing is left to process.
            await self.redis.xack(self.stream, self.group, entry_id)
            metrics.BUS_MESSAGES.labels(self.stream, self.group, "trimmed").inc()
            self._log.warning("bus.entry_trimmed", entry_id=entry_id)
            return False
        if deliveries > self.settings.max_deliveries:
            last_error = await self.redis.hget(errors_key(self.stream, self.group), entry_id)
            await self._dead_letter(
                entry_id,
                fields,
                f"max_deliveries: failed {deliveries - 1} times; last error: {last_error!s}",
                deliveries,
            )
            return False
        try:
            message = decode(self.model, fields)
        except DecodeError as error:
            await self._dead_letter(entry_id, fields, f"decode: {error}", deliveries)
            return False
        return await self._handle(message, entry_id, fields, deliveries)

    async def _handle(
        self, message: M, entry_id: str, fields: Mapping[str, str], deliveries: int
    ) -> bool:
        """Run the handler; True if its entry is to be acknowledged. Redis away is raised."""
        try:
            await self.handler(message, Receipt(self.stream, self.group, entry_id, deliveries))
        except PermanentError as error:
            await self._dead_letter(entry_id, fields, f"rejected: {error}", deliveries)
            return False
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if transient(error):  # Redis away: tried again in place (see _process)
                raise
            # Any other failure means "retry later".
            text = f"{type(error).__name__}: {error}"[:_ERROR_TEXT_LIMIT]
            await self.redis.hset(errors_key(self.stream, self.group), entry_id, text)
            metrics.BUS_MESSAGES.labels(self.stream, self.group, "failed").inc()
            self._log.warning("bus.handler_failed", entry_id=entry_id, error=text)
            return False
        return True

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
        if len(self._pool):
            self._log.info("bus.draining", in_flight=len(self._pool))
        released = await self._pool.drain(self.settings.shutdown_grace_seconds)
        if released:
            self._log.warning("bus.released_pending", count=len(released))


def _entries(response: Any) -> list[tuple[str, Fields]]:
    """The (id, fields) pairs of an XREADGROUP reply: ``[[stream, [(id, fields), ...]]]``."""
    return [(str(i), f) for _, stream_entries in response or () for i, f in stream_entries]
