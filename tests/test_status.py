"""``vigil status``: one view of streams, groups, dead letters, sources and subscriptions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from redis.asyncio import Redis

from services.notifier.store import SubscriptionStore
from services.notifier.subscriptions import Subscription
from services.poller.state import StateStore
from shared.bus import StreamBus
from shared.streams import ALERTS, NOTIFIER_GROUP
from tests.factories import make_alert
from tests.processes import clean_env, run_vigil

SECRET = "whsec_c3VwZXJzZWNyZXRzdXBlcnNlY3JldA=="


async def _prepare(redis: Redis, tmp_path: Path) -> Path:
    bus = StreamBus(redis)
    await bus.ensure_group(ALERTS, NOTIFIER_GROUP)
    for n in range(3):
        await bus.publish(ALERTS, make_alert(f"a{n}"))
    store = SubscriptionStore(redis)
    await store.put(Subscription.model_validate(
        {"id": "desk", "channel": "webhook", "url": "https://hooks.example.org/vigil",
         "secret": SECRET}))  # fmt: skip
    await store.record_failure("desk", 1000.0, "HTTP 500")
    await StateStore(redis).failure("wire", outcome="http_error", error="HTTP 503")
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n  - {id: wire, url: 'https://wire.example.org/rss'}\n")
    return sources


async def test_status_shows_streams_sources_and_subscriptions(
    deployment: tuple[str, Redis], tmp_path: Path
) -> None:
    """On one server, a Sentinel-managed master and a cluster alike."""
    redis_url, redis = deployment
    sources = await _prepare(redis, tmp_path)
    env = clean_env(tmp_path, VIGIL_REDIS_URL=redis_url, VIGIL_SOURCES_FILE=str(sources))

    result = await asyncio.to_thread(run_vigil, ["status", "--json"], env)
    assert result.returncode == 0, result.stderr
    data = orjson.loads(result.stdout)
    alerts = next(s for s in data["streams"] if s["stream"] == ALERTS)
    assert alerts["length"] == 3
    [group] = alerts["groups"]
    assert (group["group"], group["lag"], group["pending"]) == (NOTIFIER_GROUP, 3, 0)
    [source] = data["sources"]
    assert (source["id"], source["health"], source["last_error"]) == ("wire", "failing", "HTTP 503")
    [subscription] = data["subscriptions"]
    assert subscription["id"] == "desk"
    assert subscription["state"]["consecutive_failures"] == 1
    assert SECRET not in result.stdout

    health = await asyncio.to_thread(run_vigil, ["sources", "status", "--json"], env)
    assert health.returncode == 0, health.stderr
    [row] = [orjson.loads(line) for line in health.stdout.splitlines()]
    assert (row["id"], row["health"]) == ("wire", "failing")

    view = await asyncio.to_thread(run_vigil, ["status"], env)
    assert view.returncode == 0, view.stderr
    assert "vigil:alerts" in view.stdout
    assert "wire" in view.stdout
    assert "failing" in view.stdout
    assert "desk" in view.stdout
    assert SECRET not in view.stdout


async def test_status_without_redis_url_is_a_clear_error(tmp_path: Path) -> None:
    result = await asyncio.to_thread(run_vigil, ["status"], clean_env(tmp_path))
    assert result.returncode != 0
    assert "VIGIL_REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr
