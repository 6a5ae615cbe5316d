"""Writes that must reach a replica before they are acted on: ``WAIT``.

Redis replicates asynchronously. A failover promotes a replica that may lack the master's
last writes, and after a planned one the old master goes on accepting writes, for seconds,
that the new master never sees. So a step whose effect is relied on is followed by ``WAIT``
on the same connection: the dispatcher's claim of a job it is about to send, the intake's job
before its alert is acknowledged, a stream entry before its source is. If no replica
acknowledged the step in time, :class:`NotReplicatedError` (a transient error) says so, and
the step is retried, on the new master once the failover is over, instead of being acted on.

How many replicas must acknowledge: ``VIGIL_BUS__WAIT_REPLICAS``, 0 (no ``WAIT``) unless
set. Set it to 1 where every master keeps a replica *after* a failover, that is with two
replicas or more (the Kubernetes manifests run three Redis pods): with a single replica, the
promoted one has none left when its old master died, no write is ever acknowledged, and the
pipeline would stop until a replica returns. docs/operations.md has the measurements.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError

from shared import metrics
from shared.settings import BusSettings


class NotReplicatedError(RedisConnectionError):
    """No replica acknowledged a write in time: the master may be cut off (a failover under
    way). Transient: the step is tried again."""


class Durable:
    """Runs pipelines whose writes a replica must acknowledge before the caller goes on."""

    def __init__(self, redis: Redis, replicas: int, timeout_ms: int) -> None:
        self.redis = redis
        self.replicas = replicas
        self.timeout_ms = timeout_ms

    @classmethod
    def of(cls, redis: Redis, settings: BusSettings) -> Durable:
        """The policy ``settings`` ask for on ``redis``."""
        return cls(redis, settings.wait_replicas, settings.wait_timeout_ms)

    async def execute(self, key: str, queue: Callable[[Pipeline], object]) -> list[Any]:
        """Run the commands ``queue`` adds to a pipeline, then ``WAIT`` on the node of ``key``
        (all the commands must touch that node); returns their results."""
        async with self.redis.pipeline(transaction=False) as pipe:
            queue(pipe)
            if self.replicas:
                await self._wait(pipe, key)
            results: list[Any] = await pipe.execute()
        if not self.replicas:
            return results
        acknowledged = int(results.pop())
        if acknowledged < self.replicas:
            metrics.REDIS_NOT_REPLICATED.inc()
            raise NotReplicatedError(
                f"{acknowledged} of {self.replicas} replicas acknowledged the write within "
                f"{self.timeout_ms} ms"
            )
        return results

    async def _wait(self, pipe: Pipeline, key: str) -> None:
        if isinstance(self.redis, RedisCluster):
            # One pipeline runs on one connection per node: WAIT goes where the key lives.
            await self.redis.initialize()
            node = self.redis.get_node_from_key(key)
            pipe.execute_command("WAIT", self.replicas, self.timeout_ms, target_nodes=node)
        else:
            pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
