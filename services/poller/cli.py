"""``vigil sources``: source health (``status``) and one-off test fetches (``test URL``)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import click
import orjson

from services.operator_redis import with_redis
from services.poller.adapters.base import ParseError, Tools
from services.poller.adapters.registry import ADAPTERS
from services.poller.articles import build_article, identify
from services.poller.fetch import Fetcher, FetchError
from services.poller.health import configured_sources, source_rows
from services.poller.pool import ParsePool
from services.poller.sources import Source
from services.poller.state import SourceState
from services.settings import Settings, load_settings
from shared.table import render_table


@click.group()
def sources() -> None:
    """Inspect news sources: their health, and what a URL would publish."""


def _age(epoch: float | None, now: float) -> str:
    if epoch is None:
        return "-"
    seconds = now - epoch
    sign = "" if seconds >= 0 else "in "
    seconds = abs(seconds)
    text = f"{seconds:.0f}s" if seconds < 120 else (
        f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.0f}h")  # fmt: skip
    return f"{sign}{text}" + (" ago" if not sign else "")


@sources.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source.")
def status(as_json: bool) -> None:
    """Health of every configured source, as recorded in Redis by the pollers."""
    configured = configured_sources()
    rows = with_redis(lambda redis: source_rows(redis, configured))
    if as_json:
        for row in rows:
            click.echo(orjson.dumps(row).decode())
        return
    now = time.time()
    header = ("SOURCE", "HEALTH", "LAST", "SUCCESS", "FAILS", "ITEMS", "EVERY", "NEXT", "ERROR")
    table = [
        (
            r["id"],
            r["health"],
            r["last_outcome"] or "-",
            _age(r["last_success"], now),  # type: ignore[arg-type]
            r["consecutive_failures"],
            r["items_seen"],
            f"{r['interval_seconds']:.0f}s" if r["interval_seconds"] else "-",
            _age(r["next_due"], now),  # type: ignore[arg-type]
            str(r["last_error"] or "")[:60],
        )
        for r in rows
    ]
    click.echo("\n".join(render_table(header, table)))


async def _test(settings: Settings, source: Source) -> tuple[str, list[str]]:
    tools = Tools(Fetcher(settings.poller), ParsePool(1), settings.poller)
    try:
        adapter = ADAPTERS[source.type].make(tools)
        polled = await adapter.poll(source, SourceState())
    finally:
        await tools.fetcher.close()
        tools.pool.close()
    skew = timedelta(seconds=settings.poller.future_skew_seconds)
    lines = []
    for entry in polled.entries:
        item = identify(entry, source="test", base_url=polled.url)
        if item is not None:
            article = build_article(item, source="test", fetched_at=polled.fetched_at, skew=skew)
            lines.append(article.model_dump_json())
    summary = f"{polled.kind}: {len(polled.entries)} entries, {len(lines)} articles"
    if polled.warning:
        summary += f" (recovered from: {polled.warning[:120]})"
    return summary, lines


@sources.command()
@click.argument("url")
@click.option(
    "--type", "kind", type=click.Choice(list(ADAPTERS)), default="auto", show_default=True
)
def test(url: str, kind: str) -> None:
    """Fetch URL once and print, as JSON Lines, the articles it would publish."""
    settings = load_settings()
    try:
        source = Source(id="test", url=url, type=kind)
        summary, lines = asyncio.run(_test(settings, source))
    except (FetchError, ParseError) as error:
        raise click.ClickException(f"{url}: {error}") from error
    except ValueError as error:
        raise click.ClickException(f"{url}: not an http(s) or file URL") from error
    for line in lines:
        click.echo(line)
    click.echo(summary, err=True)
