"""Alert emails over SMTP (aiosmtplib): multipart text and HTML, headers built by ``email``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import aiosmtplib
from aiosmtplib import SMTPResponse

from services.notifier.channels.base import Outcome, SendResult
from services.notifier.render import render, subject
from services.notifier.settings import SmtpSettings

if TYPE_CHECKING:
    from services.notifier.jobs import Job
    from services.notifier.subscriptions import Subscription
    from shared.models import Alert

_MAX_DETAIL = 300


def result_of_error(error: Exception) -> SendResult:
    """A 5xx about this message dead-letters it; anything else is worth another try."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        refusals = error.recipients
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in refusals)
        permanent = all(refusal.code >= 500 for refusal in refusals)
        outcome: Outcome = "rejected" if permanent else "retry"
        return SendResult(outcome, f"recipients refused: {detail}"[:_MAX_DETAIL])
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        # The operator's credentials, not this message: keep it until they are fixed.
        return SendResult(
            "retry", f"SMTP login refused: {error.code} {error.message}"[:_MAX_DETAIL]
        )
    if isinstance(error, aiosmtplib.SMTPConnectResponseError | aiosmtplib.SMTPHeloError):
        # The server turned the connection down, whatever the message: try again later.
        return SendResult("retry", f"SMTP {error.code} {error.message}"[:_MAX_DETAIL])
    if isinstance(error, aiosmtplib.SMTPResponseException):
        outcome = "rejected" if error.code >= 500 else "retry"
        return SendResult(outcome, f"SMTP {error.code} {error.message}"[:_MAX_DETAIL])
    return SendResult("retry", f"SMTP unreachable: {type(error).__name__}: {error}"[:_MAX_DETAIL])


def result_of_reply(refused: Mapping[str, SMTPResponse], reply: str) -> SendResult:
    """Accepted for at least one recipient is delivered: a retry would send the others a copy
    again, so recipients refused on the way are only reported."""
    if refused:
        detail = "; ".join(f"{to}: {r.code} {r.message}" for to, r in refused.items())
        return SendResult("delivered", f"{reply}; refused {detail}"[:_MAX_DETAIL])
    return SendResult("delivered", reply[:_MAX_DETAIL])


class EmailChannel:
    """Sends one message per job; the Message-ID is the job id, so retries keep it."""

    name = "email"

    def __init__(self, smtp: SmtpSettings, *, unsubscribe_url: str | None = None) -> None:
        self.smtp = smtp
        self.unsubscribe_url = unsubscribe_url

    def unsubscribe_link(self, subscription: Subscription) -> str:
        """Where a reader opts out: the operator's page, else a mail to the sender."""
        if self.unsubscribe_url:
            separator = "&" if "?" in self.unsubscribe_url else "?"
            query = urlencode({"subscription": subscription.id})
            return f"{self.unsubscribe_url}{separator}{query}"
        _, address = parseaddr(self.smtp.from_)  # "Vigil <vigil@x.org>" -> vigil@x.org
        # RFC 6068: spaces are %20 in a mailto: URI, never "+".
        return f"mailto:{address}?subject={quote(f'unsubscribe {subscription.id}', safe='')}"

    def compose(
        self, subscription: Subscription, job: Job, alerts: Sequence[Alert]
    ) -> EmailMessage:
        """The message; header values pass through ``EmailMessage``, which refuses CR/LF."""
        unsubscribe = self.unsubscribe_link(subscription)
        context = {"subscription_id": subscription.id, "unsubscribe": unsubscribe}
        message = EmailMessage()
        message["From"] = self.smtp.from_
        message["To"] = ", ".join(subscription.to)
        message["Subject"] = subject(job, alerts)
        message["Date"] = formatdate(job.created_at, usegmt=True)
        message["Message-ID"] = f"<{job.id}@vigil>"
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
        if unsubscribe.startswith(("https://", "http://")):
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(render("alert.txt.j2", job, alerts, **context))
        message.add_alternative(render("alert.html.j2", job, alerts, **context), subtype="html")
        return message

    async def send(
        self, subscription: Subscription, job: Job, alerts: Sequence[Alert]
    ) -> SendResult:
        message = self.compose(subscription, job, alerts)
        smtp = self.smtp
        try:
            refused, reply = await aiosmtplib.send(
                message,
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username,
                password=smtp.password.get_secret_value() if smtp.password else None,
                use_tls=smtp.security == "tls",
                start_tls=smtp.security == "starttls",
                timeout=smtp.timeout_seconds,
                cert_bundle=str(smtp.ca_file) if smtp.ca_file else None,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            return result_of_error(error)
        return result_of_reply(refused, reply)

    async def close(self) -> None:
        """Nothing to release: each send opens and closes its own connection."""
