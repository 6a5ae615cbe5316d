"""Assembling services from settings: config is loaded and validated before anything starts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import structlog

from services.classifier.service import ClassifierService
from services.layout import migrate_layout
from services.notifier.service import NotifierService
from services.notifier.subscriptions import load_subscriptions
from services.notifier.validation import SubscriptionRefusedError, check_subscription
from services.poller.service import PollerService
from services.poller.sources import load_sources
from shared.bus import TRANSIENT_ERRORS
from shared.connection import connect, ensure_access
from shared.redis_url import parse_redis_url
from shared.runtime import AppSetup, Component, serve
from shared.settings import ConfigError, Settings
from shared.streams import ALERTS, ARTICLES, DEAD, DELIVERIES

ServiceName = Literal["poller", "classifier", "notifier"]
ALL_SERVICES: tuple[ServiceName, ...] = ("poller", "classifier", "notifier")

DEFAULTS_DIR = Path(__file__).parent / "defaults"
DEFAULT_SOURCES = DEFAULTS_DIR / "sources.yaml"
DEFAULT_SUBSCRIPTIONS = DEFAULTS_DIR / "subscriptions.yaml"

log = structlog.get_logger(component="runtime")


async def run_services(
    settings: Settings, names: Sequence[ServiceName], *, stop: asyncio.Event | None = None
) -> None:
    """Run the named services in this process until SIGTERM, SIGINT or ``stop``."""
    if settings.redis_url is None:
        raise ConfigError("VIGIL_REDIS_URL is required (or run `vigil up` for an embedded Redis)")
    # Validate every file before connecting to anything: bad config fails fast.
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
    log.info("runtime.redis", deployment=parse_redis_url(settings.redis_url).describe())
    redis = connect(settings.redis_url, settings.bus)
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
    components: list[Component] = []
    setups: list[AppSetup] = []
    if "poller" in names:
        poller = PollerService(settings, redis, sources)
        components.append(poller)
        setups.append(poller.setup_app)
    if "classifier" in names:
        components.append(ClassifierService(settings, redis))
    if "notifier" in names:
        notifier = NotifierService(settings, redis, subscriptions)
        components.append(notifier)
        setups.append(notifier.setup_app)
    await serve(
        components,
        redis=redis,
        http=settings.http,
        streams=(ARTICLES, ALERTS, DELIVERIES, DEAD),
        app_setups=setups,
        stop=stop,
        grace_seconds=settings.bus.shutdown_grace_seconds,
    )
