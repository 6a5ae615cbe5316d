"""Vigil on a Redis Cluster of three masters: every script and transaction stays in one slot,
and the whole pipeline runs, dead letters and operator commands included."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from services.notifier.channels.registry import job_queue
from services.notifier.jobs import JOBS, Job, digest_job, job_id
from services.notifier.store import SubscriptionStore
from services.notifier.subscriptions import Subscription
from services.poller.dedupe import SeenStore
from services.poller.stories import StoryIndex, fingerprint, group
from services.settings import Settings
from shared.bus import StreamBus
from shared.models import Article
from shared.streams import (
    ALERTS,
    ARTICLES,
    CLASSIFIER_GROUP,
    DEAD,
    NOTIFIER_GROUP,
    REPLAYS,
)
from tests.factories import make_alert
from tests.helpers import wait_for
from tests.pipeline import running_pipeline
from tests.processes import clean_env, run_vigil
from tests.receivers import SECRET
from tests.topologies import ClusterDeployment

pytestmark = [pytest.mark.timeout(180)]


async def test_notifier_scripts_and_transactions_run_on_a_cluster(
    cluster_client: Redis, settings: Settings
) -> None:
    now = time.time()
    queue = job_queue(cluster_client, settings)
    alert = make_alert("a1", story_id="story-1")
    job = Job(id=job_id("s1", "story-1"), subscription_id="s1", kind="alert",
                      channel="webhook", alerts=[alert], story_id="story-1",
                      created_at=now)  # fmt: skip
    assert await queue.schedule_once(job, "story-1", now)
    assert not await queue.schedule_once(job, "story-1", now), "the idempotency key holds"
    digest = digest_job("s2", "webhook", int(now // 60), now)
    assert await queue.add_to_digest("s2", "webhook", make_alert("a2"), now, 60)
    claimed = {j.id for j in await queue.claim_due((int(now // 60) + 1) * 60, 10)}
    assert claimed == {job.id, digest.id}
    assert [a.alert_id for a in await queue.digest_alerts(digest)] == ["alert_a2"]
    assert await queue.fold(job, job.alerts, int(now // 60) + 1)
    await queue.put(digest, now)
    await queue.finish(digest)
    assert await queue.due_counts(now + 120) == {**dict.fromkeys(queue.leases, 0), "webhook": 1}

    store = SubscriptionStore(cluster_client)
    desk = Subscription.model_validate({"id": "desk", "channel": "webhook",
                                        "url": "https://hooks.example.org/v",
                                        "secret": SECRET})  # fmt: skip
    assert await store.sync_file([desk]) == ["desk"]
    assert await store.put(desk.model_copy(update={"enabled": True})) is False
    await store.record_attempt("desk", failed=True, period=1, periods=10, ttl=60)
    await store.open_circuit("desk", now + 60, now)
    await store.record_success("desk", now, close=True)
    assert (await store.state("desk")).circuit(now) == "closed"
    assert await store.disable("desk", "by hand") is not None
    assert await store.delete("desk")


async def test_bus_and_poller_state_on_a_cluster(cluster_client: Redis, settings: Settings) -> None:
    bus = StreamBus(cluster_client, settings.bus)
    await bus.ensure_group(ALERTS, NOTIFIER_GROUP)
    await bus.publish(ALERTS, make_alert("a1"))
    read: list[tuple[str, list[tuple[str, dict[str, str]]]]] = await cluster_client.xreadgroup(
        NOTIFIER_GROUP, "n1", {ALERTS: ">"}, count=1
    )  # type: ignore[assignment]
    [(_, [(entry_id, fields)])] = read
    queue = job_queue(cluster_client, settings)
    job = Job(id="msg_1", subscription_id="s1", kind="test", channel="webhook",
                      created_at=time.time())  # fmt: skip
    await queue.put(job, time.time())
    await bus.dead_letter(stream=ALERTS, group=NOTIFIER_GROUP, entry_id=entry_id, fields=fields,
                          reason="rejected: test", deliveries=1)  # fmt: skip
    await bus.dead_letter(stream=REPLAYS, group=NOTIFIER_GROUP, entry_id=job.id,
                          fields={"data": "{}"}, reason="rejected: gone", deliveries=1,
                          ack=False, also=lambda pipe: queue.forget(pipe, job))  # fmt: skip
    [status] = await bus.group_status(ALERTS)
    assert status.pending == 0
    assert await cluster_client.hlen(JOBS) == 0, "the dead-lettered job is forgotten"
    letters = await bus.dead_letters()
    assert [letter.reason for _, letter in letters] == ["rejected: test", "rejected: gone"]
    assert await bus.replay(letters[0][0])
    assert await cluster_client.xlen(ALERTS) == 2

    seen = SeenStore(cluster_client, ttl_seconds=3600, max_entries=1000)
    stories = StoryIndex(cluster_client, ttl_seconds=3600)
    assert await seen.claim_unseen(["x1", "x2"]) == ["x1", "x2"]
    article = Article(id="x3", url="https://wire.example/x3", title="Turkish troops in Libya",
                      text="Turkish troops arrived in Tripoli on Monday, the ministry said in "
                      "a statement about the deployment.", source="wire",
                      fetched_at=datetime.now(UTC))  # fmt: skip
    print_ = fingerprint(article)
    [assigned] = group([("x3", print_)], await stories.buckets([print_]))
    assert assigned.story_id == "x3"
    async with cluster_client.pipeline(transaction=True) as pipe:  # one slot: one transaction
        seen.mark_on(pipe, ["x1", "x2"])
        stories.remember(pipe, [assigned])
        await pipe.execute()
    assert await seen.claim_unseen(["x1", "x2", "x3"]) == ["x3"]
    [again] = group([("x4", print_)], await stories.buckets([print_]))
    assert again.story_id == "x3", "a copy of the story is grouped with it"


async def test_pipeline_on_a_cluster(
    settings: Settings, tmp_path: Path, cluster: ClusterDeployment, cluster_client: Redis
) -> None:
    """Poller, classifier and notifier on the cluster: every alert at every subscriber under
    one id; a poison entry is dead-lettered, and the operator commands work on the cluster."""
    config = settings.model_copy(update={"redis_url": cluster.url})
    async with running_pipeline(config, tmp_path) as flow:
        flow.wire.publish(6)
        await flow.wait_delivered(60, "every alert at every subscriber")
        await cluster_client.xadd(ARTICLES, {"type": "Article", "v": "1", "data": "{broken"})
        await wait_for(lambda: _dead_letters(cluster_client), timeout=20, message="a dead letter")
    flow.assert_one_id_per_alert()
    env = clean_env(tmp_path, VIGIL_REDIS_URL=cluster.url,
                    VIGIL_SOURCES_FILE=str(tmp_path / "sources.yaml"))  # fmt: skip
    status = await asyncio.to_thread(run_vigil, ["status", "--json"], env)
    assert status.returncode == 0, status.stderr
    data = orjson.loads(status.stdout)
    streams = {s["stream"]: s for s in data["streams"]}
    [classifier] = streams[ARTICLES]["groups"]
    assert (classifier["group"], classifier["pending"]) == (CLASSIFIER_GROUP, 0)
    assert {s["id"] for s in data["subscriptions"]} == {"alpha", "beta"}
    assert all(s["state"]["delivered"] == 6 for s in data["subscriptions"])
    [source] = data["sources"]
    assert source["health"] == "ok"
    letters = await asyncio.to_thread(run_vigil, ["dlq", "list", "--json"], env)
    [letter] = [orjson.loads(line) for line in letters.stdout.splitlines()]
    assert letter["reason"].startswith("decode")
    replayed = await asyncio.to_thread(run_vigil, ["dlq", "replay", letter["dead_id"]], env)
    assert replayed.returncode == 0, replayed.stderr
    assert await cluster_client.xlen(ARTICLES) == 8  # six items, the poison entry and its replay


async def _dead_letters(cluster_client: Redis) -> int:
    return int(await cluster_client.xlen(DEAD))
