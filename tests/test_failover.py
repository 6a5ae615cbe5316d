"""Failover is a blip: the pipeline keeps running while its Redis master changes, readiness
turns false meanwhile, and no alert is lost or sent under a second webhook-id."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as syncredis
from prometheus_client import REGISTRY

from services.settings import Settings
from shared.aio import sleep_or_stop
from shared.embedded_redis import EmbeddedRedis
from shared.settings import BusSettings
from shared.streams import ALERTS, ARTICLES, REPLAYS
from tests.helpers import background, wait_for
from tests.pipeline import ready, running_pipeline
from tests.topologies import NO_SYNC_DELAY, SentinelDeployment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


async def _not_ready(port: int) -> bool:
    return not await ready(port)


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
    """A master and its replica, in sync."""
    master = EmbeddedRedis(tmp_path / "a", persist=False, extra_args=NO_SYNC_DELAY)
    master.start()
    replica = EmbeddedRedis(
        tmp_path / "b",
        persist=False,
        extra_args=["--replicaof", "127.0.0.1", str(master.port), *NO_SYNC_DELAY],
    )
    replica.start()
    deadline = time.monotonic() + 10
    while _role(replica) != "slave":
        assert time.monotonic() < deadline, "the replica did not sync"
        time.sleep(0.05)
    yield master, replica
    replica.stop()
    master.stop()


async def test_a_master_turned_replica_is_a_blip(
    settings: Settings, tmp_path: Path, pair: tuple[EmbeddedRedis, EmbeddedRedis]
) -> None:
    """The server behind ``redis://`` is demoted (every write: READONLY), then promoted again,
    as a managed Redis does behind its endpoint: nothing crashes, readiness is false while it
    lasts, and the alerts published meanwhile arrive afterwards under their one id. The bus
    keeps its default timings."""
    first, second = pair
    config = settings.model_copy(update={"redis_url": first.url, "bus": BusSettings()})
    async with running_pipeline(config, tmp_path) as flow:
        flow.wire.publish(3)
        await flow.wait_delivered(30, "the first alerts")
        assert await ready(config.http.port)

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
        await wait_for(lambda: ready(config.http.port), timeout=15, message="ready again")
        assert not flow.task.done()
    flow.assert_one_id_per_alert()


def _redis_errors() -> float:
    """Redis errors met by every consumer of this process so far."""
    return sum(
        REGISTRY.get_sample_value("vigil_bus_errors_total", {"stream": s, "kind": "connection"})
        or 0.0
        for s in (ARTICLES, ALERTS, REPLAYS)
    )


@pytest.fixture
def sentinel_deployment(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[SentinelDeployment]:
    """A master, its replicas (as many as the test's ``replicas`` parameter) and a Sentinel of
    this test's own: the test fails it over."""
    sentinel = SentinelDeployment(
        tmp_path / "redis", replicas=request.node.callspec.params["replicas"]
    )
    sentinel.start()
    yield sentinel
    sentinel.stop()


class Readiness:
    """Samples ``/readyz`` every 50 ms while a failover happens."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.samples: list[bool] = []

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.samples.append(await ready(self.port))
            await sleep_or_stop(stop, 0.05)


@pytest.mark.parametrize(
    ("how", "replicas", "wait"),
    [("planned", 1, 0), ("killed", 1, 0), ("planned", 2, 1), ("killed", 2, 1)],
)
async def test_failover_in_the_middle_of_a_flow(
    settings: Settings,
    tmp_path: Path,
    sentinel_deployment: SentinelDeployment,
    how: str,
    replicas: int,
    wait: int,
) -> None:
    """``SENTINEL FAILOVER``, or the master SIGKILLed, while alerts are on their way: the
    services stay up, work resumes on the new master within 30 s, every alert arrives, and
    none under a second webhook-id (a re-delivery keeps its id; the count is printed). With
    two replicas, relied-on writes also wait for one (``VIGIL_BUS__WAIT_REPLICAS=1``).
    The bus keeps its default timings (claim idle 60 s), not the suite's short ones: recovery
    must not wait for a stranded entry to be reclaimed."""
    deployment = sentinel_deployment
    config = settings.model_copy(update={
        "redis_url": deployment.url,
        "bus": BusSettings(wait_replicas=wait),
    })  # fmt: skip
    async with running_pipeline(config, tmp_path) as flow:
        flow.wire.publish(4)
        await flow.wait_delivered(30, "the alerts before the failover")
        readiness = Readiness(config.http.port)
        async with background(readiness):
            flow.wire.publish(12)  # fetched, classified and delivered while the master changes
            started = time.monotonic()
            fail_over = deployment.failover if how == "planned" else deployment.kill_master
            await asyncio.to_thread(fail_over)
            switched = time.monotonic() - started
            flow.wire.publish(4)
            await flow.wait_delivered(30, "every alert, after the failover")
            resumed = time.monotonic() - started
        assert not flow.task.done(), "the services stayed up"
    flow.assert_one_id_per_alert()
    repeats = sum(flow.repeats(s) for s in flow.subscribers)
    print(f"\nfailover ({how}, {replicas} replica(s), WAIT {wait}): new master after "
          f"{switched:.1f}s, every alert delivered {resumed:.1f}s after the failover began; "
          f"{len(flow.wire.urls())} alerts x {len(flow.subscribers)} subscribers, {repeats} "
          f"repeated under their own id, readiness false in {readiness.samples.count(False)} "
          f"of {len(readiness.samples)} samples")  # fmt: skip
    if how == "killed":
        assert False in readiness.samples, "not ready while there was no master"
