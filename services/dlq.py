"""``vigil dlq``: inspect, replay and purge the dead-letter stream."""

from __future__ import annotations

import click
import orjson
from redis.asyncio import Redis

from services.operator_redis import with_redis
from shared.bus import StreamBus
from shared.settings import ConfigError
from shared.table import render_table


@click.group()
def dlq() -> None:
    """Dead letters: entries that failed for good, kept with their reason."""


@dlq.command(name="list")
@click.option("--limit", default=50, show_default=True, help="How many to show.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_letters(limit: int, as_json: bool) -> None:
    """List dead letters, oldest first."""
    letters = with_redis(lambda redis: StreamBus(redis).dead_letters(count=limit))
    if as_json:
        for dead_id, letter in letters:
            click.echo(orjson.dumps({"dead_id": dead_id, **letter.model_dump(mode="json")}))
        return
    if not letters:
        click.echo("no dead letters")
        return
    rows = [
        (dead_id, letter.source_stream, letter.deliveries, _shortened(letter.reason, 70))
        for dead_id, letter in letters
    ]
    click.echo("\n".join(render_table(("DEAD ID", "STREAM", "DELIVERIES", "REASON"), rows)))


def _shortened(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 3] + "..."


@dlq.command()
@click.argument("dead_id")
def show(dead_id: str) -> None:
    """Show one dead letter in full."""
    letter = with_redis(lambda redis: StreamBus(redis).get_dead_letter(dead_id))
    if letter is None:
        raise ConfigError(f"no dead letter with id {dead_id}")
    click.echo(orjson.dumps(letter.model_dump(mode="json"), option=orjson.OPT_INDENT_2))


@dlq.command()
@click.argument("dead_ids", nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
def replay(dead_ids: tuple[str, ...], replay_all: bool) -> None:
    """Put dead letters back on their stream; idempotency keys keep effects single."""

    async def run(redis: Redis) -> list[tuple[str, str | None]]:
        bus = StreamBus(redis)
        ids = list(dead_ids)
        if replay_all:
            ids = [dead_id for dead_id, _ in await bus.dead_letters(count=100_000)]
        return [(dead_id, await bus.replay(dead_id)) for dead_id in ids]

    if not dead_ids and not replay_all:
        raise ConfigError("name the dead letters to replay, or pass --all")
    results = with_redis(run)
    missing = [dead_id for dead_id, new_id in results if new_id is None]
    for dead_id, new_id in results:
        if new_id is not None:
            click.echo(f"replayed {dead_id} as {new_id}")
    if missing:
        raise ConfigError(f"no dead letter with id {', '.join(missing)}")


@dlq.command()
@click.argument("dead_ids", nargs=-1)
@click.option("--all", "purge_all", is_flag=True, help="Delete every dead letter.")
def purge(dead_ids: tuple[str, ...], purge_all: bool) -> None:
    """Delete dead letters for good."""
    if not dead_ids and not purge_all:
        raise ConfigError("name the dead letters to purge, or pass --all")
    count = with_redis(lambda redis: StreamBus(redis).purge(None if purge_all else dead_ids))
    click.echo(f"purged {count} dead letter(s)")
