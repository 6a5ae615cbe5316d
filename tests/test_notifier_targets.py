"""Where the notifier may send, and what may reach a message (issue 13).

Every channel's target passes one private-address guard when saved and when sent; email
recipients are one clean address each; chat URLs are write-only; only http(s) article links
reach a message.
"""

from __future__ import annotations

import asyncio
import io
import socket
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from services.notifier.channels.chat import ChatChannel
from services.notifier.channels.console import ConsoleChannel
from services.notifier.channels.webhook import WebhookChannel
from services.notifier.jobs import Job
from services.notifier.payload import event_body
from services.notifier.store import SubscriptionStore
from services.notifier.subscriptions import Subscription
from services.notifier.validation import SubscriptionRefusedError, check_subscription
from shared.models import Alert
from tests.factories import make_alert
from tests.processes import clean_env, run_vigil
from tests.receivers import SECRET, ChatEndpoint, Receiver

CHAT_TOKEN = "XXXXXXXXXXXXXXXXXXXXXXXX"
SLACK = f"slack://T00000000/B00000000/{CHAT_TOKEN}"


def hook(url: str) -> Subscription:
    return Subscription.model_validate(
        {"id": "desk", "channel": "webhook", "url": url, "secret": SECRET}
    )


def chat(url: str) -> Subscription:
    return Subscription.model_validate({"id": "ops", "channel": "chat", "url": url})


def job(alert: Alert) -> Job:
    return Job(id="msg_1", subscription_id="desk", kind="alert", alerts=[alert],
                       created_at=time.time())  # fmt: skip


PRIVATE_WEBHOOK_HOSTS = [
    "2130706433",  # 127.0.0.1 as one decimal number
    "127.1",  # a short form
    "0x7f000001",  # hex
    "0177.0.0.1",  # octal
    "017700000001",
    "0x7f.1",
    "134744072",  # 8.8.8.8: public, but an ambiguous spelling is refused whatever it means
    "127.0.0.1.",  # a trailing dot
    "localhost.",
    "[64:ff9b::7f00:1]",  # NAT64 of 127.0.0.1
    "[64:ff9b::a00:1]",  # NAT64 of 10.0.0.1
    "[64:ff9b:1::808:808]",  # local-use NAT64
    "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
    "[2002:a9fe:a9fe::1]",  # 6to4 of 169.254.169.254
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::ffff:0:7f00:1]",  # IPv4-translated
    "[::127.0.0.1]",  # IPv4-compatible
    "[2001:0:4136:e378:8000:63bf:80ff:fffe]",  # Teredo, client 127.0.0.1
    "[fc00::1]",
    "[fe80::1]",
]


@pytest.mark.parametrize("host", PRIVATE_WEBHOOK_HOSTS)
def test_webhook_targets_on_private_addresses_are_refused_in_every_spelling(host: str) -> None:
    subscription = hook(f"http://{host}:8080/hook")
    with pytest.raises(SubscriptionRefusedError, match=r"^url: "):
        check_subscription(subscription, allow_private=False)
    check_subscription(subscription, allow_private=True)


@pytest.mark.parametrize(
    "host", ["hooks.example.org", "93.184.216.34", "[64:ff9b::5db8:d822]", "[2002:5db8:d822::1]"]
)
def test_public_webhook_targets_are_accepted(host: str) -> None:
    check_subscription(hook(f"https://{host}/hook"), allow_private=False)


async def test_an_ambiguous_address_is_refused_at_send_time_too(receiver: Receiver) -> None:
    """Saved before the guard knew these forms: the send refuses it without connecting."""
    port = receiver.url.split(":")[2].split("/")[0]
    channel = WebhookChannel(timeout_seconds=2.0, allow_private=False)
    try:
        alert = make_alert("a1")
        result = await channel.send(hook(f"http://2130706433:{port}/hook"), job(alert), [alert])
    finally:
        await channel.close()
    assert result.outcome == "rejected"
    assert "ambiguous form of an IPv4 address" in result.detail
    assert receiver.requests == []


PRIVATE_CHAT_URLS = [
    "json://127.0.0.1/hook",
    "jsons://169.254.169.254/latest/meta-data",
    "form://localhost",
    "xml://[::1]/",
    "ntfy://127.0.0.1/alerts",
    "json://2130706433/hook",
    "jsons://[64:ff9b::a9fe:a9fe]/",
]


@pytest.mark.parametrize("url", PRIVATE_CHAT_URLS)
def test_chat_urls_naming_private_hosts_are_refused(url: str) -> None:
    with pytest.raises(SubscriptionRefusedError, match=r"^url: "):
        check_subscription(chat(url), allow_private=False)
    check_subscription(chat(url), allow_private=True)


@pytest.mark.parametrize(
    "url", [SLACK, "discord://123456/abcdefghij", "ntfy://alerts", "json://hooks.example.org/x"]
)
def test_chat_urls_of_public_services_are_accepted(url: str) -> None:
    check_subscription(chat(url), allow_private=False)


def test_a_chat_plugin_whose_destination_cannot_be_checked_is_refused() -> None:
    pushover = chat("pover://u2345678901234567890123456789@a2345678901234567890123456789")
    with pytest.raises(SubscriptionRefusedError, match="cannot check where pover:// sends"):
        check_subscription(pushover, allow_private=False)
    check_subscription(pushover, allow_private=True)


async def test_a_chat_name_resolving_to_a_private_address_is_refused_when_sent(
    endpoint: ChatEndpoint,
) -> None:
    """DNS is checked before Apprise connects: a public-looking name that resolves into the
    private network (here this machine's own name) never gets the message."""
    name = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    assert addresses, f"{name} must resolve for this test"
    port = endpoint.url.rsplit(":", 1)[1].split("/")[0]
    url = f"json://{name}:{port}/hook"
    check_subscription(chat(url), allow_private=False)  # a name: accepted when saved
    alert = make_alert("a1")
    channel = ChatChannel(timeout_seconds=2.0, allow_private=False)
    result = await channel.send(chat(url), job(alert), [alert])
    assert result.outcome == "rejected", result.detail
    assert "resolves to a non-public address" in result.detail
    assert endpoint.received == []


@pytest.mark.parametrize(
    "entry",
    [
        "desk@x.org\u2028Bcc: victim@example.org",  # LINE SEPARATOR
        "desk@x.org\u0085Bcc: victim@example.org",  # NEXT LINE
        "desk@x.org\r\nBcc: victim@example.org",
        "desk@x.org\u200b",  # a format character
        "a@x.org, b@y.org",
        "a@x.org; b@y.org",
        "a@x.org b@y.org",
        "<a@x.org><b@y.org>",
        "a@b@x.org",
        "desk",
    ],
)
def test_an_email_entry_holds_exactly_one_clean_address(entry: str) -> None:
    with pytest.raises(ValueError, match="to"):
        Subscription.model_validate({"id": "desk", "channel": "email", "to": [entry]})


def test_an_email_entry_may_have_a_display_name() -> None:
    subscription = Subscription.model_validate(
        {"id": "desk", "channel": "email", "to": ["Desk <desk@x.org>", "night@x.org"]}
    )
    assert subscription.to == ["Desk <desk@x.org>", "night@x.org"]


HOSTILE = "javascript:alert(document.cookie)"


def _hostile() -> Alert:
    alert = make_alert("a1")
    return alert.model_copy(update={"article": alert.article.model_copy(update={"url": HOSTILE})})


async def test_a_javascript_link_reaches_no_message(endpoint: ChatEndpoint) -> None:
    alert = _hostile()
    chat_channel = ChatChannel(timeout_seconds=5.0, allow_private=True)
    sent = await chat_channel.send(chat(endpoint.url), job(alert), [alert])
    assert sent.outcome == "delivered", sent.detail
    console = io.StringIO()
    await ConsoleChannel(console).send(hook("https://h.example.org/x"), job(alert), [alert])
    body = orjson.dumps(event_body(job(alert), [alert])).decode()
    for message in (endpoint.received[0]["message"], console.getvalue(), body):
        assert "javascript" not in message
    assert alert.article.title in console.getvalue(), "the alert itself still arrives"
    assert orjson.loads(body)["data"]["article"]["url"] == ""


# The email's href is checked in tests/test_notifier_email.py, against a real SMTP server.


async def test_chat_urls_are_masked_by_status_and_show_and_apply_keeps_them(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    await SubscriptionStore(redis).put(chat(SLACK))
    env = clean_env(tmp_path, VIGIL_REDIS_URL=redis_url)

    async def vigil(*args: str, stdin: str = "") -> Any:
        return await asyncio.to_thread(run_vigil, list(args), env, stdin)

    status = await vigil("status", "--json")
    shown = await vigil("subscriptions", "show", "ops")
    listed = await vigil("subscriptions", "list", "--json")
    for result in (status, shown, listed):
        assert result.returncode == 0, result.stderr
        assert CHAT_TOKEN not in result.stdout
    [row] = orjson.loads(status.stdout)["subscriptions"]
    assert row["url"] == "slack://**********"
    view = orjson.loads(shown.stdout)
    assert view["url"] == "slack://**********"

    # What `show` printed, edited and applied back, keeps the real URL.
    view.pop("state")
    view["description"] = "ops room"
    applied = await vigil("subscriptions", "apply", "-", stdin=orjson.dumps(view).decode())
    assert applied.returncode == 0, applied.stderr
    stored = await SubscriptionStore(redis).get("ops")
    assert stored is not None
    assert (stored.url, stored.description) == (SLACK, "ops room")
