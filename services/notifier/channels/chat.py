"""Chat alerts (Slack, Discord, Microsoft Teams, Telegram, ...) through Apprise.

A chat URL carries the subscriber's tokens: it is never logged and never shown whole. Where
Apprise will connect passes the private-address guard (:mod:`services.notifier.targets`):
a plugin that posts to a host named in the URL (``json://``, ``ntfy://host/…``,
``workflows://``) has that host checked when saved and resolved and checked before each send;
a plugin that only talks to its service's own public host (Slack, Discord, Telegram) has
nothing a subscriber could point inwards; any other plugin cannot be checked and is refused
unless private targets are allowed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import apprise

from services.notifier.channels.base import SendResult
from services.notifier.render import no_mentions, render, subject
from services.notifier.targets import TargetRefusedError, check_resolved
from shared.models import Alert

if TYPE_CHECKING:
    from services.notifier.jobs import Job
    from services.notifier.subscriptions import Subscription

_loading_url: ContextVar[bool] = ContextVar("_loading_url", default=False)

# Plugins whose destination is a host the URL names: (host, port) come from the URL.
_URL_HOST_PLUGINS = frozenset({"NotifyJSON", "NotifyXML", "NotifyForm", "NotifyWorkflows"})
# Plugins that only ever post to their service's own public hosts.
_SERVICE_PLUGINS = frozenset({"NotifySlack", "NotifyDiscord", "NotifyTelegram"})

Target = tuple[str, int | None]


class _HideUrlLoading(logging.Filter):
    """Apprise names a URL it cannot load in its error, tokens and all: drop those lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _loading_url.get()


# Apprise logs the URLs it handles at INFO and DEBUG; those URLs carry tokens.
_apprise_log = logging.getLogger("apprise")
_apprise_log.setLevel(logging.WARNING)
_apprise_log.addFilter(_HideUrlLoading())


def scheme_of(url: str) -> str:
    """The part of an Apprise URL that is safe to show: its scheme."""
    return url.split("://", 1)[0] if "://" in url else "?"


def _load(url: str) -> Any:
    """Apprise's plugin for ``url``, or None if Apprise does not understand it (quietly)."""
    loading = _loading_url.set(True)
    try:
        return apprise.Apprise.instantiate(url)
    finally:
        _loading_url.reset(loading)


def validate_chat_url(url: str) -> None:
    """Raise ``ValueError`` unless Apprise understands ``url``; never echoes its tokens."""
    if _load(url) is None:
        raise ValueError(f"not a chat URL Apprise understands: {scheme_of(url)}://…")


def _plugin_targets(plugin: Any, url: str) -> list[Target]:
    kind = type(plugin).__name__
    if kind in _URL_HOST_PLUGINS:
        return [(str(plugin.host or ""), plugin.port)]
    if kind == "NotifyNtfy":  # self-hosted servers are named in the URL; else ntfy.sh
        return [(str(plugin.host or ""), plugin.port)] if plugin.mode == "private" else []
    if kind in _SERVICE_PLUGINS:
        return []
    raise TargetRefusedError(
        f"cannot check where {scheme_of(url)}:// sends (allowed only with private targets)"
    )


def chat_targets(url: str) -> list[Target]:
    """The hosts a chat URL makes Apprise connect to that the subscriber chose.

    Raises ``ValueError`` for a URL Apprise does not understand and
    :class:`TargetRefusedError` for a plugin whose destination cannot be checked.
    """
    plugin = _load(url)
    if plugin is None:
        raise ValueError(f"not a chat URL Apprise understands: {scheme_of(url)}://…")
    return _plugin_targets(plugin, url)


class ChatChannel:
    """One Apprise notification per job, with a Markdown body."""

    name = "chat"

    def __init__(self, *, timeout_seconds: float, allow_private: bool) -> None:
        self.timeout_seconds = timeout_seconds
        self.allow_private = allow_private

    async def send(
        self, subscription: Subscription, job: Job, alerts: Sequence[Alert]
    ) -> SendResult:
        url = subscription.url or ""
        scheme = scheme_of(url)
        plugin = _load(url) if url else None
        if plugin is None:
            return SendResult("rejected", f"not a chat URL Apprise understands: {scheme}://…")
        try:
            if not self.allow_private:
                for host, port in _plugin_targets(plugin, url):
                    await check_resolved(host, port, allow_private=False)
        except TargetRefusedError as error:
            return SendResult("rejected", f"target refused: {error}")
        except OSError as error:
            return SendResult("retry", f"{scheme}:// host does not resolve: {error}"[:300])
        plugin.socket_connect_timeout = self.timeout_seconds
        plugin.socket_read_timeout = self.timeout_seconds
        sent = await plugin.async_notify(
            body=render("alert.md.j2", job, alerts, subscription_id=subscription.id),
            title=no_mentions(subject(job, alerts)),
            body_format=apprise.NotifyFormat.MARKDOWN,
        )
        if sent:
            return SendResult("delivered", f"sent via {scheme}://")
        return SendResult("retry", f"{scheme}:// notification failed")

    async def close(self) -> None:
        """Nothing to release: Apprise opens a connection per notification."""
