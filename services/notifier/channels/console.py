"""A readable block per alert on a terminal (the default subscriber of ``vigil up``)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from services.notifier.channels.base import SendResult
from services.notifier.render import safe_link

if TYPE_CHECKING:
    from services.notifier.jobs import Job
    from services.notifier.subscriptions import Subscription
    from shared.models import Alert

_RULE = "─" * 78


def render_alert(alert: Alert) -> str:
    """Title, source and time, theaters and stances, each claim with its evidence, the link."""
    article, verdict = alert.article, alert.classification
    published = article.published_at.strftime("%Y-%m-%d %H:%M UTC") if article.published_at else "-"
    lines = [
        _RULE,
        f"ALERT  {article.title}",
        f"       {article.source} · {published} · score {verdict.score:.2f}",
        f"       theaters: {', '.join(verdict.theaters) or '-'}"
        f" · stances: {', '.join(verdict.stances) or '-'}",
    ]
    for claim in verdict.claims:
        lines.append(f"  • {claim.claimant} ({claim.stance}):")
        lines.extend(
            textwrap.wrap(
                f"“{claim.evidence}”", 74, initial_indent="      ", subsequent_indent="      "
            )
        )
    if not verdict.claims:
        for sentence in verdict.evidence:
            lines.extend(
                textwrap.wrap(f"“{sentence}”", 74, initial_indent="  • ", subsequent_indent="    ")
            )
    link = safe_link(article.url)
    if link:
        lines.append(f"  {link}")
    return "\n".join(lines)


class ConsoleChannel:
    """Writes alerts to a text stream (stdout by default)."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    async def send(
        self, subscription: Subscription, job: Job, alerts: Sequence[Alert]
    ) -> SendResult:
        header = f"[{subscription.id}] digest of {len(alerts)} alert(s)" if len(alerts) > 1 else ""
        blocks = ([header] if header else []) + [render_alert(alert) for alert in alerts]
        try:
            self.stream.write("\n".join(blocks) + "\n")
            self.stream.flush()
        except (OSError, ValueError) as error:  # a closed stream, a broken pipe
            return SendResult("retry", f"console unwritable: {error}"[:300])
        return SendResult("delivered")

    async def close(self) -> None:
        return None
