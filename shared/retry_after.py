"""The ``Retry-After`` header (RFC 9110, 10.2.3) as seconds to wait: one reading for every client.

The poller's fetcher (429 and 503 from a news site) and the notifier's webhook channel (429
and 503 from a subscriber) both honour it; both read it here, with the same cap.
"""

from __future__ import annotations

import re
import time
from datetime import UTC
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER_SECONDS = 86_400.0
"""However long a server asks us to wait, we come back within a day."""

_DELTA_SECONDS = re.compile(r"[0-9]+")


def retry_after_seconds(
    value: str | None, *, now: float | None = None, cap: float = MAX_RETRY_AFTER_SECONDS
) -> float | None:
    """Seconds to wait, within ``[0, cap]``; None when the header is absent or unreadable.

    ``value`` is delta-seconds (``"120"``) or an HTTP date, counted from ``now`` (epoch
    seconds, by default the current time); a date in the past means "now" (0). A date
    without a zone is UTC, as HTTP dates always are.
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), cap)
