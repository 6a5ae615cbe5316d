"""The chat channel through Apprise, against a real local HTTP endpoint (Apprise's json://)."""

from __future__ import annotations

import logging
import re
import time

import apprise
import markdown
import pytest
from apprise.plugins.discord import NotifyDiscord

from services.notifier.channels.chat import ChatChannel, validate_chat_url
from services.notifier.jobs import Job
from services.notifier.subscriptions import Subscription
from tests.factories import make_alert
from tests.receivers import ChatEndpoint

# The endpoint is on loopback: private targets allowed, as VIGIL_ALLOW_PRIVATE_TARGETS does.
LOOPBACK_CHAT = ChatChannel(timeout_seconds=5.0, allow_private=True)


def chat_subscription(url: str) -> Subscription:
    return Subscription.model_validate({"id": "ops", "channel": "chat", "url": url})


def _job() -> Job:
    return Job(id="msg_1", subscription_id="ops", kind="alert", created_at=time.time())


async def test_a_chat_message_carries_the_alert(endpoint: ChatEndpoint) -> None:
    subscription = chat_subscription(endpoint.url)
    alert = make_alert("a1")
    result = await LOOPBACK_CHAT.send(subscription, _job(), [alert])
    assert result.outcome == "delivered", result.detail
    [message] = endpoint.received
    assert message["title"] == "[Vigil] Turkey sends troops to Libya"
    assert alert.classification.claims[0].evidence in message["message"]
    assert alert.article.url in message["message"]


async def test_a_failing_chat_endpoint_is_retried(endpoint: ChatEndpoint) -> None:
    endpoint.status = 500
    subscription = chat_subscription(endpoint.url)
    result = await LOOPBACK_CHAT.send(subscription, _job(), [make_alert("a1")])
    assert result.outcome == "retry"
    assert len(endpoint.received) == 1


@pytest.mark.parametrize(
    "url",
    [
        "slack://T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "discord://123456/abcdefghij",
        "tgram://123456789:AAHabcdefghijklmnopqrstuvwxyz0123456/12345",
        # Microsoft Teams, through a Power Automate workflow (Teams' incoming webhooks' successor)
        "workflows://prod-01.westus.logic.azure.com:443/abcdef0123456789abcdef0123456789/"
        "0123456789abcdefABCDEF0123456789abcdefABCDEF",
    ],
)
def test_chat_urls_of_the_common_services_are_accepted(url: str) -> None:
    validate_chat_url(url)


def test_an_unknown_chat_url_is_refused_without_echoing_its_token() -> None:
    with pytest.raises(ValueError, match="nonsense://") as refused:
        validate_chat_url("nonsense://secret-token-123")
    assert "secret-token-123" not in str(refused.value)


def test_apprise_does_not_log_the_tokens_of_a_bad_url(caplog: pytest.LogCaptureFixture) -> None:
    # Apprise masks long tokens in its own errors, but shows a short one whole.
    with caplog.at_level(logging.DEBUG), pytest.raises(ValueError, match="tgram://"):
        validate_chat_url("tgram://leakytoken/")
    assert "leakytoken" not in caplog.text


HOSTILE_TITLE = "@everyone Turkish troops [click](https://evil.example) <!channel> **now** <@123>"


async def test_feed_text_can_neither_ping_nor_inject_markdown(endpoint: ChatEndpoint) -> None:
    alert = make_alert("a1", title=HOSTILE_TITLE, claimant="@here *the* ministry_")
    article = alert.article.model_copy(update={"url": "https://wire.example/a_(1)/@here"})
    alert = alert.model_copy(update={"article": article})
    result = await LOOPBACK_CHAT.send(chat_subscription(endpoint.url), _job(), [alert])
    assert result.outcome == "delivered", result.detail
    [message] = endpoint.received
    # Apprise's Discord plugin turns every "@word" or "<@id>" it finds into an allowed mention.
    discord = apprise.Apprise.instantiate("discord://123456/abcdefghij")
    assert isinstance(discord, NotifyDiscord)
    assert discord.ping_payload(HOSTILE_TITLE)  # the check can fail: the raw title pings
    assert discord.ping_payload(message["message"]) == {}
    assert discord.ping_payload(message["title"]) == {}
    assert "<!channel>" not in message["message"] + message["title"]
    # Rendered as CommonMark: one link (the article's), the title's own markup shown as text.
    html = markdown.markdown(message["message"])
    assert re.findall(r'<a href="([^"]*)"', html) == ["https://wire.example/a_%281%29/%40here"]
    assert "[click](https://evil.example)" in html
    assert "**now**" in html
    assert "<em>" in html  # the template's own emphasis of the evidence survives
    assert "<em>the</em>" not in html
