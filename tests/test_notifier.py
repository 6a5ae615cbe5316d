"""The notifier against a real Redis and real HTTP receivers, with an injectable clock."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import MutableMapping
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from structlog.testing import capture_logs

from services.notifier.channels.registry import job_queue, lease_seconds
from services.notifier.jobs import JOBS, Job, digest_job, due_key, job_id
from services.notifier.service import NotifierService
from services.notifier.state import EndpointState
from services.notifier.store import SUBSCRIPTIONS, SubscriptionStore
from services.notifier.store import VERSION as SUBSCRIPTIONS_VERSION
from services.notifier.subscriptions import load_subscriptions
from services.notifier.targets import PublicOnlyResolver, TargetRefusedError, check_host
from services.settings import Settings
from shared.bus import StreamBus
from shared.connection import connect
from shared.embedded_redis import EmbeddedRedis
from shared.settings import ConfigError
from shared.streams import ALERTS, DEAD
from tests.factories import make_alert
from tests.helpers import group_done, wait_for
from tests.notifier_support import (
    T0,
    FakeClock,
    advance,
    dead_letters,
    fast,
    publish,
    running,
    webhook,
)
from tests.receivers import OLD_SECRET, SECRET, Receiver, Reply

DUE = due_key("webhook")


async def test_alert_arrives_signed_with_the_contract_body(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    clock = FakeClock()
    async with running(fast(settings), redis, [webhook(receiver)], clock):
        await publish(redis, make_alert("a1"))
        await wait_for(lambda: receiver.requests, message="a webhook")
    [received] = receiver.requests
    headers, payload = received.headers, received.payload
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
        await wait_for(lambda: _due_at(redis, receiver.ids[0], T0 + 5), message="retry in 5 s")
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
    async with running(fast(settings), redis, [webhook(receiver)], clock) as service:
        await publish(redis, make_alert("a1"))
        for attempt, wait in enumerate([5, 300, 1800], start=1):
            await wait_for(partial(_has_requests, receiver, attempt), message=f"try {attempt}")
            due = clock.now + wait  # the schedule, without jitter in these settings
            await wait_for(lambda d=due: _due_at(redis, receiver.ids[0], d),  # type: ignore[misc]
                           message="rescheduled")  # fmt: skip
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

        async def failure_recorded() -> EndpointState | None:
            state = await service.store.state("analyst")
            return state if state.last_error else None

        state = await wait_for(failure_recorded, message="timeout recorded")
        assert state.last_error == "timeout"
        assert state.consecutive_failures == 1
        await wait_for(lambda: _due_at(redis, receiver.ids[0], T0 + 5), message="retry in 5 s")


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
    titles = sorted(r.payload["data"]["article"]["id"] for r in receiver.requests)
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
    headers = receiver.requests[0].headers
    assert len(headers["webhook-signature"].split(" ")) == 2


async def test_a_burst_failing_only_first_attempts_is_delivered_promptly(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    """Issue 13: 500 to the first attempt of each message, then 200; six alerts at once. The
    old breaker opened on five first-attempt failures and held them all for 300 s."""
    receiver.first_reply = Reply(500)
    clock = FakeClock()
    config = settings.notifier
    first_retry = (config.retry_schedule_seconds[0] * (1 - config.retry_jitter),
                   config.retry_schedule_seconds[0] * (1 + config.retry_jitter))  # fmt: skip
    async with running(settings, redis, [webhook(receiver)], clock) as service:
        await publish(redis, *(make_alert(f"b{n}", story_id=f"s{n}") for n in range(6)))
        await wait_for(lambda: _scheduled(redis, 6, T0 + first_retry[0], T0 + first_retry[1]),
                       message="six retries scheduled")  # fmt: skip
        await advance(clock, service, first_retry[1])
        state = await wait_for(lambda: _delivered(service, 6), message="all six delivered")
        assert await redis.hlen(JOBS) == 0
    assert len(receiver.requests) == 12
    assert len(set(receiver.ids)) == 6, "each retry keeps its webhook-id"
    assert state.circuit_open_until == 0
    assert state.delivered == 6


async def test_retry_after_on_429_pauses_the_endpoint_and_never_opens_the_circuit(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    """Issue 13: 429 with Retry-After: 15 is backpressure: the endpoint waits 15 s, then gets
    everything; no failure is counted and the circuit never opens."""
    clock = FakeClock()
    receiver.answer = lambda: Reply(429, {"Retry-After": "15"}) if clock.now < T0 + 15 else Reply()
    async with running(settings, redis, [webhook(receiver)], clock) as service:
        await publish(redis, *(make_alert(f"b{n}", story_id=f"s{n}") for n in range(6)))
        await wait_for(lambda: _scheduled(redis, 6, T0 + 15), message="six held for 15 s")
        state = await service.store.state("analyst")
        assert state.paused_until == T0 + 15
        await publish(redis, make_alert("late", story_id="late"))  # held too, never tried
        await wait_for(lambda: _scheduled(redis, 7, T0 + 15), message="the 7th held")
        # Jobs claimed with the first one were answered 429 too; the rest waited untried.
        throttled = len(receiver.requests)
        assert 1 <= throttled <= 6
        assert len(set(receiver.ids)) == throttled, "nothing is tried twice during the pause"
        await advance(clock, service, 15)
        state = await wait_for(lambda: _delivered(service, 7), message="all after 15 s")
        assert await redis.hlen(JOBS) == 0
    assert len(receiver.requests) == throttled + 7
    assert (state.failed, state.delivered, state.circuit_open_until) == (0, 7, 0)


async def test_the_circuit_opens_on_failures_spread_over_time_and_one_message_probes(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    """Ten failed attempts in three minutes of the window open the circuit; a new job is held
    without an attempt; when it half-opens one message probes, and its success closes it."""
    receiver.script = [Reply(500)] * 10
    clock = FakeClock(T0 - T0 % 600)
    start = clock.now
    config = settings.notifier
    async with running(settings, redis, [webhook(receiver)], clock) as service:
        await publish(redis, *(make_alert(f"a{n}", story_id=f"a{n}") for n in range(4)))
        await wait_for(lambda: _scheduled(redis, 4, start + 4, start + 6), message="4 failed")
        await advance(clock, service, 60)  # their retries fail in the next minute
        await wait_for(lambda: _scheduled(redis, 4, start + 60 + 240, start + 60 + 360),
                       message="4 failed again")  # fmt: skip
        await advance(clock, service, 60)
        assert await _closed_or_absent(service), "8 attempts in 2 minutes: still closed"
        await publish(redis, *(make_alert(f"b{n}", story_id=f"b{n}") for n in range(2)))
        state = await wait_for(lambda: _open_state(service), message="circuit open")
        assert len(receiver.requests) == 10
        assert state.circuit_open_until == start + 120 + config.circuit_open_seconds
        await publish(redis, make_alert("held", story_id="held"))
        held = job_id("analyst", "held")
        await wait_for(lambda: _due_at(redis, held, state.circuit_open_until),
                       message="a new job held until the circuit half-opens")  # fmt: skip
        assert len(receiver.requests) == 10
        # The endpoint has recovered; it takes its time over the probe, while the other jobs
        # come due with it and find the circuit half-open.
        receiver.script = [Reply(delay=1.0)]
        await advance(clock, service, config.circuit_open_seconds)
        await wait_for(lambda: _closed(service), message="the probe closed the circuit")
        assert len(receiver.requests) == 11, "one message probes a half-open circuit"
        await advance(clock, service, lease_seconds(settings, "webhook"))
        await wait_for(lambda: _hlen_is(redis, JOBS, 0), message="the rest after the probe")
    assert len(receiver.requests) == 17
    assert len(set(receiver.ids)) == 7


async def test_a_failed_probe_opens_the_circuit_again(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    receiver.script = [Reply(500)]
    clock = FakeClock()
    store = SubscriptionStore(redis)
    sub = webhook(receiver)
    await store.put(sub)
    await store.open_circuit(sub.id, T0 + 1, T0 - 3600)
    async with running(settings, redis, [sub], clock) as service:
        await publish(redis, make_alert("a1"))
        await wait_for(lambda: _scheduled(redis, 1, T0 + 1), message="held")
        await advance(clock, service, 1)
        await wait_for(lambda: receiver.requests, message="the probe")
        reopened = await wait_for(lambda: _open_state(service, after=T0 + 1), message="reopened")
    assert reopened.circuit_open_until == T0 + 1 + settings.notifier.circuit_open_seconds
    assert reopened.circuit_opened_at == T0 - 3600, "the failing run goes on"
    assert len(receiver.requests) == 1


async def _delivered(service: NotifierService, count: int) -> EndpointState | None:
    state = await service.store.state("analyst")
    return state if state.delivered == count else None


async def _open_state(service: NotifierService, after: float = 0.0) -> EndpointState | None:
    state = await service.store.state("analyst")
    return state if state.circuit_open_until > after else None


async def _closed(service: NotifierService) -> bool:
    state = await service.store.state("analyst")
    return state.circuit_open_until == 0 and state.delivered == 1


async def _closed_or_absent(service: NotifierService) -> bool:
    return (await service.store.state("analyst")).circuit_open_until == 0


async def _scheduled(redis: Redis, count: int, low: float, high: float | None = None) -> bool:
    """Whether exactly ``count`` jobs are due between ``low`` and ``high`` (or at ``low``)."""
    return int(await redis.zcount(DUE, low, low if high is None else high)) == count


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
    [digest] = receiver.requests
    assert digest.payload["type"] == "alert.digest"
    assert [a["article"]["id"] for a in digest.payload["data"]["alerts"]] == ["a0", "a1", "a2"]


async def test_an_alert_for_a_digest_already_read_goes_to_the_next_window(
    settings: Settings, redis: Redis
) -> None:
    """An alert whose intake saw the clock just before its window closed can reach Redis after
    the digest's alerts were read for sending: it goes to the next window's digest instead
    of into a list that is deleted, unsent, once that digest is delivered."""
    queue = job_queue(redis, settings)
    period, window = 600.0, int(T0 // 600)
    closes = (window + 1) * period
    assert await queue.add_to_digest("desk", "webhook", make_alert("a0", story_id="s0"), T0, period)
    [digest] = await queue.claim_due(closes, 10)
    assert [a.alert_id for a in await queue.digest_alerts(digest)] == ["alert_a0"]
    assert await queue.add_to_digest("desk", "webhook", make_alert("a1", story_id="s1"), T0, period)
    await queue.finish(digest)
    [following] = await queue.claim_due(closes + period, 10)
    assert following.id == digest_job("desk", "webhook", window + 1, T0).id
    assert [a.alert_id for a in await queue.digest_alerts(following)] == ["alert_a1"]


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


PRIVATE_HOSTS = ["127.0.0.1", "10.1.2.3", "[::1]", "169.254.169.254", "localhost",
                 "localhost.", "printer.local"]  # fmt: skip


@pytest.mark.parametrize("host", PRIVATE_HOSTS)
def test_check_host_refuses_private_literals_and_local_names(host: str) -> None:
    with pytest.raises(TargetRefusedError):
        check_host(host, allow_private=False)
    check_host(host, allow_private=True)


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
    # The process dies: its loop and its sends with it; nothing settles, the job stays leased.
    dying = [task, *crashed.dispatcher.in_flight]
    for doomed in dying:
        doomed.cancel()
    await asyncio.wait(dying)
    clock.now += lease_seconds(config, "webhook") + 1
    async with running(config, redis, [webhook(receiver)], clock) as service:
        service.wake()
        await wait_for(partial(_has_requests, receiver, 2), message="the resend")
        await wait_for(lambda: _hlen_is(redis, JOBS, 0), message="the job settled")
        await publish(redis, make_alert("a1"))  # the same alert again, as after a replay
        await wait_for(lambda: group_done(redis, ALERTS), message="the copy handled")
    assert len(receiver.requests) == 2
    assert receiver.ids[0] == receiver.ids[1], "a resend keeps its webhook-id"


async def test_redis_away_after_a_send_takes_the_turn_again_in_place_not_after_the_lease(
    settings: Settings, tmp_path: Path, receiver: Receiver
) -> None:
    """Redis goes away while a webhook is in flight (a failover, a restart): once it is back
    the job's turn is taken again in place, within seconds and under the same id, not when
    its lease ends (the clock here never moves: a lease would never end)."""
    server = EmbeddedRedis(tmp_path / "redis", persist=True)
    server.start()
    redis = connect(server.url)
    receiver.script = [Reply(delay=3.0)]
    config = settings.model_copy(update={"redis_url": server.url})
    retried = REGISTRY.get_sample_value("vigil_notifier_turns_retried_in_place_total") or 0.0
    try:
        with capture_logs() as logs:
            async with running(config, redis, [webhook(receiver)], FakeClock()):
                await publish(redis, make_alert("a1"))
                await wait_for(lambda: receiver.requests, message="the send, in flight")
                await asyncio.to_thread(server.stop)
                await wait_for(partial(_logged, logs, "notifier.retrying"), timeout=10,
                               message="the settling of the send to fail")  # fmt: skip
                await asyncio.to_thread(server.start)
                await wait_for(partial(_has_requests, receiver, 2), timeout=10,
                               message="the turn taken again")  # fmt: skip
                await wait_for(lambda: _hlen_is(redis, JOBS, 0), message="the job settled")
    finally:
        await redis.aclose()
        server.stop()
    assert receiver.ids[0] == receiver.ids[1], "the same message, under its id"
    assert (REGISTRY.get_sample_value("vigil_notifier_turns_retried_in_place_total") or 0) > retried


def _logged(logs: list[MutableMapping[str, Any]], event: str) -> bool:
    return any(entry["event"] == event for entry in logs)


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
            await wait_for(lambda: not service.dispatcher.in_flight, message="no send in flight")
            assert len(receiver.requests) == delivered
            await advance(clock, service, 60)
        await wait_for(lambda: _hlen_is(redis, JOBS, 0), message="every job finished")
    assert len(set(receiver.ids)) == 150
    assert {r.alert_id for r in receiver.requests} == {a.alert_id for a in burst}


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


async def test_due_jobs_are_counted_per_channel(settings: Settings, redis: Redis) -> None:
    """vigil_notifier_due_jobs{channel}: what is due now, not what waits for later."""
    service = NotifierService(settings, redis, clock=FakeClock())
    for n, (channel, due) in enumerate([("webhook", T0), ("webhook", T0 - 5), ("webhook", T0 + 60),
                                        ("email", T0), ("chat", T0 + 1)]):  # fmt: skip
        job = Job(id=f"msg_{n}", subscription_id="s", kind="test", channel=channel,
                          created_at=T0)  # fmt: skip
        await service.queue.put(job, due)
    await service.dispatcher.update_gauges()
    counts = {
        channel: REGISTRY.get_sample_value("vigil_notifier_due_jobs", {"channel": channel})
        for channel in ("webhook", "email", "chat", "console")
    }
    assert counts == {"webhook": 2, "email": 1, "chat": 0, "console": 0}


PRIMED = [
    ("vigil_deliveries_total", {"channel": "chat", "outcome": "dead_lettered"}),
    ("vigil_deliveries_total", {"channel": "email", "outcome": "folded"}),
    ("vigil_delivery_retries_total", {"channel": "webhook"}),
    ("vigil_dead_letters_total", {"stream": "vigil:deliveries", "reason": "max_attempts"}),
    ("vigil_dead_letters_total", {"stream": "vigil:alerts", "reason": "decode"}),
    ("vigil_bus_reclaimed_total", {"stream": "vigil:alerts", "group": "notifier"}),
    ("vigil_bus_errors_total", {"stream": "vigil:deliveries", "kind": "nogroup"}),
    ("vigil_bus_messages_total", {"stream": "vigil:alerts", "group": "notifier",
                                  "outcome": "dead_lettered"}),
    ("vigil_notifier_due_jobs", {"channel": "console"}),
    ("vigil_polls_total", {"outcome": "timeout"}),
    ("vigil_poller_retries_total", {"outcome": "network_error"}),
    ("vigil_classifications_total", {"verdict": "flagged"}),
]  # fmt: skip

_EXPOSITION = """
import sys
from prometheus_client import generate_latest
import services.runner  # as in `vigil notifier`, which registers every service's metrics
from services.notifier.service import NotifierService
from services.settings import Settings
from shared.connection import connect
NotifierService(Settings(redis_url=sys.argv[1], _env_file=None), connect(sys.argv[1]))
sys.stdout.write(generate_latest().decode())
"""


def test_labelled_counters_exist_at_zero_before_their_first_event(redis_url: str) -> None:
    """Rules and dashboards that name a label (outcome="dead_lettered") see a series from
    the start, in a fresh notifier process that has done nothing yet."""
    exposition = subprocess.run(
        [sys.executable, "-c", _EXPOSITION, redis_url],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }
    for name, labels in PRIMED:
        key = (name, tuple(sorted(labels.items())))
        assert samples.get(key) == 0.0, f"{name}{labels} missing or not 0"


async def test_a_job_for_an_unknown_channel_is_dead_lettered_and_alerts_still_flow(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    """A stored subscription this version cannot use (here a channel it does not know) used
    to crash every attempt, leaving its jobs to loop forever, and every alert's matching."""
    pager = {"id": "pager", "channel": "pager", "url": "pager://on-call", "filters": {}}
    await redis.hset(SUBSCRIPTIONS, "pager", orjson.dumps(pager))
    await redis.incr(SUBSCRIPTIONS_VERSION)
    stuck = Job(id="msg_pager", subscription_id="pager", kind="alert", channel="pager",
                        alerts=[make_alert("old")], created_at=T0)  # fmt: skip
    clock = FakeClock()
    async with running(fast(settings), redis, [webhook(receiver)], clock) as service:
        await service.queue.put(stuck, T0)
        service.wake()
        [letter] = await wait_for(lambda: dead_letters(redis), message="the job dead-lettered")
        await publish(redis, make_alert("a1"))
        await wait_for(lambda: receiver.requests, message="alerts still delivered")
        await wait_for(lambda: _hlen_is(redis, JOBS, 0), message="nothing left")
    assert letter.entry_id == "msg_pager"
    assert letter.reason.startswith("unknown_channel: pager: channel: ")
