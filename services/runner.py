"""Running services in one process: their config is loaded and validated before anything
starts, then each named service's components are built and served until a stop signal.

``vigil up`` runs all of them; ``vigil poller``, ``vigil classifier`` and ``vigil notifier``
one each (the notifier's process also serves the console and keeps the archive).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from redis.asyncio import Redis

from services.archive.service import ArchiveService
from services.classifier.service import ClassifierService
from services.console.web import Console
from services.layout import migrate_layout
from services.notifier.service import NotifierService
from services.notifier.subscriptions import Subscription, load_subscriptions
from services.notifier.validation import SubscriptionRefusedError, check_subscription
from services.poller.service import PollerService
from services.poller.sources import Source, load_sources
from services.settings import Settings
from services.terminal import TerminalView
from shared.bus import TRANSIENT_ERRORS
from shared.connection import connect, ensure_access
from shared.language import load_models
from shared.logging import get_logger
from shared.redis_url import parse_redis_url
from shared.runtime import AppSetup, Component, serve
from shared.settings import ConfigError
from shared.streams import ALERTS, ARTICLES, DEAD, REPLAYS

ServiceName = Literal["poller", "classifier", "notifier"]
ALL_SERVICES: tuple[ServiceName, ...] = ("poller", "classifier", "notifier")

DEFAULTS_DIR = Path(__file__).parent / "defaults"
DEFAULT_SOURCES = DEFAULTS_DIR / "sources.yaml"
DEFAULT_SUBSCRIPTIONS = DEFAULTS_DIR / "subscriptions.yaml"

log = get_logger("runtime")


async def run_services(
    settings: Settings,
    names: Sequence[ServiceName],
    *,
    stop: asyncio.Event | None = None,
    terminal: TerminalView | None = None,
) -> None:
    """Run the named services in this process until SIGTERM, SIGINT or ``stop``; with a
    ``terminal``, alerts go to its screen above its status line."""
    if settings.redis_url is None:
        raise ConfigError("VIGIL_REDIS_URL is required (or run `vigil up` for an embedded Redis)")
    # Validate every file before connecting to anything: bad config fails fast.
    sources, subscriptions = _configuration(settings, names)
    if "poller" in names or "classifier" in names:
        # Once, before any worker: threads share it instead of each loading its own.
        await asyncio.to_thread(load_models)
    log.info("runtime.redis", deployment=parse_redis_url(settings.redis_url).describe())
    redis = await _connected(settings.redis_url, settings)
    components, setups = _components(
        settings, redis, names, sources=sources, subscriptions=subscriptions, terminal=terminal
    )
    await serve(
        components,
        redis=redis,
        http=settings.http,
        streams=(ARTICLES, ALERTS, REPLAYS, DEAD),
        app_setups=setups,
        stop=stop,
        grace_seconds=settings.bus.shutdown_grace_seconds,
    )


def _configuration(
    settings: Settings, names: Sequence[ServiceName]
) -> tuple[list[Source], list[Subscription]]:
    """The sources and subscriptions files the named services read, validated."""
    sources = load_sources(settings.sources_file or DEFAULT_SOURCES) if "poller" in names else []
    subscriptions = (
        load_subscriptions(settings.subscriptions_file or DEFAULT_SUBSCRIPTIONS)
        if "notifier" in names
        else []
    )
    for subscription in subscriptions:
        try:
            check_subscription(subscription, allow_private=settings.allow_private_targets)
        except SubscriptionRefusedError as error:
            raise ConfigError(f"subscription {subscription.id}: {error}") from error
    return sources, subscriptions


async def _connected(url: str, settings: Settings) -> Redis:
    """A client on ``url``, its access checked and the key layout brought up to date."""
    redis = connect(url, settings.bus)
    try:
        await ensure_access(redis)
        await migrate_layout(redis)
    except TRANSIENT_ERRORS as error:
        # Not up yet: start anyway, not ready; the consumers retry until it is. (Keys of an
        # older layout are then moved at the next start.)
        log.warning("runtime.redis_unreachable", error=str(error))
    except ConfigError:
        await redis.aclose()
        raise
    return redis


def _components(
    settings: Settings,
    redis: Redis,
    names: Sequence[ServiceName],
    *,
    sources: list[Source],
    subscriptions: list[Subscription],
    terminal: TerminalView | None,
) -> tuple[list[Component], list[AppSetup]]:
    """The components of the named services, and what they mount on the HTTP server."""
    components: list[Component] = []
    setups: list[AppSetup] = []
    if "poller" in names:
        poller = PollerService(settings, redis, sources)
        components.append(poller)
        setups.append(poller.setup_app)
    if "classifier" in names:
        components.append(ClassifierService(settings, redis))
    if "notifier" in names:
        console_out = terminal.alerts if terminal else None
        notifier = NotifierService(settings, redis, subscriptions, console=console_out)
        console = Console(settings, redis, notifier, sources or _readable_sources(settings))
        archive = ArchiveService(settings, redis, on_stored=console.live.wake)
        components += [notifier, archive, console]
        setups += [notifier.setup_app, console.setup_app]
    if terminal is not None:
        components.append(terminal.status_line(settings, redis, [s.id for s in sources]))
    return components, setups


def _readable_sources(settings: Settings) -> list[Source]:
    """The sources file, for the console's Sources view of a process that polls nothing; an
    unreadable file only leaves that view empty (the pollers read their own)."""
    try:
        return load_sources(settings.sources_file or DEFAULT_SOURCES)
    except ConfigError as error:
        log.warning("runtime.sources_unreadable", error=str(error))
        return []
