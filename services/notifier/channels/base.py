"""What every channel promises: send one job, say how it went."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from services.notifier.jobs import Job
    from services.notifier.subscriptions import Subscription
    from shared.models import Alert

Outcome = Literal["delivered", "retry", "throttled", "gone", "rejected"]


@dataclass(frozen=True)
class SendResult:
    """How one attempt went.

    ``retry``: a transient failure, try again later (after ``retry_after`` if given);
    ``throttled``: the target asked us to wait ``retry_after`` seconds (429 or 503 with
    ``Retry-After``): backpressure, not a failure;
    ``gone``: the target is gone for good (HTTP 410), disable the subscription;
    ``rejected``: a permanent failure of this message, dead-letter it now.
    """

    outcome: Outcome
    detail: str = ""
    retry_after: float | None = None


class Channel(Protocol):
    """A way of reaching subscribers."""

    name: str

    async def send(
        self, subscription: Subscription, job: Job, alerts: Sequence[Alert]
    ) -> SendResult: ...

    async def close(self) -> None: ...
