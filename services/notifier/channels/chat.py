"""Chat alerts (Slack, Discord, Microsoft Teams, Telegram, ...) through Apprise."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextvars import ContextVar

import apprise

from services.notifier.channels.base import SendResult
from services.notifier.jobs import DeliveryJob
from services.notifier.render import no_mentions, render, subject
from services.notifier.subscriptions import Subscription
from shared.models import Alert

_loading_url: ContextVar[bool] = ContextVar("_loading_url", default=False)


class _HideUrlLoading(logging.Filter):
    """Apprise names a URL it cannot load in its error, tokens and all: drop those lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _loading_url.get()


# Apprise logs the URLs it handles at INFO and DEBUG; those URLs carry tokens.
_apprise_log = logging.getLogger("apprise")
_apprise_log.setLevel(logging.WARNING)
_apprise_log.addFilter(_HideUrlLoading())


def _scheme(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else "?"


def _load(url: str) -> apprise.Apprise | None:
    """An Apprise object for ``url``, or None if Apprise does not understand it (quietly)."""
    targets = apprise.Apprise()
    loading = _loading_url.set(True)
    try:
        added = targets.add(url)
    finally:
        _loading_url.reset(loading)
    return targets if added else None


def validate_chat_url(url: str) -> None:
    """Raise ``ValueError`` unless Apprise understands ``url``; never echoes its tokens."""
    if _load(url) is None:
        raise ValueError(f"not a chat URL Apprise understands: {_scheme(url)}://…")


class ChatChannel:
    """One Apprise notification per job, with a Markdown body."""

    name = "chat"

    async def send(
        self, subscription: Subscription, job: DeliveryJob, alerts: Sequence[Alert]
    ) -> SendResult:
        url = subscription.url or ""
        scheme = _scheme(url)
        targets = _load(url) if url else None
        if targets is None:
            return SendResult("rejected", f"not a chat URL Apprise understands: {scheme}://…")
        body = render("alert.md.j2", job, alerts, subscription_id=subscription.id)
        sent = await targets.async_notify(
            body=body,
            title=no_mentions(subject(job, alerts)),
            body_format=apprise.NotifyFormat.MARKDOWN,
        )
        if sent:
            return SendResult("delivered", f"sent via {scheme}://")
        return SendResult("retry", f"{scheme}:// notification failed")

    async def close(self) -> None:
        """Nothing to release: Apprise opens a connection per notification."""
