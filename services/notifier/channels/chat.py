"""Chat alerts (Slack, Discord, Microsoft Teams, Telegram, ...) through Apprise."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import apprise

from services.notifier.channels.base import SendResult
from services.notifier.jobs import DeliveryJob
from services.notifier.render import render, subject
from services.notifier.subscriptions import Subscription
from shared.models import Alert

# Apprise logs the URLs it handles at INFO; those URLs carry tokens.
logging.getLogger("apprise").setLevel(logging.WARNING)


def _scheme(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else "?"


def validate_chat_url(url: str) -> None:
    """Raise ``ValueError`` unless Apprise understands ``url``; never echoes its tokens."""
    if not apprise.Apprise().add(url):
        raise ValueError(f"not a chat URL Apprise understands: {_scheme(url)}://…")


class ChatChannel:
    """One Apprise notification per job, with a Markdown body."""

    name = "chat"

    async def send(
        self, subscription: Subscription, job: DeliveryJob, alerts: Sequence[Alert]
    ) -> SendResult:
        targets = apprise.Apprise()
        if not subscription.url or not targets.add(subscription.url):
            scheme = _scheme(subscription.url or "")
            return SendResult("rejected", f"not a chat URL Apprise understands: {scheme}://…")
        body = render("alert.md.j2", job, alerts, subscription_id=subscription.id)
        sent = await targets.async_notify(
            body=body, title=subject(job, alerts), body_format=apprise.NotifyFormat.MARKDOWN
        )
        if sent:
            return SendResult("delivered", f"sent via {_scheme(subscription.url)}")
        return SendResult("retry", f"{_scheme(subscription.url)} notification failed")

    async def close(self) -> None:
        """Nothing to release: Apprise opens a connection per notification."""
