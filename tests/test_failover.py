"""Failover is a blip: the pipeline keeps running while its Redis master changes, readiness
turns false meanwhile, and no alert is lost or sent under a second webhook-id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import redis as syncredis
from prometheus_client import REGISTRY

from shared.embedded_redis import EmbeddedRedis
from shared.settings import Settings
from shared.streams import ALERTS, ARTICLES, DELIVERIES
from tests.helpers import wait_for
from tests.pipeline import running_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


async def _ready(port: int) -> bool:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/readyz") as response,
    ):
        return response.status == 200


async def _not_ready(port: int) -> bool:
    return not await _ready(port)


def _role(server: EmbeddedRedis) -> str:
    with syncredis.Redis(port=server.port, decode_responses=True) as client:
        info = client.info("replication")
        up = info.get("master_link_status", "up") == "up"
        return str(info["role"]) + ("" if up else ":syncing")


def _replicate(replica: EmbeddedRedis, master: EmbeddedRedis | None) -> None:
    with syncredis.Redis(port=replica.port, decode_responses=True) as client:
        if master is None:
            client.replicaof("NO", "ONE")
        else:
            client.replicaof("127.0.0.1", master.port)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[EmbeddedRedis, EmbeddedRedis]]:
    """A master and its replica."""
    master = EmbeddedRedis(tmp_path / "a", persist=False)
    master.start()
    replica = EmbeddedRedis(
        tmp_path / "b", persist=False, extra_args=["--replicaof", "127.0.0.1", str(master.port)]
    )
    replica.start()
    yield master, replica
    replica.stop()
    master.stop()


async def test_a_master_turned_replica_is_a_blip(
    settings: Settings, tmp_path: Path, pair: tuple[EmbeddedRedis, EmbeddedRedis]
) -> None:
    """The server behind ``redis://`` is demoted (every write: READONLY), then promoted again,
    as a managed Redis does behind its endpoint: nothing crashes, readiness is false while it
    lasts, and the alerts published meanwhile arrive afterwards under their one id."""
    first, second = pair
    config = settings.model_copy(update={"redis_url": first.url})
    async with running_pipeline(config, tmp_path) as flow:
        flow.wire.publish(3)
        await flow.wait_delivered(30, "the first alerts")
        assert await _ready(config.http.port)

        errors = _redis_errors()
        _replicate(second, None)
        _replicate(first, second)
        await wait_for(lambda: _role(first) == "slave", timeout=10, message="the demotion")
        flow.wire.publish(3)
        await wait_for(lambda: _not_ready(config.http.port), timeout=10,
                       message="readiness to turn false")  # fmt: skip
        await wait_for(lambda: _redis_errors() >= errors + 6, timeout=10,
                       message="the consumers to meet READONLY again and again")  # fmt: skip
        assert not flow.task.done(), "the services stay up on READONLY"

        _replicate(first, None)
        _replicate(second, first)
        await flow.wait_delivered(30, "the alerts published while the server was a replica")
        await wait_for(lambda: _ready(config.http.port), timeout=15, message="ready again")
        assert not flow.task.done()
    flow.assert_one_id_per_alert()


def _redis_errors() -> float:
    """Redis errors met by every consumer of this process so far."""
    return sum(
        REGISTRY.get_sample_value("vigil_bus_errors_total", {"stream": s, "kind": "connection"})
        or 0.0
        for s in (ARTICLES, ALERTS, DELIVERIES)
    )
