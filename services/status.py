"""``vigil status``: streams, groups, dead letters, sources and subscriptions at a glance."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import click
import orjson
from redis.asyncio import Redis

from services.notifier.jobs import waiting_jobs
from services.notifier.state import subscription_health
from services.notifier.store import SubscriptionStore
from services.operator_redis import with_redis
from services.poller.health import configured_sources, source_rows
from services.poller.sources import Source
from shared.bus import StreamBus
from shared.streams import ALERTS, ARTICLES, DEAD, REPLAYS
from shared.table import render_table


async def collect_status(redis: Redis, sources: list[Source]) -> dict[str, Any]:
    """Everything ``vigil status`` shows, as plain data."""
    bus = StreamBus(redis)
    streams = []
    for stream in (ARTICLES, ALERTS, REPLAYS, DEAD):
        groups = [asdict(g) for g in await bus.group_status(stream)]
        streams.append({"stream": stream, "length": int(await redis.xlen(stream)),
                        "groups": groups})  # fmt: skip
    waiting = await waiting_jobs(redis)
    subscriptions = []
    for row in await SubscriptionStore(redis).overview():
        sub, state = row["subscription"], row["state"]
        subscriptions.append({**sub, "state": state, "jobs_waiting": waiting.get(sub["id"], 0)})
    return {
        "streams": streams,
        "sources": await source_rows(redis, sources),
        "subscriptions": subscriptions,
    }


def render_status(data: dict[str, Any], now: float | None = None) -> str:
    """The status as a readable terminal view: three tables."""
    now = time.time() if now is None else now
    streams: list[tuple[object, ...]] = []
    for stream in data["streams"]:
        name, length, groups = stream["stream"], stream["length"], stream["groups"]
        streams += [(name, length, g["group"], g["consumers"], g["pending"], g["lag"])
                    for g in groups] or [(name, length, "-", "", "", "")]  # fmt: skip
    sources = [(s["id"], s["health"], s["consecutive_failures"], s["items_seen"],
                str(s["last_error"] or "")[:60]) for s in data["sources"]]  # fmt: skip
    subs = [(row["id"], row["channel"], row["mode"], subscription_health(row, now),
             row["state"]["delivered"], row["state"]["failed"], row["state"]["dead_lettered"],
             row["jobs_waiting"]) for row in data["subscriptions"]]  # fmt: skip
    lines = render_table(("STREAM", "LENGTH", "GROUP", "CONSUMERS", "PENDING", "LAG"), streams)
    lines += ["", *render_table(("SOURCE", "HEALTH", "FAILS", "ITEMS", "LAST ERROR"), sources), ""]
    header = ("SUBSCRIPTION", "CHANNEL", "MODE", "STATE", "DELIVERED", "FAILED", "DEAD", "WAITING")
    none = "no subscriptions in Redis (no notifier ran yet)"
    lines += render_table(header, subs) if subs else [none]
    return "\n".join(lines)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(as_json: bool) -> None:
    """Streams, consumer groups (lag, pending), dead letters, sources and subscriptions."""
    sources = configured_sources()
    data = with_redis(lambda redis: collect_status(redis, sources))
    if as_json:
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    else:
        click.echo(render_status(data))
