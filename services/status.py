"""``vigil status``: streams, consumer groups and dead letters at a glance."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click
import orjson
from redis.asyncio import Redis

from services.redis_cli import with_redis
from shared.bus import StreamBus
from shared.streams import ALERTS, ARTICLES, DEAD


async def collect_status(redis: Redis) -> dict[str, Any]:
    """Everything ``vigil status`` shows, as plain data."""
    bus = StreamBus(redis)
    streams = []
    for stream in (ARTICLES, ALERTS, DEAD):
        groups = [asdict(g) for g in await bus.group_status(stream)]
        streams.append({"stream": stream, "length": int(await redis.xlen(stream)),
                        "groups": groups})  # fmt: skip
    return {"streams": streams}


def render_status(data: dict[str, Any]) -> str:
    """The status as a readable terminal view."""
    lines = [f"{'STREAM':<16} {'LENGTH':>8}  {'GROUP':<12} {'CONSUMERS':>9} {'PENDING':>8} "
             f"{'LAG':>8}"]  # fmt: skip
    for stream in data["streams"]:
        groups = stream["groups"] or [None]
        for group in groups:
            if group is None:
                lines.append(f"{stream['stream']:<16} {stream['length']:>8}  {'-':<12}")
                continue
            lag = "?" if group["lag"] is None else str(group["lag"])
            lines.append(
                f"{stream['stream']:<16} {stream['length']:>8}  {group['group']:<12} "
                f"{group['consumers']:>9} {group['pending']:>8} {lag:>8}"
            )
    return "\n".join(lines)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(as_json: bool) -> None:
    """Streams with length, consumer groups with lag and pending counts, dead letters."""
    data = with_redis(collect_status)
    if as_json:
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    else:
        click.echo(render_status(data))
