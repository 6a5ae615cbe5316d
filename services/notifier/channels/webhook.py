"""Webhooks signed the Standard Webhooks way, one aiohttp session per process."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
import orjson
from standardwebhooks import Webhook

from services.notifier.channels.base import SendResult
from services.notifier.payload import event_body
from services.notifier.targets import TargetRefusedError, check_host, resolver_for
from shared.retry_after import retry_after_seconds

if TYPE_CHECKING:
    from services.notifier.jobs import Job
    from services.notifier.subscriptions import Subscription
    from shared.models import Alert

USER_AGENT = "Vigil-Webhooks/1.0"


def signature_header(subscription: Subscription, msg_id: str, at: datetime, body: str) -> str:
    """``v1,<sig>`` for every active secret, space-separated (several during a rotation)."""
    return " ".join(
        Webhook(secret).sign(msg_id, at, body) for secret in subscription.signing_secrets()
    )


def webhook_targets(url: str) -> list[tuple[str, int | None]]:
    """The host a webhook URL connects to, for the private-address guard."""
    parts = urlsplit(url)
    return [(parts.hostname or "", parts.port)]


def result_of_status(status: int, retry_after: float | None) -> SendResult:
    """2xx is delivered, 410 disables the subscription, 429 or 503 with ``Retry-After`` asks
    us to wait (backpressure), anything else is retried."""
    if 200 <= status < 300:
        return SendResult("delivered", str(status))
    if status == 410:
        return SendResult("gone", "410 Gone")
    if status in (429, 503) and retry_after is not None:
        return SendResult("throttled", f"HTTP {status}", retry_after)
    return SendResult("retry", f"HTTP {status}", retry_after)


class WebhookChannel:
    """POSTs the event to the subscriber's URL; never follows redirects."""

    name = "webhook"

    def __init__(
        self,
        *,
        timeout_seconds: float,
        allow_private: bool,
    ) -> None:
        self.allow_private = allow_private
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds, sock_connect=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=resolver_for(self.allow_private), limit=256, limit_per_host=32
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self.timeout, headers={"User-Agent": USER_AGENT}
            )
        return self._session

    async def send(
        self, subscription: Subscription, job: Job, alerts: Sequence[Alert]
    ) -> SendResult:
        assert subscription.url is not None
        try:
            for host, _ in webhook_targets(subscription.url):
                check_host(host, allow_private=self.allow_private)
        except TargetRefusedError as error:
            return SendResult("rejected", f"target refused: {error}")
        now = datetime.now(UTC)  # signatures carry real time, whatever the scheduler's clock
        body = orjson.dumps(event_body(job, alerts)).decode()
        headers = {
            "content-type": "application/json",
            "webhook-id": job.id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature_header(subscription, job.id, now, body),
        }
        try:
            async with self._client().post(
                subscription.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                status = response.status
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        except TargetRefusedError as error:
            return SendResult("rejected", f"target refused: {error}")
        except TimeoutError:
            return SendResult("retry", "timeout")
        except (aiohttp.ClientError, OSError) as error:
            return SendResult("retry", f"{type(error).__name__}: {error}"[:300])
        return result_of_status(status, retry_after)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            await asyncio.sleep(0)  # let the connector close its transports
