"""Consumers of gone replicas are removed from their group, never one that holds entries."""

from __future__ import annotations

from redis.asyncio import Redis

from shared.bus import Receipt, StreamBus
from shared.models import Alert
from shared.settings import BusSettings
from shared.streams import ALERTS, NOTIFIER_GROUP
from tests.factories import make_alert
from tests.helpers import background, wait_for


async def _consumers(redis: Redis) -> dict[str, int]:
    rows = await redis.xinfo_consumers(ALERTS, NOTIFIER_GROUP)
    return {str(row["name"]): int(row["pending"]) for row in rows}


async def _idle_at_least(redis: Redis, ms: int) -> bool:
    rows = await redis.xinfo_consumers(ALERTS, NOTIFIER_GROUP)
    return all(int(row["idle"]) >= ms for row in rows)


async def test_idle_consumers_without_pending_entries_are_removed(redis: Redis) -> None:
    bus = StreamBus(redis)
    await bus.ensure_group(ALERTS, NOTIFIER_GROUP)
    for n in range(2):
        await bus.publish(ALERTS, make_alert(f"a{n}"))
    # "done" read an entry and acknowledged it; "holding" read one and died with it pending.
    read: list[tuple[str, list[tuple[str, dict[str, str]]]]] = await redis.xreadgroup(
        NOTIFIER_GROUP, "done", {ALERTS: ">"}, count=1
    )  # type: ignore[assignment]
    [(_, [(done_id, _)])] = read
    await redis.xack(ALERTS, NOTIFIER_GROUP, done_id)
    await redis.xreadgroup(NOTIFIER_GROUP, "holding", {ALERTS: ">"}, count=1)
    await redis.xgroup_createconsumer(ALERTS, NOTIFIER_GROUP, "me")
    await wait_for(lambda: _idle_at_least(redis, 200), message="the consumers to idle")

    removed = await bus.remove_idle_consumers(ALERTS, NOTIFIER_GROUP, idle_seconds=0.2, keep="me")

    assert removed == ["done"]
    assert await _consumers(redis) == {"holding": 1, "me": 0}
    assert await bus.remove_idle_consumers(ALERTS, NOTIFIER_GROUP, idle_seconds=3600,
                                           keep="me") == []  # fmt: skip


async def test_a_running_consumer_sweeps_its_group(redis: Redis) -> None:
    bus = StreamBus(redis, BusSettings(consumer_idle_seconds=0.2, consumer_sweep_seconds=0.2,
                                       block_ms=50))  # fmt: skip
    await bus.ensure_group(ALERTS, NOTIFIER_GROUP)
    await redis.xgroup_createconsumer(ALERTS, NOTIFIER_GROUP, "replica-gone")
    handled: list[str] = []

    async def handler(alert: Alert, _: Receipt) -> None:
        handled.append(alert.alert_id)

    consumer = bus.consumer(stream=ALERTS, group=NOTIFIER_GROUP, name="replica-live",
                            model=Alert, handler=handler)  # fmt: skip
    async with background(consumer):
        await wait_for(lambda: _only_live(redis), timeout=10, message="the gone replica removed")
        await bus.publish(ALERTS, make_alert("a1"))
        await wait_for(lambda: handled, message="the live consumer still works")
    assert handled == ["alert_a1"]


async def _only_live(redis: Redis) -> bool:
    return set(await _consumers(redis)) == {"replica-live"}
