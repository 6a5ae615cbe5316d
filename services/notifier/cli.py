"""``vigil subscriptions``: manage subscriptions in Redis, as the admin API does."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson
from redis.asyncio import Redis

from services.notifier.channels.registry import job_queue
from services.notifier.control import sample_alert
from services.notifier.intake import Intake
from services.notifier.store import SubscriptionStore
from services.notifier.subscriptions import (
    Subscription,
    expanded,
    keep_masked,
    load_subscriptions,
)
from services.notifier.validation import SubscriptionRefusedError, check_subscription
from services.operator_redis import with_redis
from services.settings import load_settings
from shared.settings import ConfigError
from shared.table import render_table
from shared.vocabulary import Vocabulary, published_vocabulary
from shared.yamlfile import parse_yaml


def _when(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S") if epoch else "-"


def render_overview(rows: list[dict[str, Any]]) -> str:
    """Subscriptions and their endpoints' state as a table."""
    if not rows:
        return "no subscriptions"
    header = ("ID", "CHANNEL", "MODE", "ENABLED", "DELIVERED", "FAILED", "DEAD", "LAST SUCCESS",
              "LAST ERROR")  # fmt: skip
    table = [
        (sub["id"], sub["channel"], sub["mode"], "yes" if sub["enabled"] else "no",
         state["delivered"], state["failed"], state["dead_lettered"],
         _when(state["last_success_at"]), state["last_error"][:40] or "-")
        for sub, state in ((row["subscription"], row["state"]) for row in rows)
    ]  # fmt: skip
    return "\n".join(render_table(header, table))


@click.group()
def subscriptions() -> None:
    """Subscribers: who receives which alerts, and how deliveries to them are going."""


@subscriptions.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_subscriptions(as_json: bool) -> None:
    """List subscriptions with their delivery state (secrets masked)."""
    rows = with_redis(lambda redis: SubscriptionStore(redis).overview())
    click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2) if as_json else render_overview(rows))


@subscriptions.command()
@click.argument("subscription_id")
def show(subscription_id: str) -> None:
    """Show one subscription and its delivery state."""

    async def run(redis: Redis) -> dict[str, Any] | None:
        store = SubscriptionStore(redis)
        subscription = await store.get(subscription_id)
        if subscription is None:
            return None
        return {**subscription.public(), "state": (await store.state(subscription_id)).__dict__}

    view = with_redis(run)
    if view is None:
        raise ConfigError(f"no subscription {subscription_id!r}")
    click.echo(orjson.dumps(view, option=orjson.OPT_INDENT_2))


def _parse(
    text: str, where: str, stored: dict[str, Subscription | None], vocabulary: Vocabulary
) -> list[Subscription]:
    """The subscriptions of a YAML or JSON document: a list, one, or ``subscriptions: [...]``."""
    document = parse_yaml(text, where)
    data = document.data
    at: tuple[str | int, ...] = ()
    if isinstance(data, dict) and "subscriptions" in data:
        data, at = data["subscriptions"], ("subscriptions",)
    items = data if isinstance(data, list) else [data]
    places = [(*at, n) for n in range(len(items))] if isinstance(data, list) else [at]
    parsed = []
    settings = load_settings()
    for item, place in zip(expanded(document, items), places, strict=True):
        # What `show` printed (a masked chat URL or secret) keeps what is stored.
        data = (
            keep_masked(item, stored.get(str(item.get("id")))) if isinstance(item, dict) else item
        )
        subscription = document.validate(
            Subscription, data, at=place, context=vocabulary.as_context()
        )
        try:
            check_subscription(subscription, allow_private=settings.allow_private_targets)
        except SubscriptionRefusedError as error:
            raise ConfigError(f"{where}:{document.line(place)}: {error}") from error
        parsed.append(subscription)
    return parsed


@subscriptions.command(name="apply")
@click.argument("source", type=click.File("r"))
def apply(source: Any) -> None:
    """Create or replace subscriptions from a YAML or JSON document (FILE or -).

    A masked chat URL or secret, as ``show`` prints them, keeps the stored value.
    """
    document = source.read()

    async def run(redis: Redis) -> list[tuple[Subscription, bool]]:
        store = SubscriptionStore(redis)
        stored: dict[str, Subscription | None] = {}
        for subscription in await store.all():
            stored[subscription.id] = subscription
        parsed = _parse(document, source.name, stored, await published_vocabulary(redis))
        return [(subscription, await store.put(subscription)) for subscription in parsed]

    for subscription, created in with_redis(run):
        click.echo(f"{'created' if created else 'replaced'} {subscription.id}")


@subscriptions.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def check(path: Path) -> None:
    """Validate a subscriptions YAML file without touching Redis."""
    settings = load_settings()
    items = load_subscriptions(path)
    for subscription in items:
        try:
            check_subscription(subscription, allow_private=settings.allow_private_targets)
        except SubscriptionRefusedError as error:
            raise ConfigError(f"{path}: {subscription.id}: {error}") from error
    click.echo(f"{path}: {len(items)} subscription(s) OK")


def _toggle(subscription_id: str, enabled: bool) -> None:
    async def run(redis: Redis) -> Subscription | None:
        store = SubscriptionStore(redis)
        if not enabled:
            return await store.disable(subscription_id, "disabled by an operator")
        return await store.enable(subscription_id)

    if with_redis(run) is None:
        raise ConfigError(f"no subscription {subscription_id!r}")
    click.echo(f"{'enabled' if enabled else 'disabled'} {subscription_id}")


@subscriptions.command()
@click.argument("subscription_id")
def disable(subscription_id: str) -> None:
    """Stop deliveries to a subscriber (jobs already queued are dead-lettered, not lost)."""
    _toggle(subscription_id, enabled=False)


@subscriptions.command()
@click.argument("subscription_id")
def enable(subscription_id: str) -> None:
    """Resume deliveries to a subscriber."""
    _toggle(subscription_id, enabled=True)


@subscriptions.command()
@click.argument("subscription_id")
def delete(subscription_id: str) -> None:
    """Delete a subscription and its delivery state."""
    if not with_redis(lambda redis: SubscriptionStore(redis).delete(subscription_id)):
        raise ConfigError(f"no subscription {subscription_id!r}")
    click.echo(f"deleted {subscription_id}")


@subscriptions.command()
@click.argument("subscription_id")
def test(subscription_id: str) -> None:
    """Queue a test event for a subscriber; a running notifier sends it."""

    async def run(redis: Redis) -> str | None:
        store = SubscriptionStore(redis)
        subscription = await store.get(subscription_id)
        if subscription is None:
            return None
        intake = Intake(job_queue(redis, load_settings()), store, clock=time.time)
        return await intake.send_test(subscription, sample_alert(subscription_id))

    queued = with_redis(run)
    if queued is None:
        raise ConfigError(f"no subscription {subscription_id!r}")
    click.echo(f"queued test event {queued} for {subscription_id}")
