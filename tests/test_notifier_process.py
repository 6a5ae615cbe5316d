"""Issue 13 at the process level: real ``python -m services notifier`` replicas, a burst far
larger than their concurrency, one replica SIGKILLed and Redis restarted mid-burst.

Every alert must reach the subscriber, each under one ``webhook-id`` (a resend after a crash
keeps it), and SIGTERM must end both replicas with exit code 0 within the grace period while
sends are in flight and jobs wait. Settings are the defaults but for shorter timeouts (so
that a killed replica's leases end in seconds, not half a minute).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.notifier.jobs import JOBS
from services.notifier.settings import NotifierSettings
from services.notifier.store import SUBSCRIPTIONS
from shared.bus import StreamBus
from shared.connection import connect
from shared.embedded_redis import EmbeddedRedis
from shared.models import Alert
from shared.runtime import FORCED_STOP_MARGIN_SECONDS
from shared.streams import ALERTS, NOTIFIER_GROUP
from tests.factories import make_alert
from tests.helpers import group_done, wait_for
from tests.processes import Fleet
from tests.receivers import SECRET, Receiver, Reply, served

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

BURST = 500
GRACE_SECONDS = 3.0
REPLICAS = ("notifier-1", "notifier-2")
assert 2 * NotifierSettings().concurrency < BURST, "more than both replicas' slots"


@pytest.fixture
async def slow_receiver() -> AsyncIterator[Receiver]:
    """A webhook endpoint taking half a second per request: every slot stays busy."""
    async with served(Receiver(default=Reply(204, delay=0.5))) as receiver:
        yield receiver


async def test_a_burst_survives_a_killed_notifier_and_a_redis_restart(
    tmp_path: Path, slow_receiver: Receiver
) -> None:
    receiver = slow_receiver
    (tmp_path / "subscriptions.yaml").write_text(
        "subscriptions:\n"
        f"  - {{id: desk, channel: webhook, url: '{receiver.url}', secret: {SECRET}}}\n"
    )
    server = EmbeddedRedis(tmp_path / "redis", persist=True)
    server.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update({
        "VIGIL_REDIS_URL": server.url,
        "VIGIL_SUBSCRIPTIONS_FILE": str(tmp_path / "subscriptions.yaml"),
        "VIGIL_ALLOW_PRIVATE_TARGETS": "true",  # the receiver is on loopback
        "VIGIL_LOG__FORMAT": "json",
        "VIGIL_BUS__SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
        "VIGIL_NOTIFIER__WEBHOOK_TIMEOUT_SECONDS": "2",
        "VIGIL_NOTIFIER__LEASE_MARGIN_SECONDS": "1",
    })  # fmt: skip
    fleet = Fleet(env, tmp_path)
    redis = connect(server.url)
    first = [make_alert(f"b1-{n}", story_id=f"b1-{n}") for n in range(BURST)]
    second = [make_alert(f"b2-{n}", story_id=f"b2-{n}") for n in range(BURST)]
    try:
        for replica in REPLICAS:
            await fleet.start(replica)
        await wait_for(lambda: _consumers(redis, len(REPLICAS)), timeout=30, message="replicas")
        await _publish(redis, first)

        await wait_for(lambda: len(receiver.requests) >= 100, timeout=30, message="sends under way")
        await fleet.kill("notifier-1")  # SIGKILL with its slots full: leased jobs, pending alerts

        await wait_for(lambda: len(receiver.alert_ids()) >= 150, timeout=30, message="more sent")
        await redis.aclose()
        await asyncio.to_thread(server.stop)  # Redis restarts: append-only file kept
        assert len(receiver.alert_ids()) < BURST, "the restart falls in the middle of the burst"
        await asyncio.to_thread(server.start)
        redis = connect(server.url)
        await fleet.start("notifier-1")  # same consumer name: it resumes its pending alerts

        await wait_for(lambda: _all_arrived(receiver, first), timeout=60,
                       message="every alert of the first burst")  # fmt: skip
        await wait_for(lambda: _settled(redis), timeout=30, message="jobs settled")

        # SIGTERM with sends in flight and jobs waiting: both stop in time, with exit code 0.
        arrived = len(receiver.requests)
        await _publish(redis, second)
        await wait_for(lambda: len(receiver.requests) >= arrived + 100, timeout=30, message="busy")
        codes, elapsed = await _terminate(fleet)
        assert codes == dict.fromkeys(REPLICAS, 0), codes
        assert elapsed < GRACE_SECONDS + FORCED_STOP_MARGIN_SECONDS, elapsed
        assert await redis.hlen(JOBS) > 0, "work was left for the next start"

        for replica in REPLICAS:
            await fleet.start(replica)
        await wait_for(lambda: _all_arrived(receiver, second), timeout=60,
                       message="every alert of the second burst after a restart")  # fmt: skip
        await wait_for(lambda: _settled(redis), timeout=30, message="jobs settled again")
        codes, _ = await _terminate(fleet)
        assert codes == dict.fromkeys(REPLICAS, 0), codes
    finally:
        await fleet.terminate_all()
        await redis.aclose()
        server.stop()

    ids_of: defaultdict[str, set[str]] = defaultdict(set)
    alerts_of: defaultdict[str, set[str]] = defaultdict(set)
    for received in receiver.accepted():
        ids_of[received.alert_id].add(received.webhook_id)
        alerts_of[received.webhook_id].add(received.alert_id)
    assert set(ids_of) == {a.alert_id for a in first + second}, "no alert lost"
    assert all(len(ids) == 1 for ids in ids_of.values()), "a resend never mints a new id"
    assert all(len(alerts) == 1 for alerts in alerts_of.values())
    resent = len(receiver.accepted()) - len(ids_of)
    print(f"\nprocess burst: alerts={len(ids_of)} resent_same_id={resent}")


async def _publish(redis: Redis, alerts: list[Alert]) -> None:
    bus = StreamBus(redis)
    for alert in alerts:
        await bus.publish(ALERTS, alert)


async def _consumers(redis: Redis, count: int) -> bool:
    """Both replicas have joined the group and stored the subscriptions file."""
    if not await redis.hexists(SUBSCRIPTIONS, "desk"):
        return False
    try:
        consumers = await redis.xinfo_consumers(ALERTS, NOTIFIER_GROUP)
    except ResponseError:  # the group does not exist yet
        return False
    return len(consumers) >= count


def _all_arrived(receiver: Receiver, alerts: list[Alert]) -> bool:
    return receiver.alert_ids() >= {a.alert_id for a in alerts}


async def _settled(redis: Redis) -> bool:
    return int(await redis.hlen(JOBS)) == 0 and await group_done(redis, ALERTS)


async def _terminate(fleet: Fleet) -> tuple[dict[str, int], float]:
    """SIGTERM every replica at once; their exit codes and how long the slowest took."""
    started = time.monotonic()
    processes = dict(fleet.processes)
    for process in processes.values():
        process.send_signal(signal.SIGTERM)
    codes = {}
    for replica, process in processes.items():
        codes[replica] = await asyncio.wait_for(process.wait(), timeout=30)
    fleet.processes.clear()
    return codes, time.monotonic() - started
