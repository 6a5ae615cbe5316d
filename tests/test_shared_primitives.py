"""The small shared primitives: the retry policy, the task pool's drain, the wake-up call and
reading a hash into a model."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from shared.aio import Wakeup, sleep_or_stop
from shared.connection import connect, drop_connections
from shared.hashes import from_hash, read_hash
from shared.resilience import TRANSIENT_ERRORS
from shared.retry import COMMAND, EQUAL_JITTER, FULL_JITTER, RECONNECT, RetryPolicy
from shared.taskpool import TaskPool
from shared.torn import torn_connection


def test_exponential_steps_double_up_to_the_cap() -> None:
    policy = RetryPolicy(base=1.0, cap=10.0, jitter=(1.0, 1.0))
    assert [policy.delay(n) for n in range(1, 6)] == [2.0, 4.0, 8.0, 10.0, 10.0]
    assert policy.delay(100_000) == 10.0, "a long run of failures does not overflow"
    assert not policy.gives_up(100_000)


@pytest.mark.parametrize(
    ("jitter", "low", "high"), [(FULL_JITTER, 0.0, 8.0), (EQUAL_JITTER, 4.0, 8.0)]
)
def test_jitter_spreads_each_step(jitter: tuple[float, float], low: float, high: float) -> None:
    policy = RetryPolicy(base=1.0, cap=100.0, jitter=jitter)
    assert policy.delay(3, draw=0.0) == low
    assert policy.delay(3, draw=1.0) == high
    assert all(low <= policy.delay(3) <= high for _ in range(200))


def test_a_schedule_gives_up_after_its_last_step() -> None:
    policy = RetryPolicy.schedule([5, 300, 1800], spread=0.2)
    assert [policy.delay(n, draw=0.5) for n in (1, 2, 3)] == [5, 300, 1800]
    assert policy.delay(1, draw=0.0) == pytest.approx(4.0)
    assert policy.delay(1, draw=1.0) == pytest.approx(6.0)
    assert not policy.gives_up(3)
    assert policy.gives_up(4)


def test_the_defaults_in_use() -> None:
    assert RECONNECT.delay(1, draw=1.0) == pytest.approx(0.2)
    assert RECONNECT.delay(50, draw=1.0) == 10.0
    assert COMMAND.gives_up(4)
    assert COMMAND.redis_retry().get_retries() == 3


async def test_drain_lets_quick_tasks_finish_and_cancels_the_rest() -> None:
    done: list[str] = []
    ended: list[str] = []
    pool: TaskPool[str] = TaskPool(4, on_done=lambda _, key: ended.append(key))

    async def work(key: str, seconds: float) -> None:
        await asyncio.sleep(seconds)  # simulated work, not synchronisation
        done.append(key)

    pool.spawn("quick", work("quick", 0.01))
    pool.spawn("stuck", work("stuck", 3600))
    assert pool.free == 2
    assert pool.keys() == {"quick", "stuck"}
    assert await pool.drain(grace=1.0) == ["stuck"]
    assert done == ["quick"]
    assert sorted(ended) == ["quick", "stuck"]
    assert len(pool) == 0
    assert await pool.drain(grace=1.0) == [], "nothing left to drain"


async def test_wait_for_slot_returns_once_a_task_ends() -> None:
    release = asyncio.Event()
    pool: TaskPool[int] = TaskPool(1)

    async def hold() -> None:
        await release.wait()

    pool.spawn(1, hold())
    waiting = asyncio.create_task(pool.wait_for_slot())
    await asyncio.sleep(0)
    assert not waiting.done()
    release.set()
    await asyncio.wait_for(waiting, timeout=5)
    assert pool.free == 1


async def test_a_wakeup_call_made_while_busy_is_not_lost() -> None:
    stop, wake = asyncio.Event(), Wakeup()
    wake.set()  # the call arrives while the loop is busy elsewhere
    assert await asyncio.wait_for(wake.wait(stop, seconds=60), timeout=5) is False
    assert await wake.wait(stop, seconds=0.01) is False, "the call was taken: this one times out"
    stop.set()
    assert await asyncio.wait_for(wake.wait(stop, seconds=60), timeout=5) is True
    assert await asyncio.wait_for(sleep_or_stop(stop, 60), timeout=5) is True


@dataclass(frozen=True)
class _Record:
    count: int = 0
    at: float | None = None
    note: str = ""


async def test_a_hash_reads_into_a_model(redis: Redis) -> None:
    await redis.hset("record", mapping={"count": 3, "at": 1.5, "note": "", "other": "x"})
    assert from_hash(_Record, await read_hash(redis, "record")) == _Record(3, 1.5, "")
    assert from_hash(_Record, await read_hash(redis, "missing")) == _Record()
    assert from_hash(_Record, {"at": ""}) == _Record(), "an emptied field takes its default"


def _raised_in(filename: str) -> AttributeError:
    """An AttributeError raised by code whose file is ``filename``."""
    namespace: dict[str, object] = {}
    exec(compile("def write(w):\n    w.writelines([])\n", filename, "exec"), namespace)
    try:
        namespace["write"](None)  # type: ignore[operator]
    except AttributeError as error:
        return error
    raise AssertionError("no AttributeError")


def test_a_connection_torn_inside_redis_py_is_transient_any_other_attribute_error_is_a_bug() -> (
    None
):
    inside = os.path.join(os.sep, "venv", "redis", "asyncio", "connection.py")
    assert torn_connection(_raised_in(inside))
    assert not torn_connection(_raised_in(os.path.join(os.sep, "work", "shared", "bus.py")))
    assert not torn_connection(AttributeError("'Article' object has no attribute 'x'"))
    assert not torn_connection(ValueError("'NoneType' object"))


async def test_connections_dropped_under_busy_commands_fail_them_as_connection_errors(
    redis_url: str,
) -> None:
    """Dropping a client's connections (after a failover) while a hundred tasks send commands
    tears some of them mid-write: redis-py would raise ``AttributeError`` there (the console's
    live feed once died of it); Vigil's connections report a ``ConnectionError``, which every
    loop treats as transient."""
    client = connect(redis_url)
    outcomes: Counter[str] = Counter()
    dropping = asyncio.Event()

    async def command(n: int) -> None:
        while not dropping.is_set() or outcomes["dropped"] < 100:
            try:
                await client.set(f"torn:{n}", n)
                outcomes["ok"] += 1
            except TRANSIENT_ERRORS:
                outcomes["connection error"] += 1
            except Exception as error:
                outcomes[f"{type(error).__name__}: {error}"] += 1
            await asyncio.sleep(0)

    async def drop() -> None:
        dropping.set()
        while outcomes["dropped"] < 100:
            await drop_connections(client)
            outcomes["dropped"] += 1
            await asyncio.sleep(0.002)  # a drop every few milliseconds, not synchronisation

    try:
        await asyncio.gather(drop(), *(command(n) for n in range(100)))
    finally:
        await client.aclose()
    assert outcomes["connection error"] > 0, "the drops did tear commands"
    assert set(outcomes) <= {"ok", "connection error", "dropped"}, outcomes
