"""The delivery log: every attempt with its outcome and latency, dead letters, retry now."""

from __future__ import annotations

from redis.asyncio import Redis

from services.notifier.channels.base import SendResult
from services.notifier.deliverylog import DeliveryLog
from services.notifier.jobs import Job
from services.notifier.store import SubscriptionStore
from services.settings import Settings
from shared.bus import StreamBus
from tests.factories import make_alert
from tests.helpers import wait_for
from tests.notifier_support import FakeClock, dead_letters, fast, publish, running, webhook
from tests.receivers import Receiver, Reply


async def test_every_attempt_is_logged_with_its_status_and_latency(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    receiver.script = [Reply(500), Reply(200)]
    clock = FakeClock()
    history = DeliveryLog(redis, settings.notifier.delivery_log_length)
    async with running(fast(settings), redis, [webhook(receiver)], clock) as service:
        await publish(redis, make_alert("a1", title="Drones over Tripoli"))
        await wait_for(lambda: history.lines("analyst"), message="first attempt logged")
        # The retry is 5 s away: far beyond the lease, so it is waiting, and may be hurried.
        [first] = await history.lines("analyst")
        assert await service.queue.hurry(first.job_id, clock.now)
        await wait_for(lambda: len(receiver.requests) == 2, message="retried now")
        await wait_for(
            lambda: _outcomes(history, "analyst", ["delivered", "retry"]), message="both logged"
        )
        assert not await service.queue.hurry(first.job_id, clock.now)  # delivered: nothing waits
    delivered, failed = await history.lines("analyst")
    assert (failed.outcome, failed.detail, failed.attempt) == ("retry", "HTTP 500", 1)
    assert (delivered.outcome, delivered.detail, delivered.attempt) == ("delivered", "200", 2)
    assert delivered.job_id == failed.job_id == receiver.ids[0]
    assert delivered.title == failed.title == "Drones over Tripoli"
    assert failed.seconds is not None
    assert 0 < failed.seconds < 1.0


async def test_a_dead_lettered_delivery_names_its_dead_letter_for_replay(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    receiver.script = [Reply(410)]
    clock = FakeClock()
    history = DeliveryLog(redis, settings.notifier.delivery_log_length)
    async with running(fast(settings), redis, [webhook(receiver)], clock) as service:
        await publish(redis, make_alert("a1"))
        await wait_for(lambda: dead_letters(redis), message="dead letter")
        await wait_for(lambda: _outcomes(history, "analyst", ["dead_lettered", "gone"]),
                       message="dead-lettering logged")  # fmt: skip
        dead, _ = await history.lines("analyst")
        [(dead_id, _)] = await StreamBus(redis).dead_letters()
        assert dead.dead_id == dead_id
        assert dead.detail == "gone: 410 Gone"
        await service.store.enable("analyst")
        assert await StreamBus(redis).replay(dead.dead_id)
        await wait_for(lambda: len(receiver.requests) == 2, message="replayed")
        await wait_for(lambda: _outcomes(history, "analyst", ["delivered", "dead_lettered"]),
                       message="replay logged")  # fmt: skip
    # Deleting the subscription deletes its log.
    assert await SubscriptionStore(redis).delete("analyst")
    assert await history.lines("analyst") == []


async def test_the_log_keeps_its_length(redis: Redis) -> None:
    history = DeliveryLog(redis, 10)
    alert = make_alert("a1")
    job = Job(id="msg_1", subscription_id="s", kind="alert", alerts=[alert], created_at=0)
    for n in range(25):
        await history.attempt(job, SendResult("retry", f"HTTP {n}"), at=n, seconds=0.01)
    lines = await history.lines("s", count=100)
    assert [line.detail for line in lines] == [f"HTTP {n}" for n in range(24, 14, -1)]


async def _outcomes(history: DeliveryLog, subscription_id: str, expected: list[str]) -> bool:
    lines = await history.lines(subscription_id, count=len(expected))
    return [line.outcome for line in lines] == expected
