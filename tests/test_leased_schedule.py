"""The leased schedule (shared/schedule.py) against a real redis-server: claims never overlap,
a lapsed lease is claimed again, ``put`` reschedules, ``finish`` removes; and on a cluster."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from redis.asyncio import Redis

from shared.schedule import LeasedSchedule

NOW = 1_800_000_000.0
LEASE = 30.0
KEYS = ["{test:sched}:a", "{test:sched}:b"]  # one hash tag: one cluster slot


async def test_two_claimers_never_get_the_same_item(redis: Redis) -> None:
    items = {f"item-{n}": NOW - n for n in range(200)}
    await LeasedSchedule(redis, KEYS[:1]).put(items)
    first, second = LeasedSchedule(redis, KEYS[:1]), LeasedSchedule(redis, KEYS[:1])
    claimed: list[str] = []
    while True:
        rounds = await asyncio.gather(
            *(claimer.claim(NOW, 7, [LEASE]) for claimer in (first, second, first, second))
        )
        batch = [item for item, _ in itertools.chain.from_iterable(rounds)]
        if not batch:
            break
        claimed += batch
    assert sorted(claimed) == sorted(items), "each item claimed exactly once"


async def test_a_claim_returns_due_times_and_leaves_the_rest(redis: Redis) -> None:
    schedule = LeasedSchedule(redis, KEYS[:1])
    await schedule.put({"due": NOW - 5, "later": NOW + 60})
    assert await schedule.claim(NOW, 10, [LEASE]) == [("due", NOW - 5)]
    assert await schedule.due_times(["due", "later", "absent"]) == [NOW + LEASE, NOW + 60, None]
    assert await schedule.next_due() == NOW + LEASE


async def test_an_expired_lease_is_claimed_again(redis: Redis) -> None:
    schedule = LeasedSchedule(redis, KEYS[:1])
    await schedule.put({"job": NOW})
    assert [item for item, _ in await schedule.claim(NOW, 10, [LEASE])] == ["job"]
    assert await schedule.claim(NOW + LEASE - 1, 10, [LEASE]) == [], "leased"
    assert [item for item, _ in await schedule.claim(NOW + LEASE, 10, [LEASE])] == ["job"]


async def test_put_reschedules_and_finish_removes(redis: Redis) -> None:
    schedule = LeasedSchedule(redis, KEYS[:1])
    await schedule.put({"job": NOW})
    await schedule.claim(NOW, 10, [LEASE])
    await schedule.put({"job": NOW + 5})  # the worker's next due time replaces the lease
    assert await schedule.claim(NOW + 4, 10, [LEASE]) == []
    assert await schedule.claim(NOW + 5, 10, [LEASE]) == [("job", NOW + 5)]
    await schedule.finish("job")
    assert await schedule.claim(NOW + 10 * LEASE, 10, [LEASE]) == []
    assert await schedule.next_due() is None


async def test_put_only_new_or_only_existing(redis: Redis) -> None:
    schedule = LeasedSchedule(redis, KEYS[:1])
    assert await schedule.put({"a": NOW}) == 1
    assert await schedule.put({"a": NOW + 9, "b": NOW + 9}, nx=True) == 1, "a kept its time"
    await schedule.put({"a": NOW + 1, "c": NOW + 1}, xx=True)
    assert await schedule.due_times(["a", "b", "c"]) == [NOW + 1, NOW + 9, None]


async def test_each_set_has_its_lease_and_claims_take_turns(redis: Redis) -> None:
    schedule = LeasedSchedule(redis, KEYS)
    await schedule.put({f"a{n}": NOW for n in range(3)}, key=KEYS[0])
    await schedule.put({f"b{n}": NOW for n in range(3)}, key=KEYS[1])
    turns = [(await schedule.claim(NOW, 1, [10.0, 20.0]))[0][0][0] for _ in range(4)]
    assert turns in (["a", "b", "a", "b"], ["b", "a", "b", "a"]), "no set starves the other"
    assert await schedule.due_times(["a0"], KEYS[0]) == [NOW + 10]
    assert await schedule.due_times(["b0"], KEYS[1]) == [NOW + 20]
    assert await schedule.count_due(NOW) == [1, 1]


async def test_put_moves_an_item_between_sets_and_finish_clears_all(redis: Redis) -> None:
    schedule = LeasedSchedule(redis, KEYS)
    await schedule.put({"job": NOW}, key=KEYS[0])
    await schedule.put({"job": NOW}, key=KEYS[1], also=lambda pipe: pipe.set("{test:sched}:x", 1))
    assert await schedule.due_times(["job"], KEYS[0]) == [None]
    assert await schedule.due_times(["job"], KEYS[1]) == [NOW]
    assert await redis.get("{test:sched}:x") == "1", "the caller's commands ran with it"
    await schedule.finish("job")
    assert await schedule.count_due(NOW) == [0, 0]


@pytest.mark.timeout(180)
async def test_the_schedule_runs_on_a_cluster(cluster_client: Redis) -> None:
    schedule = LeasedSchedule(cluster_client, KEYS)
    await schedule.put({"a": NOW}, key=KEYS[0])
    await schedule.put({"b": NOW}, key=KEYS[1])
    claimed = await schedule.claim(NOW, 10, [LEASE, LEASE])
    assert sorted(item for item, _ in claimed) == ["a", "b"]
    await schedule.finish("a")
    assert await schedule.next_due() == NOW + LEASE
