"""The contract every notification channel keeps, run against each channel of the registry.

Each channel of ``services/notifier/channels/registry.py`` needs a harness here: a real
receiver that works, or fails for now (an aiohttp server checking webhook signatures,
aiosmtpd for email, Apprise's own ``json://`` path to an aiohttp endpoint for chat, a text
stream for the console). A channel registered without one fails these tests. The contract:
a rendered alert reaches the receiver and is "delivered"; a failing target is a "retry",
which the delivery policy retries on its schedule and dead-letters after the last attempt.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TextIO

import orjson
import pytest
from aiosmtpd.controller import Controller

from services.notifier.channels.base import Channel
from services.notifier.channels.registry import CHANNELS
from services.notifier.jobs import Job
from services.notifier.policy import DeadLetter, Delivered, Retry, Subscriber, decide
from services.notifier.subscriptions import Subscription
from services.settings import Settings
from shared.embedded_redis import free_port
from shared.models import Alert
from tests.factories import make_alert
from tests.helpers import posting_to
from tests.notifier_support import T0, webhook
from tests.receivers import ChatEndpoint, Mailbox, Receiver, Reply, served


@dataclass(frozen=True)
class Target:
    """A receiver as a channel reaches it: the settings and subscription that name it, the
    console's stream, and the text of every message it has received."""

    settings: Settings
    subscription: Subscription
    received: Callable[[], list[str]]
    stream: TextIO | None = None


Harness = Callable[[Settings, bool], AbstractAsyncContextManager[Target]]
"""A channel's receiver, given the test's settings and whether it should fail for now."""


@asynccontextmanager
async def webhook_target(settings: Settings, failing: bool) -> AsyncIterator[Target]:
    async with served(Receiver(answer=(lambda: Reply(500)) if failing else None)) as receiver:
        yield Target(
            settings,
            webhook(receiver),
            lambda: [orjson.dumps(r.payload).decode() for r in receiver.requests],
        )


def _mail_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    return f"{message['Subject']}\n{body.get_content() if body is not None else ''}"


@asynccontextmanager
async def email_target(settings: Settings, failing: bool) -> AsyncIterator[Target]:
    box = Mailbox(refuse_rcpt="451 4.3.0 Mailbox busy, try again later" if failing else None)
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = settings.smtp.model_copy(
            update={"host": "127.0.0.1", "port": port, "timeout_seconds": 5.0}
        )
        subscription = Subscription.model_validate(
            {"id": "desk", "channel": "email", "to": ["desk@example.org"]}
        )
        yield Target(
            settings.model_copy(update={"smtp": smtp}),
            subscription,
            lambda: [_mail_text(message) for message in box.messages],
        )
    finally:
        controller.stop()


@asynccontextmanager
async def chat_target(settings: Settings, failing: bool) -> AsyncIterator[Target]:
    endpoint = ChatEndpoint(status=500 if failing else 200)
    async with posting_to(endpoint.handle) as url:
        subscription = Subscription.model_validate(
            {"id": "ops", "channel": "chat", "url": url.replace("http://", "json://")}
        )
        yield Target(
            settings,
            subscription,
            lambda: [f"{message['title']}\n{message['message']}" for message in endpoint.received],
        )


@asynccontextmanager
async def console_target(settings: Settings, failing: bool) -> AsyncIterator[Target]:
    stream = io.StringIO()
    if failing:
        stream.close()  # a terminal gone away

    def received() -> list[str]:
        return [stream.getvalue()] if not stream.closed and stream.getvalue() else []

    subscription = Subscription.model_validate({"id": "terminal", "channel": "console"})
    yield Target(settings, subscription, received, stream)


HARNESSES: dict[str, Harness] = {
    "webhook": webhook_target,
    "email": email_target,
    "chat": chat_target,
    "console": console_target,
}


def harness_of(name: str) -> Harness:
    if name not in HARNESSES:
        pytest.fail(f"the {name!r} channel has no contract harness: add one to HARNESSES")
    return HARNESSES[name]


@asynccontextmanager
async def channel_for(target: Target) -> AsyncIterator[Channel]:
    """The channel as the notifier makes it, from the registry and the target's settings."""
    channel = CHANNELS[target.subscription.channel].make(target.settings, target.stream)
    try:
        yield channel
    finally:
        await channel.close()


def job_for(subscription: Subscription, alert: Alert) -> Job:
    return Job(
        id="msg_contract", subscription_id=subscription.id, kind="alert",
        channel=subscription.channel, alerts=[alert], created_at=T0,
    )  # fmt: skip


def test_every_harness_is_of_a_registered_channel() -> None:
    assert set(HARNESSES) <= set(CHANNELS), set(HARNESSES) - set(CHANNELS)


@pytest.mark.parametrize("name", list(CHANNELS))
async def test_a_rendered_alert_reaches_a_real_receiver(name: str, settings: Settings) -> None:
    alert = make_alert("a1")
    async with harness_of(name)(settings, False) as target, channel_for(target) as channel:
        assert target.subscription.channel == name
        job = job_for(target.subscription, alert)
        result = await channel.send(target.subscription, job, [alert])
        received = target.received()
    assert result.outcome == "delivered", result.detail
    [message] = received
    assert alert.article.title in message
    assert alert.article.url in message
    subscriber = Subscriber(target.subscription)
    assert decide(result, job, subscriber, settings.notifier, T0) == Delivered()


@pytest.mark.parametrize("name", list(CHANNELS))
async def test_a_failing_target_is_retried_then_dead_lettered(
    name: str, settings: Settings
) -> None:
    alert = make_alert("a1")
    async with harness_of(name)(settings, True) as target, channel_for(target) as channel:
        job = job_for(target.subscription, alert)
        result = await channel.send(target.subscription, job, [alert])
    assert result.outcome == "retry", result.detail
    assert result.detail
    config, subscriber = settings.notifier, Subscriber(target.subscription)
    first = decide(result, job, subscriber, config, T0)
    assert isinstance(first, Retry)
    assert first.at > T0
    assert first.job.attempts == 1
    last = job.model_copy(update={"attempts": len(config.retry_schedule_seconds)})
    final = decide(result, last, subscriber, config, T0)
    assert isinstance(final, DeadLetter)
    assert final.reason.startswith("max_attempts")
