"""Alert emails over SMTP (aiosmtplib): multipart text and HTML, headers built by ``email``."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urlencode

import aiosmtplib

from services.notifier.channels.base import SendResult
from services.notifier.jobs import DeliveryJob
from services.notifier.render import render, subject
from services.notifier.subscriptions import Subscription
from shared.models import Alert
from shared.settings import SmtpSettings


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
        query = urlencode({"subject": f"unsubscribe {subscription.id}"})
        return f"mailto:{self.smtp.from_}?{query}"

    def compose(
        self, subscription: Subscription, job: DeliveryJob, alerts: Sequence[Alert]
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
        self, subscription: Subscription, job: DeliveryJob, alerts: Sequence[Alert]
    ) -> SendResult:
        message = self.compose(subscription, job, alerts)
        smtp = self.smtp
        try:
            _, reply = await aiosmtplib.send(
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
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refusal.code for refusal in error.recipients]
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in error.recipients)
            permanent = all(code >= 500 for code in codes)
            return SendResult("rejected" if permanent else "retry", f"recipients refused: {detail}")
        except aiosmtplib.SMTPAuthenticationError as error:
            # The operator's credentials, not this message: keep it until they are fixed.
            return SendResult("retry", f"SMTP login refused: {error.code} {error.message}")
        except aiosmtplib.SMTPResponseException as error:
            permanent = error.code >= 500
            return SendResult(
                "rejected" if permanent else "retry", f"SMTP {error.code} {error.message}"
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            return SendResult("retry", f"SMTP unreachable: {type(error).__name__}: {error}")
        return SendResult("delivered", reply)

    async def close(self) -> None:
        """Nothing to release: each send opens and closes its own connection."""
