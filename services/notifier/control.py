"""The running notifier as its control surfaces see it: the admin API, the console and
``vigil subscriptions test``.

They depend on :class:`Notifier`, a Protocol, never on
:class:`~services.notifier.service.NotifierService`, which mounts the admin API and the
console: the service imports them, they do not import it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from services.notifier.store import SubscriptionStore
from services.notifier.subscriptions import Subscription
from services.settings import Settings
from shared.models import Alert, Article, Claim, Classification


class Notifier(Protocol):
    """What the admin API needs of a running notifier."""

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> SubscriptionStore: ...

    async def send_test(self, subscription: Subscription, alert: Alert) -> str:
        """Schedule a test event for ``subscription`` now; returns its job id."""
        ...


def sample_alert(subscription_id: str, now: datetime | None = None) -> Alert:
    """The alert sent by "send a test event" (published ``now``, by default the present)."""
    now = now or datetime.now(UTC)
    article = Article(
        id=f"test-{subscription_id}",
        url="https://example.org/vigil-test-event",
        title="Vigil test event: Turkish drones reported over a test theater",
        text="This is a test event sent from the Vigil admin API.",
        source="vigil-test",
        published_at=now,
        fetched_at=now,
    )
    claim = Claim(
        claimant="Vigil",
        stance="report",
        evidence="This is a test event sent from the Vigil admin API.",
    )
    verdict = Classification(
        id=article.id,
        flagged=True,
        score=1.0,
        theaters=["other"],
        stances=["report"],
        claims=[claim],
        evidence=[claim.evidence],
    )
    return Alert(alert_id=f"alert_test_{subscription_id}", article=article, classification=verdict)
