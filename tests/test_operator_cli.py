"""``vigil dlq`` and ``vigil subscriptions`` as an operator runs them, against a real Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from redis.asyncio import Redis

from shared.bus import StreamBus
from shared.streams import ARTICLES, CLASSIFIER_GROUP
from tests.processes import clean_env, run_vigil

SECRET = "whsec_c3VwZXJzZWNyZXRzdXBlcnNlY3JldA=="


async def vigil(env: dict[str, str], *args: str, stdin: str = "") -> tuple[int, str, str]:
    result = await asyncio.to_thread(run_vigil, list(args), env, stdin)
    return result.returncode, result.stdout, result.stderr


async def _dead_letter_next(bus: StreamBus, redis: Redis) -> None:
    """Read the next entry as the classifier group would, and dead-letter it."""
    read: list[tuple[str, list[tuple[str, dict[str, str]]]]] = await redis.xreadgroup(
        CLASSIFIER_GROUP, "c1", {ARTICLES: ">"}, count=1
    )  # type: ignore[assignment]
    [(_, [(entry_id, fields)])] = read
    await bus.dead_letter(stream=ARTICLES, group=CLASSIFIER_GROUP, entry_id=entry_id,
                          fields=fields, reason="decode: broken JSON", deliveries=1)  # fmt: skip


async def test_dlq_list_show_replay_and_purge(
    deployment: tuple[str, Redis], tmp_path: Path
) -> None:
    """On one server, a Sentinel-managed master and a cluster alike."""
    redis_url, redis = deployment
    bus = StreamBus(redis)
    await bus.ensure_group(ARTICLES, CLASSIFIER_GROUP)
    await redis.xadd(ARTICLES, {"type": "Article", "v": "1", "data": "{broken"})
    await _dead_letter_next(bus, redis)
    env = clean_env(tmp_path, VIGIL_REDIS_URL=redis_url)

    code, out, err = await vigil(env, "dlq", "list", "--json")
    assert code == 0, err
    [letter] = [orjson.loads(line) for line in out.splitlines()]
    assert (letter["source_stream"], letter["reason"]) == (ARTICLES, "decode: broken JSON")
    dead_id = letter["dead_id"]

    code, out, _ = await vigil(env, "dlq", "show", dead_id)
    assert code == 0
    assert orjson.loads(out)["fields"]["data"] == "{broken"

    code, out, _ = await vigil(env, "dlq", "replay", dead_id)
    assert code == 0
    assert out.startswith(f"replayed {dead_id} as ")
    assert await redis.xlen(ARTICLES) == 2, "the entry is back on its stream"

    code, _, err = await vigil(env, "dlq", "show", "0-1")
    assert code != 0
    assert "no dead letter with id 0-1" in err
    assert "Traceback" not in err

    code, out, _ = await vigil(env, "dlq", "list")
    assert out.strip() == "no dead letters", "a replayed letter leaves the dead letters"

    await _dead_letter_next(bus, redis)
    code, out, _ = await vigil(env, "dlq", "purge", "--all")
    assert (code, out.strip()) == (0, "purged 1 dead letter(s)")
    assert await bus.dead_letters() == []


async def test_subscriptions_apply_list_disable_delete(
    deployment: tuple[str, Redis], tmp_path: Path
) -> None:
    """On one server, a Sentinel-managed master and a cluster alike."""
    redis_url, _ = deployment
    env = clean_env(tmp_path, VIGIL_REDIS_URL=redis_url, DESK_SECRET=SECRET)
    document = (
        "subscriptions:\n"
        "  - {id: desk, channel: webhook, url: 'https://hooks.example.org/v',"
        " secret: '${DESK_SECRET}', filters: {theaters: [libya]}}\n"
    )
    code, out, err = await vigil(env, "subscriptions", "apply", "-", stdin=document)
    assert (code, out.strip()) == (0, "created desk"), err

    code, out, _ = await vigil(env, "subscriptions", "list", "--json")
    [row] = orjson.loads(out)
    assert row["subscription"]["filters"]["theaters"] == ["libya"]
    assert SECRET not in out

    code, _, _ = await vigil(env, "subscriptions", "disable", "desk")
    assert code == 0
    code, out, _ = await vigil(env, "subscriptions", "show", "desk")
    assert orjson.loads(out)["enabled"] is False
    code, _, _ = await vigil(env, "subscriptions", "enable", "desk")
    assert code == 0
    code, out, err = await vigil(env, "subscriptions", "test", "desk")
    assert (code, out.startswith("queued test event msg_")) == (0, True), err

    bad = document.replace("libya", "atlantis")
    code, _, err = await vigil(env, "subscriptions", "apply", "-", stdin=bad)
    assert code != 0
    assert "<stdin>:2: subscriptions[0].filters.theaters: unknown theater 'atlantis'" in err
    assert "Traceback" not in err

    code, _, _ = await vigil(env, "subscriptions", "delete", "desk")
    assert code == 0
    code, _, err = await vigil(env, "subscriptions", "show", "desk")
    assert code != 0
    assert "no subscription 'desk'" in err
