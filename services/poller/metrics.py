"""The poller's Prometheus metrics: polls, articles, stories, schedule and WebSub.

Counters with known labels exist at 0 from the start (see :mod:`shared.metrics`).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from shared.metrics import LATENCY_BUCKETS, prime

POLL_OUTCOMES = ("ok", "not_modified", "http_error", "network_error", "parse_error",
                 "too_large", "timeout", "rate_limited")  # fmt: skip
POLLS = Counter(
    "vigil_polls_total",
    "Source polls by outcome (ok, not_modified, http_error, network_error, parse_error, "
    "too_large, timeout, rate_limited).",
    ["outcome"],
)
POLL_SECONDS = Histogram(
    "vigil_poll_duration_seconds", "Time to fetch and parse one source.", buckets=LATENCY_BUCKETS
)
ARTICLES = Counter(
    "vigil_articles_total", "Articles seen by the poller, by result (new, duplicate).", ["result"]
)
POLLER_ENTRIES_SKIPPED = Counter(
    "vigil_poller_entries_skipped_total",
    "Feed entries not published because they have neither a link nor a guid.",
)
POLLER_PARSE_WARNINGS = Counter(
    "vigil_poller_parse_warnings_total",
    "Feeds parsed despite errors (ill-formed XML, wrong encoding), by format.",
    ["kind"],
)
POLLER_FETCHED_BYTES = Counter(
    "vigil_poller_fetched_bytes_total", "Bytes of documents fetched (after decompression)."
)
POLLER_STORIES = Counter(
    "vigil_poller_stories_total",
    "New articles by story grouping (new_story, near_duplicate).",
    ["result"],
)
POLLER_RETRIES = Counter(
    "vigil_poller_retries_total",
    "Polls rescheduled with backoff after a failure, by outcome.",
    ["outcome"],
)
POLLER_SCHEDULE_LAG_SECONDS = Histogram(
    "vigil_poller_schedule_lag_seconds",
    "How late a source's poll started after its due time.",
    buckets=LATENCY_BUCKETS,
)
POLLER_SCHEDULE_RESTORED = Counter(
    "vigil_poller_schedule_restored_total",
    "Configured sources found missing from the Redis schedule (data lost) and put back.",
)
POLLER_IN_FLIGHT = Gauge("vigil_poller_in_flight_polls", "Polls running in this process.")
POLLER_SOURCES = Gauge(
    "vigil_poller_sources",
    "Configured sources by health (healthy, failing, disabled).",
    ["health"],
)
POLLER_WEBSUB = Counter(
    "vigil_poller_websub_total",
    "WebSub events (subscribed, subscribe_failed, verified, refused, delivered, bad_signature).",
    ["event"],
)
POLLER_FULL_TEXT = Counter(
    "vigil_poller_full_text_total",
    "Article pages fetched for their full text, by result (extracted, empty, failed).",
    ["result"],
)

prime(POLLS, POLL_OUTCOMES)
prime(POLLER_RETRIES, [o for o in POLL_OUTCOMES if o not in ("ok", "not_modified")])
prime(ARTICLES, ["new", "duplicate"])
prime(POLLER_STORIES, ["new_story", "near_duplicate"])
prime(POLLER_WEBSUB, ["subscribed", "subscribe_failed", "verified", "refused", "delivered",
                      "bad_signature"])  # fmt: skip
prime(POLLER_FULL_TEXT, ["extracted", "empty", "failed"])
