"""Every delivery channel in one table: what a subscription needs, where it sends, how long a
send may take.

The subscription's ``channel`` values and required fields, the private-address guard, the
channel instances of the dispatcher and each channel's lease all derive from
:data:`CHANNELS`: a new channel is a module plus one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

from redis.asyncio import Redis

from services.notifier.channels.base import Channel
from services.notifier.channels.chat import ChatChannel, chat_targets, validate_chat_url
from services.notifier.channels.console import ConsoleChannel
from services.notifier.channels.email import EmailChannel
from services.notifier.channels.webhook import WebhookChannel, webhook_targets
from services.notifier.queue import JobQueue
from services.settings import Settings
from shared.durability import Durable

if TYPE_CHECKING:
    from services.notifier.subscriptions import Subscription

Target = tuple[str, int | None]
# Messages read by people (mail, chat) are limited unless the subscriber says otherwise.
MESSAGES_PER_MINUTE_FOR_PEOPLE = 60
_CONSOLE_TIMEOUT_SECONDS = 5.0


def _no_targets(_: Subscription) -> list[Target]:
    return []


def _url_targets(
    targets: Callable[[str], list[Target]],
) -> Callable[[Subscription], list[Target]]:
    return lambda subscription: targets(subscription.url or "")


def _check_webhook(subscription: Subscription) -> None:
    if urlsplit(subscription.url or "").scheme not in ("http", "https"):
        raise ValueError("url: a webhook needs an http(s) url")
    if not urlsplit(subscription.url or "").hostname:
        raise ValueError("url: has no host")


def _check_chat(subscription: Subscription) -> None:
    try:
        validate_chat_url(subscription.url or "")
    except ValueError as error:
        raise ValueError(f"url: {error}") from error


def _check_nothing(_: Subscription) -> None:
    return None


@dataclass(frozen=True)
class ChannelSpec:
    """What the notifier knows about one channel."""

    name: str
    make: Callable[[Settings, TextIO | None], Channel]
    timeout: Callable[[Settings], float]
    """The longest one send may take; a claimed job's lease is this plus a margin."""
    required: Mapping[str, str]
    """Subscription fields this channel needs, with the message when one is missing."""
    targets: Callable[[Subscription], list[Target]] = _no_targets
    """Hosts the subscriber chose that a send connects to (raises when it cannot tell)."""
    check: Callable[[Subscription], None] = _check_nothing
    """Checks of the fields' values (raises ``ValueError`` starting with the field's name)."""
    default_rate_limit: int | None = None
    """Messages per minute when the subscriber sets none (None: unlimited)."""
    folds_overflow: bool = False
    """Alerts over the rate limit join one "…and N more" message instead of queueing."""


CHANNELS: dict[str, ChannelSpec] = {
    spec.name: spec
    for spec in (
        ChannelSpec(
            name="webhook",
            make=lambda settings, _: WebhookChannel(
                timeout_seconds=settings.notifier.webhook_timeout_seconds,
                allow_private=settings.allow_private_targets,
            ),
            timeout=lambda settings: settings.notifier.webhook_timeout_seconds,
            required={
                "url": "a webhook needs an http(s) url",
                "secret": "a webhook needs a signing secret (whsec_...)",
            },
            targets=_url_targets(webhook_targets),
            check=_check_webhook,
        ),
        ChannelSpec(
            name="email",
            make=lambda settings, _: EmailChannel(
                settings.smtp, unsubscribe_url=settings.notifier.unsubscribe_url
            ),
            timeout=lambda settings: settings.smtp.timeout_seconds,
            required={"to": "an email subscription needs at least one recipient"},
            default_rate_limit=MESSAGES_PER_MINUTE_FOR_PEOPLE,
            folds_overflow=True,
        ),
        ChannelSpec(
            name="chat",
            make=lambda settings, _: ChatChannel(
                timeout_seconds=settings.notifier.chat_timeout_seconds,
                allow_private=settings.allow_private_targets,
            ),
            timeout=lambda settings: settings.notifier.chat_timeout_seconds,
            required={"url": "a chat subscription needs an Apprise URL (e.g. slack://...)"},
            targets=_url_targets(chat_targets),
            check=_check_chat,
            default_rate_limit=MESSAGES_PER_MINUTE_FOR_PEOPLE,
            folds_overflow=True,
        ),
        ChannelSpec(
            name="console",
            make=lambda _, stream: ConsoleChannel(stream),
            timeout=lambda _: _CONSOLE_TIMEOUT_SECONDS,
            required={},
        ),
    )
}


def make_channels(settings: Settings, console: TextIO | None = None) -> dict[str, Channel]:
    """One instance of every channel, configured from settings."""
    return {name: spec.make(settings, console) for name, spec in CHANNELS.items()}


def lease_seconds(settings: Settings, channel: str | None) -> float:
    """How long a claimed job of ``channel`` stays leased: its send timeout plus the margin
    (the longest timeout for a job whose channel is not known)."""
    spec = CHANNELS.get(channel or "")
    timeout = (
        spec.timeout(settings) if spec else max(s.timeout(settings) for s in CHANNELS.values())
    )
    return timeout + settings.notifier.lease_margin_seconds


def job_queue(redis: Redis, settings: Settings) -> JobQueue:
    """The delivery schedule, each channel's jobs leased for that channel's lease."""
    leases = {name: lease_seconds(settings, name) for name in CHANNELS}
    return JobQueue(redis, settings.notifier, leases, Durable.of(redis, settings.bus))
