"""The stream bus against a real redis-server: acks, reclaim, dead letters, trimming, restart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from shared.acks import errors_key
from shared.bus import Consumer, PermanentError, Receipt, StreamBus
from shared.connection import drop_connections
from shared.models import Article
from shared.settings import BusSettings
from shared.streams import DEAD
from tests.helpers import background, group_done, wait_for

FAST = BusSettings(
    block_ms=50, claim_idle_ms=200, claim_interval_seconds=0.05, max_deliveries=3,
    shutdown_grace_seconds=2.0, stream_maxlen=100,
)  # fmt: skip


def article(n: int) -> Article:
    return Article(id=f"a{n}", url=f"https://example.org/{n}", title=f"t{n}", source="test")


@pytest.fixture
def stream() -> str:
    """A uniquely named stream per test, so tests never see each other's entries."""
    return f"test:{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def running(consumer: Consumer[Article]) -> AsyncIterator[asyncio.Event]:
    async with background(consumer) as stop:
        yield stop


def make_consumer(
    redis: Redis,
    stream: str,
    handler: Callable[[Article, Receipt], Awaitable[None]],
    *,
    name: str = "c1",
    settings: BusSettings = FAST,
) -> Consumer[Article]:
    bus = StreamBus(redis, settings)
    return bus.consumer(stream=stream, group="g", name=name, model=Article, handler=handler)


async def pending_count(redis: Redis, stream: str) -> int:
    info = await redis.xpending(stream, "g")
    return int(info["pending"])


async def test_messages_are_handled_and_acked(redis: Redis, stream: str) -> None:
    seen: list[str] = []

    async def handle(message: Article, delivery: Receipt) -> None:
        seen.append(message.id)

    bus = StreamBus(redis, FAST)
    for n in range(20):
        await bus.publish(stream, article(n))
    async with running(make_consumer(redis, stream, handle)):
        await wait_for(lambda: len(seen) == 20, message="20 messages handled")
    assert sorted(seen) == sorted(f"a{n}" for n in range(20))
    assert await pending_count(redis, stream) == 0


async def test_entries_published_before_the_group_exists_are_consumed(
    redis: Redis, stream: str
) -> None:
    seen: list[str] = []

    async def handle(message: Article, delivery: Receipt) -> None:
        seen.append(message.id)

    await StreamBus(redis, FAST).publish(stream, article(1))
    async with running(make_consumer(redis, stream, handle)):
        await wait_for(lambda: seen == ["a1"], message="early entry consumed")


async def test_killed_consumer_entry_is_reclaimed_by_another(redis: Redis, stream: str) -> None:
    started = asyncio.Event()
    handled_by: list[tuple[str, int]] = []

    async def hang(message: Article, delivery: Receipt) -> None:
        started.set()
        await asyncio.Event().wait()  # never finishes: the consumer is killed mid-message

    async def handle(message: Article, delivery: Receipt) -> None:
        handled_by.append((message.id, delivery.deliveries))

    await StreamBus(redis, FAST).publish(stream, article(1))
    doomed = asyncio.create_task(
        make_consumer(redis, stream, hang, name="doomed").run(asyncio.Event())
    )
    await wait_for(started.is_set, message="first consumer took the entry")
    doomed.cancel()  # the process dies: no ack, the entry stays pending under "doomed"
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await pending_count(redis, stream) == 1

    async with running(make_consumer(redis, stream, handle, name="survivor")):
        await wait_for(lambda: handled_by, message="entry reclaimed")
    assert handled_by == [("a1", 2)]
    assert await pending_count(redis, stream) == 0


async def test_a_handler_slower_than_the_claim_idle_time_is_not_counted_again(
    redis: Redis, stream: str
) -> None:
    """The consumer's reclaim passes leave an entry in flight in the same consumer alone:
    however long its handler takes, no delivery is counted against it (each pass once
    counted one, toward ``max_deliveries``, and reset its idle time)."""
    release = asyncio.Event()
    calls: list[int] = []

    async def slow(message: Article, delivery: Receipt) -> None:
        calls.append(delivery.deliveries)
        await release.wait()

    async def pending() -> dict[str, int]:
        [row] = await redis.xpending_range(stream, "g", min="-", max="+", count=1)
        return {"idle": int(row["time_since_delivered"]), "deliveries": int(row["times_delivered"])}

    await StreamBus(redis, FAST).publish(stream, article(1))
    async with running(make_consumer(redis, stream, slow)):
        await wait_for(lambda: calls, message="the entry taken")
        # Idle for three claim idle times: a reclaim pass every 50 ms saw it idle past 200 ms.
        await wait_for(
            lambda: _idle_past(pending, 3 * FAST.claim_idle_ms), message="the entry left idle"
        )
        assert (await pending())["deliveries"] == 1
        release.set()
        await wait_for(lambda: group_done(redis, stream), message="the entry acked")
    assert calls == [1]


async def _idle_past(pending: Callable[[], Awaitable[dict[str, int]]], idle_ms: int) -> bool:
    return (await pending())["idle"] >= idle_ms


async def test_an_entry_trimmed_while_its_consumer_was_dead_is_counted_and_let_go(
    redis: Redis, stream: str
) -> None:
    """Trimmed from the stream while pending under a dead consumer: nothing is left to
    handle; the survivor's reclaim pass acknowledges it with a log line and a metric."""
    handled: list[str] = []

    async def handle(message: Article, delivery: Receipt) -> None:
        handled.append(message.id)

    entry_id = await StreamBus(redis, FAST).publish(stream, article(1))
    await redis.xgroup_create(stream, "g", id="0")
    await redis.xreadgroup("g", "doomed", {stream: ">"})  # taken, then its consumer died
    await redis.xdel(stream, entry_id)  # trimmed meanwhile
    labels = {"stream": stream, "group": "g", "outcome": "trimmed"}
    async with running(make_consumer(redis, stream, handle, name="survivor")):
        await wait_for(
            lambda: REGISTRY.get_sample_value("vigil_bus_messages_total", labels),
            message="the trimmed entry counted",
        )
        await wait_for(lambda: group_done(redis, stream), message="nothing left pending")
    assert handled == []


async def test_poison_entry_is_dead_lettered_after_max_deliveries(
    redis: Redis, stream: str
) -> None:
    attempts: list[int] = []

    async def always_fails(message: Article, delivery: Receipt) -> None:
        attempts.append(delivery.deliveries)
        raise RuntimeError("boom")

    await StreamBus(redis, FAST).publish(stream, article(7))
    async with running(make_consumer(redis, stream, always_fails)):
        await wait_for(lambda: redis.xlen(DEAD), message="dead letter written")
    assert attempts == [1, 2, 3]
    letters = await StreamBus(redis, FAST).dead_letters()
    assert len(letters) == 1
    letter = letters[0][1]
    assert letter.source_stream == stream
    assert letter.deliveries == 4
    assert letter.reason.startswith("max_deliveries:")
    assert "RuntimeError: boom" in letter.reason
    assert '"id":"a7"' in letter.fields["data"]
    assert await pending_count(redis, stream) == 0


async def test_undecodable_entry_is_dead_lettered_and_the_rest_flows(
    redis: Redis, stream: str
) -> None:
    seen: list[str] = []

    async def handle(message: Article, delivery: Receipt) -> None:
        seen.append(message.id)

    await redis.xadd(stream, {"type": "Article", "v": "1", "data": "{not json"})
    await redis.xadd(stream, {"garbage": "x"})
    await StreamBus(redis, FAST).publish(stream, article(2))
    async with running(make_consumer(redis, stream, handle)):
        await wait_for(lambda: seen == ["a2"], message="valid entry handled")
        await wait_for(lambda: _xlen_is(redis, DEAD, 2), message="two dead letters")
    reasons = sorted(letter.reason for _, letter in await StreamBus(redis).dead_letters())
    assert reasons[0] == "decode: entry has no 'type' field (expected 'Article')"
    assert reasons[1].startswith("decode: invalid Article")


async def _xlen_is(redis: Redis, stream: str, n: int) -> bool:
    return int(await redis.xlen(stream)) == n


async def test_permanent_error_is_dead_lettered_at_once(redis: Redis, stream: str) -> None:
    async def reject(message: Article, delivery: Receipt) -> None:
        raise PermanentError("not for us")

    await StreamBus(redis, FAST).publish(stream, article(3))
    async with running(make_consumer(redis, stream, reject)):
        await wait_for(lambda: redis.xlen(DEAD), message="dead letter written")
    [(_, letter)] = await StreamBus(redis).dead_letters()
    assert letter.reason == "rejected: not for us"
    assert letter.deliveries == 1


async def test_replay_puts_the_entry_back_and_it_is_processed(redis: Redis, stream: str) -> None:
    fail = True
    seen: list[str] = []

    async def handle(message: Article, delivery: Receipt) -> None:
        if fail:
            raise PermanentError("downstream broken")
        seen.append(message.id)

    bus = StreamBus(redis, FAST)
    await bus.publish(stream, article(4))
    async with running(make_consumer(redis, stream, handle)):
        await wait_for(lambda: redis.xlen(DEAD), message="dead-lettered")
        fail = False
        [(dead_id, _)] = await bus.dead_letters()
        assert await bus.replay(dead_id) is not None
        await wait_for(lambda: seen == ["a4"], message="replayed entry handled")
    assert await redis.xlen(DEAD) == 0


async def test_trimming_keeps_the_stream_bounded(redis: Redis, stream: str) -> None:
    bus = StreamBus(redis, BusSettings(stream_maxlen=100))
    for n in range(1000):
        await bus.publish(stream, article(n))
    length = int(await redis.xlen(stream))
    # MAXLEN ~ trims whole radix-tree nodes (100 entries each by default): bounded, not exact.
    assert 100 <= length <= 200


async def test_restart_resumes_own_pending_entries_first(redis: Redis, stream: str) -> None:
    bus = StreamBus(redis, FAST)
    await bus.ensure_group(stream, "g")
    for n in range(3):
        await bus.publish(stream, article(n))
    # A previous life of consumer "c1" took the entries and died before acking them.
    await redis.xreadgroup("g", "c1", {stream: ">"}, count=3)
    assert await pending_count(redis, stream) == 3
    seen: list[tuple[str, int]] = []

    async def handle(message: Article, delivery: Receipt) -> None:
        seen.append((message.id, delivery.deliveries))

    slow_claim = FAST.model_copy(update={"claim_idle_ms": 60_000})
    async with running(make_consumer(redis, stream, handle, name="c1", settings=slow_claim)):
        await wait_for(lambda: len(seen) == 3, message="own pending resumed")
    assert sorted(seen) == [("a0", 2), ("a1", 2), ("a2", 2)]
    assert await pending_count(redis, stream) == 0


# Defaults but for a short blocking read: an entry reclaimed after ``claim_idle_ms`` (a minute)
# cannot be what a test sees within its deadline.
DEFAULT_CLAIM = BusSettings(block_ms=50, shutdown_grace_seconds=2.0)


async def test_redis_away_in_a_handler_is_retried_in_place_not_counted_as_a_failure(
    redis: Redis, stream: str
) -> None:
    """A handler that meets a Redis error (a failover under way) is run again in place
    within a second or so, not a minute later as a failed entry reclaimed."""
    calls: list[int] = []

    async def handle(message: Article, delivery: Receipt) -> None:
        calls.append(delivery.deliveries)
        if len(calls) == 1:
            raise RedisConnectionError("Connection reset by peer")

    await StreamBus(redis, DEFAULT_CLAIM).publish(stream, article(1))
    consumer = make_consumer(redis, stream, handle, settings=DEFAULT_CLAIM)
    errors = {"stream": stream, "kind": "in_flight"}
    assert REGISTRY.get_sample_value("vigil_bus_errors_total", errors) == 0
    async with running(consumer):
        await wait_for(lambda: len(calls) == 2, timeout=5, message="the handler run again")
        await wait_for(lambda: group_done(redis, stream), timeout=5, message="the ack")
    assert calls == [1, 1], "the same delivery, tried again in place"
    assert REGISTRY.get_sample_value("vigil_bus_errors_total", errors) == 1
    assert await redis.hlen(errors_key(stream, "g")) == 0, "not recorded as a handler failure"


async def test_a_handler_that_ran_while_the_connections_were_dropped_runs_again_before_the_ack(
    redis: Redis, stream: str
) -> None:
    """Connections dropped while a handler writes (a new master was found): its writes may
    have gone to the old master, so it runs again before its entry is acknowledged."""
    calls: list[str] = []
    writing = asyncio.Event()
    release = asyncio.Event()

    async def handle(message: Article, delivery: Receipt) -> None:
        calls.append(message.id)
        if len(calls) == 1:
            writing.set()
            await release.wait()

    await StreamBus(redis, DEFAULT_CLAIM).publish(stream, article(1))
    async with running(make_consumer(redis, stream, handle, settings=DEFAULT_CLAIM)):
        await wait_for(writing.is_set, message="the handler to start")
        await drop_connections(redis)
        release.set()
        await wait_for(lambda: len(calls) == 2, timeout=5, message="the handler run again")
        await wait_for(lambda: group_done(redis, stream), timeout=5, message="the ack")
    assert calls == ["a1", "a1"]


async def test_a_pool_that_keeps_switching_masters_leaves_the_entry_pending(
    redis: Redis, stream: str
) -> None:
    """Runs again because the master changed spend the in-place budget (half the claim idle
    time) like any other retry: past it the entry is left pending and reclaimed later, the
    consumer is never caught in a loop."""
    calls: list[int] = []

    async def handle(message: Article, delivery: Receipt) -> None:
        calls.append(delivery.deliveries)
        await drop_connections(redis)  # a new master found during every run

    settings = BusSettings(block_ms=50, claim_idle_ms=1000, claim_interval_seconds=0.1,
                           shutdown_grace_seconds=2.0)  # fmt: skip
    await StreamBus(redis, settings).publish(stream, article(1))
    async with running(make_consumer(redis, stream, handle, settings=settings)):
        await wait_for(lambda: max(calls, default=0) > 1, timeout=10, message="the entry reclaimed")
    assert calls.count(1) < 20, "a few runs in place, paced, then left pending"


async def test_entries_pending_again_after_a_master_change_are_handled_within_seconds(
    redis: Redis, stream: str
) -> None:
    """An entry the consumer acknowledged on the old master is pending again on the new one:
    once its connections are dropped for the new master, the consumer reads its own pending
    entries again, long before they could be reclaimed as idle."""
    seen: list[tuple[str, int]] = []

    async def handle(message: Article, delivery: Receipt) -> None:
        seen.append((message.id, delivery.deliveries))

    bus = StreamBus(redis, DEFAULT_CLAIM)
    entry_id = await bus.publish(stream, article(1))
    async with running(make_consumer(redis, stream, handle, settings=DEFAULT_CLAIM)):
        await wait_for(lambda: seen, message="the entry handled")
        await wait_for(lambda: group_done(redis, stream), message="the entry acked")
        # What the new master holds: the entry delivered to c1, its ack never seen.
        await redis.xclaim(stream, "g", "c1", 0, [entry_id], force=True)
        await drop_connections(redis)
        await wait_for(lambda: len(seen) == 2, timeout=10, message="the entry handled again")
        await wait_for(lambda: group_done(redis, stream), message="acked again")
    assert [m for m, _ in seen] == ["a1", "a1"]


async def test_a_lag_xinfo_cannot_tell_is_counted(redis: Redis, stream: str) -> None:
    """XINFO gives no lag once a group's read count is unknown (here an id set by hand; in
    production a restart replaying the append-only file): the entries after the group's last
    delivered one are counted instead, so the gauge and ``vigil status`` never go stale."""
    bus = StreamBus(redis, FAST)
    ids = [await bus.publish(stream, article(n)) for n in range(5)]
    await redis.xgroup_create(stream, "g", id="0")
    await redis.xgroup_setid(stream, "g", ids[1])
    [raw] = await redis.xinfo_groups(stream)
    assert raw["lag"] is None, "the case this test is about"
    [status] = await bus.group_status(stream)
    assert status.lag == 3
    await bus.update_gauges([stream])
    assert (
        REGISTRY.get_sample_value("vigil_consumer_lag_messages", {"stream": stream, "group": "g"})
        == 3
    )


async def test_concurrency_is_bounded(redis: Redis, stream: str) -> None:
    active = 0
    peak = 0
    done = 0
    gate = asyncio.Event()

    async def handle(message: Article, delivery: Receipt) -> None:
        nonlocal active, peak, done
        active += 1
        peak = max(peak, active)
        await gate.wait()
        active -= 1
        done += 1

    bus = StreamBus(redis, FAST)
    for n in range(30):
        await bus.publish(stream, article(n))
    settings = FAST.model_copy(update={"concurrency": 4, "batch_size": 10})
    async with running(make_consumer(redis, stream, handle, settings=settings)):
        await wait_for(lambda: active == 4, message="four handlers running")
        info = await redis.xinfo_groups(stream)
        assert info[0]["pending"] == 4  # nothing buffered beyond the slots
        gate.set()
        await wait_for(lambda: done == 30, message="all handled")
    assert peak == 4


async def test_group_is_recreated_after_a_flush(redis: Redis, stream: str) -> None:
    seen: list[str] = []

    async def handle(message: Article, delivery: Receipt) -> None:
        seen.append(message.id)

    bus = StreamBus(redis, FAST)
    consumer = make_consumer(redis, stream, handle)
    async with running(consumer):
        await bus.publish(stream, article(1))
        await wait_for(lambda: seen == ["a1"], message="first entry")
        await redis.flushall()
        await bus.publish(stream, article(2))
        await wait_for(lambda: seen == ["a1", "a2"], message="entry after flush")
    assert consumer.ready is False


async def test_graceful_stop_finishes_in_flight_work(redis: Redis, stream: str) -> None:
    finished: list[str] = []
    started = asyncio.Event()

    async def slow(message: Article, delivery: Receipt) -> None:
        started.set()
        await asyncio.sleep(0.2)  # simulated work, not synchronisation
        finished.append(message.id)

    await StreamBus(redis, FAST).publish(stream, article(5))
    async with running(make_consumer(redis, stream, slow)) as stop:
        await wait_for(started.is_set, message="handler started")
        stop.set()
    assert finished == ["a5"]
    assert await pending_count(redis, stream) == 0


async def _calls(redis: Redis, command: str) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_handlers_finishing_together_share_an_xack(redis: Redis, stream: str) -> None:
    release = asyncio.Event()
    handled: list[str] = []

    async def handle(message: Article, delivery: Receipt) -> None:
        await release.wait()
        handled.append(message.id)

    bus = StreamBus(redis, FAST)
    await bus.publish_many(stream, [article(n) for n in range(16)])  # default concurrency: 16
    async with running(make_consumer(redis, stream, handle)):
        await wait_for(partial(_pending_is, redis, stream, 16), message="all 16 entries taken")
        before = await _calls(redis, "xack")
        release.set()
        await wait_for(partial(_pending_is, redis, stream, 0), message="all acked")
        acks = await _calls(redis, "xack") - before
    assert len(handled) == 16
    assert 1 <= acks < 16, acks


async def _pending_is(redis: Redis, stream: str, count: int) -> bool:
    try:
        return await pending_count(redis, stream) == count
    except ResponseError:  # the group is not there yet
        return False


async def test_publish_many_is_one_transaction_with_the_callers_commands(
    redis: Redis, stream: str
) -> None:
    bus = StreamBus(redis, FAST)
    ids = await bus.publish_many(
        stream, [article(1), article(2)], also=lambda pipe: pipe.set(f"{stream}:marker", "1")
    )
    assert len(ids) == 2
    entries: list[tuple[str, object]] = await redis.xrange(stream)  # type: ignore[assignment]
    assert [i for i, _ in entries] == ids
    assert await redis.get(f"{stream}:marker") == "1"
