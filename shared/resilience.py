"""Redis away for a moment: the errors that mean it, and how every loop waits it out.

Restarts, failovers and resharding surface as many different errors, and all of them mean
"try again shortly", never "stop the service":

- connection resets, refusals and timeouts; ``LOADING`` (a server reading its data back);
- ``READONLY``: the server was a master and is now a replica (a Sentinel failover, a managed
  service's switchover). The connections made before are useless: they are all dropped so
  the next command finds the current master (:func:`shared.connection.drop_connections`);
  likewise when no replica acknowledged a write (:mod:`shared.durability`);
- ``MASTERDOWN``: a replica cut off from its master;
- ``TRYAGAIN``, ``CLUSTERDOWN``, ``MOVED``/``ASK`` beyond the cluster client's own retries,
  a slot not covered for a moment: a cluster failing over or resharding.

``CROSSSLOT`` is not among them: it is a bug in a key layout, and retrying would not fix it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    ReadOnlyError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared import metrics
from shared.aio import sleep_or_stop
from shared.connection import connection_epoch, current_master, drop_connections
from shared.durability import NotReplicatedError
from shared.logging import get_logger
from shared.retry import RECONNECT, RetryPolicy
from shared.torn import torn_connection

log = get_logger("redis")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,  # resets, refusals; LOADING (BusyLoadingError); no master known yet
    RedisTimeoutError,
    OSError,
    ReadOnlyError,
    ClusterError,  # CLUSTERDOWN and MASTERDOWN (MasterDownError) included
    ClusterDownError,
    TryAgainError,
    AskError,  # MOVED (MovedError) included
    SlotNotCoveredError,
)


class MasterChangedError(RedisConnectionError):
    """The connections were dropped for a new master while a piece of work was writing: its
    writes may have gone to the old master, so it is done again (a transient error)."""


def check_master(redis: Redis, epoch: int, what: str) -> None:
    """Raise :class:`MasterChangedError` if ``redis``'s connections were dropped for a new
    master since ``epoch`` (:func:`~shared.connection.connection_epoch`) while ``what``."""
    if connection_epoch(redis) != epoch:
        raise MasterChangedError(f"the master changed while {what}")


# What redis-py's Sentinel-managed connection raises in place of READONLY.
_DEMOTED = "previous master is now a slave"


def master_moved(error: BaseException) -> bool:
    """Whether ``error`` says the connection leads to a server that is no longer the master,
    or to one cut off from its replicas (no replica acknowledged a write)."""
    return isinstance(error, ReadOnlyError | NotReplicatedError) or _DEMOTED in str(error)


def transient(error: BaseException) -> bool:
    """Whether ``error`` means Redis is away for a moment (see the module)."""
    return isinstance(error, TRANSIENT_ERRORS) or torn_connection(error)


class Backoff:
    """The waits of one loop while Redis is away.

    :meth:`pause` counts a failure, drops every pooled connection when the error says the
    master moved, logs ``event`` (with the error, the attempt and the delay) on ``logger``,
    and waits as ``policy`` says, waking early on ``stop``; :meth:`reset` after a success.
    """

    def __init__(
        self, redis: Redis, logger: Any, event: str, *, policy: RetryPolicy = RECONNECT
    ) -> None:
        self.redis = redis
        self.failures = 0
        self._log = logger
        self._event = event
        self._policy = policy

    def reset(self) -> None:
        self.failures = 0

    async def pause(self, stop: asyncio.Event, error: BaseException, **fields: object) -> float:
        """Count a failure and wait before the next try; returns the delay waited."""
        self.failures += 1
        if master_moved(error):
            await drop_connections(self.redis)
        delay = self._policy.delay(self.failures)
        self._log.warning(self._event, error=str(error), attempt=self.failures,
                          delay=round(delay, 3), **fields)  # fmt: skip
        await sleep_or_stop(stop, delay)
        return delay


class RetryInPlace:
    """The tries of one piece of work (an entry, a job) that met Redis away, made in place by
    the task that holds it, for up to ``seconds``: long enough for a failover, short enough
    that the work's lease (a pending entry's claim time, a job's lease) has not run out and
    nobody else has taken it over. The work must be safe to do again: its writes may have
    been made, or made on an old master.
    """

    def __init__(
        self, redis: Redis, stop: asyncio.Event, seconds: float, logger: Any, event: str
    ) -> None:
        self._backoff = Backoff(redis, logger, event)
        self._stop = stop
        self._deadline = time.monotonic() + seconds

    async def again(self, error: BaseException, **fields: object) -> bool:
        """Wait before the next try (dropping connections to an old master); False, at once,
        if there is no time left or the service is stopping."""
        if self._stop.is_set() or time.monotonic() >= self._deadline:
            return False
        await self._backoff.pause(self._stop, error, **fields)
        return not self._stop.is_set()


async def follow_master(redis: Redis, stop: asyncio.Event, interval: float = 1.0) -> None:
    """For a Sentinel-managed master: notice a new master within ``interval`` and drop every
    connection to the old one.

    After a failover the old master keeps accepting writes until a Sentinel turns it into a
    replica (up to ten seconds, measured), and pooled connections would keep writing there:
    writes the new master never sees. Asking the Sentinels every second bounds that window.
    Returns at once for other deployments.
    """
    known = None
    while not stop.is_set():
        try:
            address = await current_master(redis)
        except TRANSIENT_ERRORS as error:  # no master right now: the failover is under way
            log.info("redis.master_unknown", error=str(error))
        else:
            if address is None:
                return
            if known is not None and address != known:
                log.warning("redis.master_changed", old=f"{known[0]}:{known[1]}",
                            new=f"{address[0]}:{address[1]}")  # fmt: skip
                metrics.REDIS_MASTER_CHANGES.inc()
                await drop_connections(redis)
            known = address
        await sleep_or_stop(stop, interval)
