"""The email channel against a real SMTP server (aiosmtpd), mail parsed as a client would."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from pydantic import SecretStr
from redis.asyncio import Redis

from services.notifier.channels.email import EmailChannel
from services.notifier.jobs import JOBS, Job, due_key
from services.notifier.settings import SmtpSettings
from services.notifier.subscriptions import Subscription
from services.settings import Settings
from shared.embedded_redis import free_port
from shared.models import Alert
from tests.factories import make_alert
from tests.helpers import wait_for
from tests.notifier_support import T0, FakeClock, advance, publish, running
from tests.receivers import Mailbox

PASSWORD = "smtp-password-never-shown"


def _authenticator(
    server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box, hostname="127.0.0.1", port=port,
        authenticator=_authenticator, auth_require_tls=False,
    )  # fmt: skip
    controller.start()
    yield box, port
    controller.stop()


def channel(
    port: int, unsubscribe_url: str | None = "https://vigil.example.org/unsubscribe", **smtp: Any
) -> EmailChannel:
    settings = SmtpSettings.model_validate(
        {
            "host": "127.0.0.1",
            "port": port,
            "from": "vigil@example.org",
            "timeout_seconds": 5,
            **smtp,
        }
    )
    return EmailChannel(settings, unsubscribe_url=unsubscribe_url)


SUBSCRIBER = Subscription.model_validate({"id": "desk", "channel": "email", "to": ["desk@x.org"]})


def job(kind: str = "alert", alerts: list[Alert] | None = None) -> Job:
    return Job(
        id="msg_0123456789abcdef", subscription_id="desk", kind=kind,
        alerts=alerts or [], created_at=time.time(),
    )  # fmt: skip


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    return str(text.get_content()), str(html.get_content())


async def delivered_one(mailbox: tuple[Mailbox, int], alert: Alert) -> EmailMessage:
    """Send one alert; the message as the server received it."""
    box, port = mailbox
    result = await channel(port).send(SUBSCRIBER, job(alerts=[alert]), [alert])
    assert result.outcome == "delivered", result.detail
    [message] = box.messages
    return message


async def test_an_alert_email_has_headers_and_both_parts(mailbox: tuple[Mailbox, int]) -> None:
    alert = make_alert("a1", title="Turkish troops <script>alert(1)</script> reach Tripoli")
    message = await delivered_one(mailbox, alert)
    assert message["To"] == "desk@x.org"
    assert message["From"] == "vigil@example.org"
    assert message["Subject"].startswith("[Vigil] Turkish troops")
    assert message["Message-ID"] == "<msg_0123456789abcdef@vigil>"
    assert message["List-Unsubscribe"] == (
        "<https://vigil.example.org/unsubscribe?subscription=desk>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"] is not None
    text, html = _parts(message)
    claim = alert.classification.claims[0]
    for part in (text, html):
        assert claim.claimant in part
        assert claim.evidence in part
        assert alert.article.url in part
        assert "libya" in part
    assert "<script>" not in html, "titles are escaped in HTML"
    assert "&lt;script&gt;" in html


async def test_a_title_cannot_inject_headers(mailbox: tuple[Mailbox, int]) -> None:
    alert = make_alert("a1", title="Turkish drones\r\nBcc: victim@example.org\r\nstrike")
    message = await delivered_one(mailbox, alert)
    assert message["Bcc"] is None
    assert mailbox[0].envelopes[0].rcpt_tos == ["desk@x.org"]
    assert "\n" not in message["Subject"]


@pytest.mark.parametrize(("reply", "outcome"), [("550 No such user", "rejected"),
                                                 ("451 Try again later", "retry")])  # fmt: skip
async def test_refused_recipients_are_rejected_or_retried(
    mailbox: tuple[Mailbox, int], reply: str, outcome: str
) -> None:
    box, port = mailbox
    box.refuse_rcpt = reply
    alert = make_alert("a1")
    result = await channel(port).send(SUBSCRIBER, job(alerts=[alert]), [alert])
    assert result.outcome == outcome
    assert reply.split(maxsplit=1)[0] in result.detail
    assert box.messages == []


async def test_without_an_unsubscribe_page_readers_mail_the_sender(
    mailbox: tuple[Mailbox, int],
) -> None:
    box, port = mailbox
    alert = make_alert("a1")
    sender = channel(port, unsubscribe_url=None, **{"from": "Vigil Alerts <vigil@example.org>"})
    result = await sender.send(SUBSCRIBER, job(alerts=[alert]), [alert])
    assert result.outcome == "delivered", result.detail
    [message] = box.messages
    assert message["List-Unsubscribe"] == "<mailto:vigil@example.org?subject=unsubscribe%20desk>"
    assert message["List-Unsubscribe-Post"] is None, "one-click needs an http(s) page"


async def test_a_partly_refused_message_counts_as_sent(mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    box.refuse = {"gone@x.org": "550 No such user"}
    two = Subscription.model_validate(
        {"id": "desk", "channel": "email", "to": ["desk@x.org", "gone@x.org"]}
    )
    alert = make_alert("a1")
    result = await channel(port).send(two, job(alerts=[alert]), [alert])
    assert result.outcome == "delivered", "a retry would send desk@x.org a second copy"
    assert "gone@x.org: 550" in result.detail
    assert box.envelopes[0].rcpt_tos == ["desk@x.org"]


async def test_a_server_refusing_connections_is_retried() -> None:
    async def refuse(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"554 No SMTP service here\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        alert = make_alert("a1")
        result = await channel(port).send(SUBSCRIBER, job(alerts=[alert]), [alert])
    finally:
        server.close()
        await server.wait_closed()
    assert result.outcome == "retry", "the server's state, not this message's fault"
    assert "554" in result.detail


async def test_an_unreachable_server_is_retried() -> None:
    alert = make_alert("a1")
    result = await channel(free_port()).send(SUBSCRIBER, job(alerts=[alert]), [alert])
    assert result.outcome == "retry"
    assert "unreachable" in result.detail


async def test_login_works_and_the_password_never_shows(mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    alert = make_alert("a1")
    good = await channel(port, username="vigil", password=SecretStr(PASSWORD)).send(
        SUBSCRIBER, job(alerts=[alert]), [alert]
    )
    assert good.outcome == "delivered", good.detail
    bad = await channel(port, username="vigil", password=SecretStr("wrong-" + PASSWORD)).send(
        SUBSCRIBER, job(alerts=[alert]), [alert]
    )
    assert bad.outcome == "retry", "wrong credentials are the operator's to fix: keep the mail"
    assert "535" in bad.detail
    assert PASSWORD not in good.detail + bad.detail
    assert len(box.messages) == 1


async def test_a_digest_is_one_message_with_every_alert(mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    alerts = [make_alert(f"a{n}", title=f"Report number {n}") for n in range(3)]
    result = await channel(port).send(SUBSCRIBER, job("digest", alerts), alerts)
    assert result.outcome == "delivered", result.detail
    [message] = box.messages
    assert message["Subject"] == "[Vigil] 3 alerts on Turkish military involvement abroad"
    text, html = _parts(message)
    for n in range(3):
        assert f"Report number {n}" in text
        assert f"Report number {n}" in html


async def test_a_test_email_says_so(mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    alert = make_alert("example")
    result = await channel(port).send(SUBSCRIBER, job("test", [alert]), [alert])
    assert result.outcome == "delivered", result.detail
    [message] = box.messages
    text, _ = _parts(message)
    assert 'subscription "desk" works' in text


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_mail_goes_over_verified_tls(security: str, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box, port = Mailbox(), free_port()
    tls = {"tls_context": context, "require_starttls": True} if security == "starttls" else {
        "ssl_context": context}  # fmt: skip
    controller = Controller(box, hostname="127.0.0.1", port=port, **tls)
    controller.start()
    try:
        alert = make_alert("a1")
        trusted = channel(port, security=security, ca_file=cert)
        result = await trusted.send(SUBSCRIBER, job(alerts=[alert]), [alert])
        assert result.outcome == "delivered", result.detail
        untrusted = channel(port, security=security)
        refused = await untrusted.send(SUBSCRIBER, job(alerts=[alert]), [alert])
        assert refused.outcome == "retry", "an unverifiable certificate is not trusted"
    finally:
        controller.stop()
    assert len(box.messages) == 1


async def test_alerts_over_the_rate_limit_are_folded_into_one_message(
    settings: Settings, redis: Redis, mailbox: tuple[Mailbox, int]
) -> None:
    """Issue 13: 97 alerts at once to an email subscriber with the default limit (60 a minute):
    60 mails in the first minute, then ONE mail "…and 27 more" with the other 37 at the next
    minute, instead of a queue of single mails."""
    box, port = mailbox
    smtp = SmtpSettings.model_validate({"host": "127.0.0.1", "port": port, "from": "v@x.org"})
    config = settings.model_copy(update={"smtp": smtp})
    desk = Subscription.model_validate({"id": "desk", "channel": "email", "to": ["desk@x.org"]})
    limit = desk.rate_limit
    assert limit == 60, "the default limit of people's channels"
    alerts = [
        make_alert(f"r{n:03}", story_id=f"r{n:03}", title=f"Report {n:03}") for n in range(97)
    ]
    clock = FakeClock(T0 - T0 % 60 + 1)
    async with running(config, redis, [desk], clock) as service:
        await publish(redis, *alerts)
        overflow = due_key("email")
        next_minute = clock.now - clock.now % 60 + 60
        await wait_for(lambda: len(box.messages) == limit, message="the minute's 60 mails")
        await wait_for(lambda: _jobs_left(redis, 1), message="the rest folded into one job")
        assert await redis.zscore(overflow, await _only_job(redis)) == next_minute
        assert len(box.messages) == limit
        await advance(clock, service, 60)
        await wait_for(lambda: len(box.messages) == limit + 1, message="the folded mail")
        await wait_for(lambda: _jobs_left(redis, 0), message="nothing left")
    singles = {str(message["Subject"]).removeprefix("[Vigil] ") for message in box.messages[:-1]}
    folded = box.messages[-1]
    assert folded["Subject"] == "[Vigil] 37 alerts on Turkish military involvement abroad"
    text, html = _parts(folded)
    assert "…and 27 more" in text
    assert "…and 27 more" in html
    in_fold = {a.article.title for a in alerts if a.article.title in text}
    assert len(singles) == limit
    assert singles.isdisjoint(in_fold)
    assert singles | in_fold == {a.article.title for a in alerts}, "every alert, once"


async def _jobs_left(redis: Redis, count: int) -> bool:
    return int(await redis.hlen(JOBS)) == count


async def _only_job(redis: Redis) -> str:
    [job_id] = await redis.hkeys(JOBS)
    return str(job_id)


async def test_a_javascript_article_link_never_reaches_the_email(
    mailbox: tuple[Mailbox, int],
) -> None:
    alert = make_alert("a1")
    hostile = alert.article.model_copy(update={"url": "javascript:alert(document.cookie)"})
    message = await delivered_one(mailbox, alert.model_copy(update={"article": hostile}))
    text, html = _parts(message)
    assert "javascript" not in html.lower()
    assert "javascript" not in text.lower()
    assert alert.article.title in html, "the alert is there, without a link"
    assert "<a href=" in html, "the unsubscribe link is still a link"
