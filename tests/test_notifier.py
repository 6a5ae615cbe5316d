"""The notifier against a real Redis and real HTTP receivers, with an injectable clock."""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from functools import partial
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from services.notifier.jobs import DUE, JOBS
from services.notifier.service import NotifierService
from services.notifier.store import DeliveryState, SubscriptionStore
from services.notifier.subscriptions import load_subscriptions
from services.notifier.targets import PublicOnlyResolver, TargetRefusedError, check_target
from shared.bus import StreamBus
from shared.settings import ConfigError, Settings
from shared.streams import ALERTS, DEAD
from tests.factories import make_alert
from tests.helpers import group_done, wait_for
from tests.notifier_support import (
    OLD_SECRET,
    SECRET,
    T0,
    FakeClock,
    Receiver,
    Reply,
    advance,
    dead_letters,
    fast,
    publish,
    running,
    webhook,
)


async def test_alert_arrives_signed_with_the_contract_body(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    clock = FakeClock()
    async with running(fast(settings), redis, [webhook(receiver)], clock):
        await publish(redis, make_alert("a1"))
        await wait_for(lambda: receiver.requests, message="a webhook")
    headers, payload = receiver.requests[0]
    assert headers["webhook-id"].startswith("msg_")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60  # real time, not the clock
    assert payload["type"] == "alert.created"
    assert payload["data"]["alert_id"] == "alert_a1"
    assert payload["data"]["article"] == {
        "id": "a1", "url": "https://wire.example/a1", "title": "Turkey sends troops to Libya",
        "source": "wire", "published_at": "2026-11-24T08:00:00+00:00",
    }  # fmt: skip
    assert payload["data"]["classification"]["theaters"] == ["libya"]
    assert await redis.hlen(JOBS) == 0


async def test_failures_are_retried_on_schedule_with_the_same_id(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    receiver.script = [Reply(500), Reply(503)]
    clock = FakeClock()
    async with running(fast(settings), redis, [webhook(receiver)], clock) as service:
        await publish(redis, make_alert("a1"))
        await wait_for(lambda: len(receiver.requests) == 1, message="first attempt")
        await wait_for(lambda: redis.zscore(DUE, receiver.ids[0]), message="retry scheduled")
        assert await redis.zscore(DUE, receiver.ids[0]) == T0 + 5
        await advance(clock, service, 4)
        await advance(clock, service, 1)
        await wait_for(lambda: len(receiver.requests) == 2, message="second attempt")
        await wait_for(lambda: _due_at(redis, receiver.ids[0], T0 + 5 + 300), message="2nd retry")
        await advance(clock, service, 300)
        await wait_for(lambda: len(receiver.requests) == 3, message="third attempt")
        await wait_for(lambda: _hlen_is(redis, JOBS, 0), message="job finished")
    assert len(set(receiver.ids)) == 1
    state = await service.store.state("analyst")
    assert (state.delivered, state.failed, state.consecutive_failures) == (1, 2, 0)


async def _due_at(redis: Redis, job_id: str, when: float) -> bool:
    return await redis.zscore(DUE, job_id) == when


async def _hlen_is(redis: Redis, key: str, size: int) -> bool:
    return int(await redis.hlen(key)) == size


async def test_retry_after_is_honoured(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    receiver.script = [Reply(429, {"Retry-After": "120"})]
    clock = FakeClock()
    async with running(fast(settings), redis, [webhook(receiver)], clock) as service:
        await publish(redis, make_alert("a1"))
        await wait_for(lambda: receiver.requests, message="first attempt")
        await wait_for(lambda: _due_at(redis, receiver.ids[0], T0 + 120), message="Retry-After")
        await advance(clock, service, 119)
        await advance(clock, service, 1)
        await wait_for(lambda: len(receiver.requests) == 2, message="retry after 120 s")
    assert receiver.ids[0] == receiver.ids[1]


async def test_gone_disables_the_subscription_and_keeps_the_delivery(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    receiver.script = [Reply(410)]
    clock = FakeClock()
    async with running(fast(settings), redis, [webhook(receiver)], clock) as service:
        await publish(redis, make_alert("a1"))
        await wait_for(lambda: dead_letters(redis), message="dead letter")
        subscription = await service.store.get("analyst")
        assert subscription is not None
        assert subscription.enabled is False
        await publish(redis, make_alert("a2"))
        await wait_for(lambda: group_done(redis, ALERTS), message="second alert handled")
    [letter] = await dead_letters(redis)
    assert letter.reason == "gone: 410 Gone"
    assert letter.source_stream == "vigil:deliveries"
    assert len(receiver.requests) == 1  # nothing more after 410


def _has_requests(receiver: Receiver, count: int) -> bool:
    return len(receiver.requests) == count


async def test_exhausted_retries_go_to_dead_letters_and_replay_keeps_the_id(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    receiver.script = [Reply(500)] * 4
    clock = FakeClock()
    async with running(fast(settings, circuit_failures=100), redis, [webhook(receiver)],
                       clock) as service:  # fmt: skip
        await publish(redis, make_alert("a1"))
        for attempt, wait in enumerate([5, 300, 1800], start=1):
            await wait_for(partial(_has_requests, receiver, attempt), message=f"try {attempt}")
            await wait_for(lambda: redis.zscore(DUE, receiver.ids[0]), message="rescheduled")
            await advance(clock, service, wait)
        await wait_for(lambda: dead_letters(redis), message="dead letter")
        [(dead_id, letter)] = await StreamBus(redis).dead_letters()
        assert letter.reason.startswith("max_attempts: failed 4 times; last: HTTP 500")
        history = orjson.loads(letter.fields["data"])["history"]
        assert [h["detail"] for h in history] == ["HTTP 500"] * 4
        assert await StreamBus(redis).replay(dead_id)
        await wait_for(lambda: len(receiver.requests) == 5, message="replayed delivery")
    assert set(receiver.ids) == {receiver.ids[0]}
    assert await redis.xlen(DEAD) == 0


async def test_a_slow_endpoint_times_out_and_is_retried(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    receiver.script = [Reply(delay=3.0)]
    clock = FakeClock()
    async with running(fast(settings, webhook_timeout_seconds=0.3), redis, [webhook(receiver)],
                       clock) as service:  # fmt: skip
        await publish(redis, make_alert("a1"))

        async def failure_recorded() -> DeliveryState | None:
            state = await service.store.state("analyst")
            return state if state.last_error else None

        state = await wait_for(failure_recorded, message="timeout recorded")
        assert state.last_error == "timeout"
        assert state.consecutive_failures == 1
        due = await redis.zscore(DUE, receiver.ids[0])
        assert due is not None
        assert due >= clock.now + settings.notifier.retry_schedule_seconds[0] * 0.5


async def test_one_alert_per_subscriber_per_story(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    clock = FakeClock()
    subs = [webhook(receiver, "one"), webhook(receiver, "two", filters={"theaters": ["syria"]}),
            webhook(receiver, "three", filters={"min_score": 0.5})]  # fmt: skip
    async with running(fast(settings), redis, subs, clock):
        await publish(redis, make_alert("a1", story_id="s1"))
        await wait_for(lambda: group_done(redis, ALERTS), message="the first copy handled")
        await publish(redis, make_alert("a2", story_id="s1", source="other-wire"),
                      make_alert("a3", story_id="s2", score=0.4))  # fmt: skip
        await wait_for(lambda: group_done(redis, ALERTS), message="alerts handled")
        await wait_for(lambda: _hlen_is(redis, JOBS, 0), message="deliveries done")
    # "one" gets s1 once and s2; "three" gets s1 only (s2 scores 0.4); "two" wants syria.
    titles = sorted(p["data"]["article"]["id"] for _, p in receiver.requests)
    assert titles == ["a1", "a1", "a3"]
    assert len(set(receiver.ids)) == 3


async def test_secret_rotation_signs_with_every_active_secret(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    receiver.secret = OLD_SECRET  # a receiver not yet updated still verifies
    clock = FakeClock()
    sub = webhook(receiver, previous_secrets=[OLD_SECRET])
    async with running(fast(settings), redis, [sub], clock):
        await publish(redis, make_alert("a1"))
        await wait_for(lambda: receiver.requests, message="a webhook")
    headers, _ = receiver.requests[0]
    assert len(headers["webhook-signature"].split(" ")) == 2


async def test_circuit_breaker_stops_attempts_while_open(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    receiver.script = [Reply(500), Reply(500)]
    clock = FakeClock()
    config = fast(settings, circuit_failures=2, circuit_open_seconds=1000)
    async with running(config, redis, [webhook(receiver)], clock) as service:
        await publish(redis, make_alert("a1"))
        await wait_for(lambda: receiver.requests, message="first attempt")
        await wait_for(lambda: redis.zscore(DUE, receiver.ids[0]), message="rescheduled")
        await advance(clock, service, 5)
        await wait_for(lambda: len(receiver.requests) == 2, message="second attempt")
        await wait_for(lambda: _circuit_open(service), message="circuit open")
        await publish(redis, make_alert("a2"))
        await wait_for(lambda: _hlen_is(redis, JOBS, 2), message="second job queued")
        await wait_for(lambda: _due_at_least(redis, T0 + 1000, 2), message="held by the circuit")
        assert len(receiver.requests) == 2
        await advance(clock, service, 1000)
        await wait_for(lambda: len(receiver.requests) == 4, message="both after the circuit")


async def _circuit_open(service: NotifierService) -> bool:
    return (await service.store.state("analyst")).circuit_open_until > 0


async def _due_at_least(redis: Redis, when: float, count: int) -> bool:
    return int(await redis.zcount(DUE, when, "+inf")) == count


async def test_rate_limit_defers_to_the_next_minute(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    clock = FakeClock(T0 - T0 % 60 + 10)
    sub = webhook(receiver, rate_limit_per_minute=1)
    async with running(fast(settings), redis, [sub], clock) as service:
        await publish(redis, make_alert("a1", story_id="s1"), make_alert("a2", story_id="s2"))
        await wait_for(lambda: receiver.requests, message="first delivery")
        next_minute = clock.now - clock.now % 60 + 60
        await wait_for(lambda: _due_at_least(redis, next_minute, 1), message="deferred")
        assert len(receiver.requests) == 1
        await advance(clock, service, 50)
        await wait_for(lambda: len(receiver.requests) == 2, message="second in the next minute")


async def test_digest_batches_alerts_into_one_message(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    clock = FakeClock(T0 - T0 % 600)
    sub = webhook(receiver, mode="digest", digest_minutes=10)
    async with running(fast(settings), redis, [sub], clock) as service:
        await publish(redis, *(make_alert(f"a{n}", story_id=f"s{n}") for n in range(3)))
        await wait_for(lambda: group_done(redis, ALERTS), message="alerts handled")
        await publish(redis, make_alert("copy", story_id="s1"))  # corroboration, not a 4th
        await wait_for(lambda: group_done(redis, ALERTS), message="the copy handled")
        assert receiver.requests == []
        await advance(clock, service, 600)
        await wait_for(lambda: receiver.requests, message="the digest")
        await wait_for(lambda: _hlen_is(redis, JOBS, 0), message="digest finished")
    [(_, payload)] = receiver.requests
    assert payload["type"] == "alert.digest"
    assert [a["article"]["id"] for a in payload["data"]["alerts"]] == ["a0", "a1", "a2"]


async def test_private_targets_are_refused_when_not_allowed(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    strict = fast(settings).model_copy(update={"allow_private_targets": False})
    clock = FakeClock()
    async with running(strict, redis, [webhook(receiver)], clock):
        await publish(redis, make_alert("a1"))
        await wait_for(lambda: dead_letters(redis), message="refused delivery dead-lettered")
    [letter] = await dead_letters(redis)
    assert letter.reason.startswith("rejected: target refused: 127.0.0.1")
    assert receiver.requests == []


PRIVATE_URLS = ["http://127.0.0.1/x", "http://10.1.2.3/", "http://[::1]/",
                "http://169.254.169.254/latest", "http://localhost:8080/"]  # fmt: skip


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_check_target_refuses_private_literals(url: str) -> None:
    with pytest.raises(TargetRefusedError):
        check_target(url, allow_private=False)
    check_target(url, allow_private=True)


async def test_public_only_resolver_refuses_names_of_private_addresses() -> None:
    resolver = PublicOnlyResolver()
    try:
        with pytest.raises(TargetRefusedError):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()


async def test_a_crash_between_send_and_settle_resends_the_same_id_only(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    """The notifier dies mid-send: the job's lease expires and the retry reuses its id."""
    receiver.script = [Reply(delay=2.0)]
    clock = FakeClock()
    config = fast(settings)
    crashed = NotifierService(config, redis, [webhook(receiver)], clock=clock)
    task = asyncio.create_task(crashed.run(asyncio.Event()))
    await wait_for(crashed.is_ready, message="notifier ready")
    await publish(redis, make_alert("a1"))
    await wait_for(lambda: receiver.requests, message="the first send, in flight")
    task.cancel()  # the process dies: no settle, the job stays leased
    with suppress(asyncio.CancelledError):
        await task
    clock.now += crashed.lease_seconds + 1
    async with running(config, redis, [webhook(receiver)], clock) as service:
        service.wake()
        await wait_for(partial(_has_requests, receiver, 2), message="the resend")
        await wait_for(lambda: _hlen_is(redis, JOBS, 0), message="the job settled")
        await publish(redis, make_alert("a1"))  # the same alert again, as after a replay
        await wait_for(lambda: group_done(redis, ALERTS), message="the copy handled")
    assert len(receiver.requests) == 2
    assert receiver.ids[0] == receiver.ids[1], "a resend keeps its webhook-id"


def test_subscription_files_take_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "subscriptions.yaml"
    path.write_text(
        "subscriptions:\n  - {id: desk, channel: webhook, url: 'https://h.example.org/x',"
        " secret: '${DESK_SECRET}'}\n"
    )
    monkeypatch.setenv("DESK_SECRET", SECRET)
    [desk] = load_subscriptions(path)
    assert desk.secret is not None
    assert desk.secret.get_secret_value() == SECRET
    monkeypatch.delenv("DESK_SECRET")
    with pytest.raises(ConfigError, match=r"\$\{DESK_SECRET\} is used but not set"):
        load_subscriptions(path)


async def test_a_restart_keeps_api_edits_unless_the_file_entry_changed(
    redis: Redis, receiver: Receiver
) -> None:
    store = SubscriptionStore(redis)
    from_file = webhook(receiver, "desk")
    assert await store.sync_file([from_file]) == ["desk"]
    edited = from_file.model_copy(update={"rate_limit_per_minute": 5})
    await store.put(edited)  # through the admin API or `vigil subscriptions apply`
    assert await store.sync_file([from_file]) == [], "an unchanged file entry is not re-applied"
    kept = await store.get("desk")
    assert kept is not None
    assert kept.rate_limit_per_minute == 5
    changed_in_file = from_file.model_copy(update={"rate_limit_per_minute": 9})
    assert await store.sync_file([changed_in_file]) == ["desk"]
    again = await store.get("desk")
    assert again is not None
    assert again.rate_limit_per_minute == 9


@pytest.mark.timeout(60)  # without the fix the dispatcher spins and never yields: a hang
async def test_a_burst_beyond_the_rate_limit_and_the_concurrency_arrives_at_the_limits_pace(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    """Issue 13: 150 alerts, 60 a minute, more jobs falling due at once than free slots."""
    clock = FakeClock(T0 - T0 % 60 + 1)
    sub = webhook(receiver, rate_limit_per_minute=60)
    burst = [make_alert(f"b{n}", story_id=f"story-{n}") for n in range(150)]
    assert len(burst) - 60 > settings.notifier.concurrency  # the minute boundary overflows
    async with running(settings, redis, [sub], clock) as service:
        await publish(redis, *burst)
        for minute, (delivered, deferred) in enumerate([(60, 90), (120, 30), (150, 0)]):
            boundary = clock.now - clock.now % 60 + 60
            await wait_for(
                lambda n=delivered: len(receiver.requests) >= n,  # type: ignore[misc]
                timeout=20,
                message=f"{delivered} delivered by minute {minute}",
            )
            # The minute's work has settled (the rest waits for the next minute) before the
            # clock moves on: a jump past in-flight leases would resend them.
            await wait_for(
                lambda d=deferred, b=boundary: _due_at_least(redis, b, d),  # type: ignore[misc]
                message=f"{deferred} deferred to the next minute",
            )
            await wait_for(lambda: not service._in_flight, message="no send in flight")
            assert len(receiver.requests) == delivered
            await advance(clock, service, 60)
        await wait_for(lambda: _hlen_is(redis, JOBS, 0), message="every job finished")
    assert len(set(receiver.ids)) == 150
    assert {p["data"]["alert_id"] for _, p in receiver.requests} == {a.alert_id for a in burst}


@pytest.mark.timeout(60)
async def test_stop_returns_within_the_grace_period_with_every_slot_busy(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    """SIGTERM with a full queue and every send in flight: the service still stops in time."""
    receiver.script = [Reply(delay=1.0) for _ in range(200)]
    clock = FakeClock()
    service = NotifierService(settings, redis, [webhook(receiver)], clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await publish(redis, *(make_alert(f"s{n}", story_id=f"story-{n}") for n in range(200)))
    await wait_for(
        lambda: len(receiver.requests) >= settings.notifier.concurrency, message="slots full"
    )
    stop.set()
    started = time.monotonic()
    await asyncio.wait_for(task, timeout=settings.bus.shutdown_grace_seconds + 2)
    assert time.monotonic() - started < settings.bus.shutdown_grace_seconds
    assert await redis.hlen(JOBS) > 0  # the rest is still owed, durably
