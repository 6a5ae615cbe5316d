"""Checks on a subscription that need the running configuration (where it may send)."""

from __future__ import annotations

from services.notifier.channels.chat import validate_chat_url
from services.notifier.subscriptions import Subscription
from services.notifier.targets import TargetRefusedError, check_target


class SubscriptionRefusedError(ValueError):
    """A subscription that is well-formed but may not be used; the message names the field."""


def check_subscription(subscription: Subscription, *, allow_private: bool) -> None:
    """Refuse private webhook targets (unless allowed) and chat URLs Apprise cannot use."""
    if subscription.channel == "webhook" and subscription.url:
        try:
            check_target(subscription.url, allow_private=allow_private)
        except TargetRefusedError as error:
            raise SubscriptionRefusedError(f"url: {error}") from error
    if subscription.channel == "chat" and subscription.url:
        try:
            validate_chat_url(subscription.url)
        except ValueError as error:
            raise SubscriptionRefusedError(f"url: {error}") from error
