"""WAIT after relied-on writes: it goes to the node that holds the key, and a write that no
replica acknowledged is a transient error, never a silent success."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.crc import key_slot

from shared.connection import connect
from shared.durability import Durable, NotReplicatedError
from shared.embedded_redis import EmbeddedRedis
from tests.topologies import NO_SYNC_DELAY, SLOTS


def _write(key: str) -> Callable[[Pipeline], None]:
    def queue(pipe: Pipeline) -> None:
        pipe.set(key, "1")

    return queue


async def test_no_replica_means_not_replicated(redis: Redis) -> None:
    assert await Durable(redis, 0, 100).execute("k", _write("k")) == [True]
    with pytest.raises(NotReplicatedError, match="0 of 1 replicas"):
        await Durable(redis, 1, 100).execute("k", _write("k"))


async def test_a_replica_acknowledges(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "m", persist=False, extra_args=NO_SYNC_DELAY) as master:
        follows = ["--replicaof", "127.0.0.1", str(master.port)]
        with EmbeddedRedis(tmp_path / "r", persist=False, extra_args=follows):
            client = connect(master.url)
            try:
                assert await Durable(client, 1, 5000).execute("k", _write("k")) == [True]
            finally:
                await client.aclose()


async def test_on_a_cluster_wait_goes_to_the_node_of_the_key(cluster_client: Redis) -> None:
    """Only the first master has a replica: a key in its slots is acknowledged, a key of
    another master is not (a WAIT sent to the wrong node would say otherwise)."""
    keys = [f"k{n}" for n in range(100)]
    first = next(k for k in keys if key_slot(k.encode()) < SLOTS // 3)
    other = next(k for k in keys if key_slot(k.encode()) >= SLOTS // 3)
    durable = Durable(cluster_client, 1, 300)
    assert await durable.execute(first, _write(first)) == [True]
    with pytest.raises(NotReplicatedError):
        await durable.execute(other, _write(other))
