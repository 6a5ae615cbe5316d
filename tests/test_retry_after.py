"""The one ``Retry-After`` reading shared by the poller's fetcher and the webhook channel."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from shared.retry_after import MAX_RETRY_AFTER_SECONDS, retry_after_seconds

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 30 ", 30.0),
        ("0", 0.0),
        ("Tue, 24 Nov 2026 08:02:00 GMT", 120.0),  # an HTTP date, counted from now
        ("Tue, 24 Nov 2026 08:02:00 +0000", 120.0),
        ("Tue, 24 Nov 2026 10:02:00 +0200", 120.0),
        ("Tue, 24 Nov 2026 08:02:00 -0000", 120.0),  # no zone: UTC, as HTTP dates are
        ("Tue, 24 Nov 2026 07:00:00 GMT", 0.0),  # already past: now
        ("999999999", MAX_RETRY_AFTER_SECONDS),  # never more than a day
        ("Sat, 24 Nov 2029 08:00:00 GMT", MAX_RETRY_AFTER_SECONDS),
    ],
)
def test_delta_seconds_and_http_dates(header: str, seconds: float) -> None:
    assert retry_after_seconds(header, now=NOW) == seconds


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "soon",
        "-5",
        "1.5",
        "12 s",
        "²",
        "Mon, 99 Foo 2026",
        "Mon, 01 Jan 99999 00:00:00 GMT",
    ],
)
def test_absent_or_unreadable_is_none(header: str | None) -> None:
    assert retry_after_seconds(header, now=NOW) is None


def test_the_cap_can_be_lowered() -> None:
    assert retry_after_seconds("600", cap=60.0) == 60.0


def test_dates_count_from_the_current_time_by_default() -> None:
    in_a_minute = format_datetime(datetime.fromtimestamp(time.time() + 60, UTC), usegmt=True)
    seconds = retry_after_seconds(in_a_minute)
    assert seconds is not None
    assert 55.0 <= seconds <= 60.0
