"""Checks on a subscription that need the running configuration (where it may send)."""

from __future__ import annotations

from services.notifier.channels.registry import CHANNELS
from services.notifier.subscriptions import Subscription
from services.notifier.targets import TargetRefusedError, check_host


class SubscriptionRefusedError(ValueError):
    """A subscription that is well-formed but may not be used; the message names the field."""


def check_subscription(subscription: Subscription, *, allow_private: bool) -> None:
    """Refuse a target on a private address (every channel's, unless private targets are
    allowed) and a chat URL whose destination cannot be checked."""
    if allow_private:
        return
    try:
        for host, _ in CHANNELS[subscription.channel].targets(subscription):
            check_host(host, allow_private=False)
    except TargetRefusedError as error:
        raise SubscriptionRefusedError(f"url: {error}") from error
