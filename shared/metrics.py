"""Every Prometheus metric Vigil exports, defined once so names stay consistent.

Names carry the ``vigil_`` prefix and their unit; labels are low-cardinality (no URLs or ids).
A labelled counter exists at 0 for each of its known labels from the start (:func:`prime`):
rules and dashboards that name ``outcome="dead_lettered"`` see a series before the first
dead letter, and ``increase()`` counts that first one.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import product

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

STAGES = ("fetch", "parse", "publish", "classify", "deliver")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
E2E_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
# From a classification (tens of microseconds) to a slow fetch or a big feed's parse.
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, *LATENCY_BUCKETS)


class Observers:
    """One observation fed to several histograms: a stage's own metric and its stage row."""

    def __init__(self, *targets: Histogram) -> None:
        self.targets = targets

    def observe(self, amount: float) -> None:
        for target in self.targets:
            target.observe(amount)


# Where the time goes, one row per stage of the pipeline (see ``STAGES``).
STAGE_SECONDS = Histogram(
    "vigil_stage_duration_seconds",
    "Time spent in one stage of the pipeline, by stage (fetch: one document's request and "
    "body; parse: one document into entries; publish: one feed's new articles built and "
    "written; classify: one article; deliver: one delivery attempt).",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
for _stage in STAGES:  # every stage has a series from the start, before its first observation
    STAGE_SECONDS.labels(_stage)

# Stream bus
BUS_MESSAGES = Counter(
    "vigil_bus_messages_total",
    "Stream entries handled by consumers, by outcome (acked, failed, dead_lettered, trimmed, "
    "skipped by an observer group).",
    ["stream", "group", "outcome"],
)
BUS_HANDLE_SECONDS = Histogram(
    "vigil_bus_handle_duration_seconds",
    "Time a consumer's handler took per entry.",
    ["stream", "group"],
    buckets=LATENCY_BUCKETS,
)
BUS_RECLAIMED = Counter(
    "vigil_bus_reclaimed_total",
    "Idle entries of other consumers reclaimed with XAUTOCLAIM.",
    ["stream", "group"],
)
BUS_PUBLISHED = Counter("vigil_bus_published_total", "Entries written to a stream.", ["stream"])
DEAD_LETTERS = Counter(
    "vigil_dead_letters_total",
    "Entries moved to the dead-letter stream, by reason (decode, max_deliveries, rejected).",
    ["stream", "reason"],
)
BUS_ERRORS = Counter(
    "vigil_bus_errors_total",
    "Redis errors met by consumers (connection, nogroup), each followed by a backoff.",
    ["stream", "kind"],
)
BUS_CONSUMERS_REMOVED = Counter(
    "vigil_bus_consumers_removed_total",
    "Consumers of gone replicas removed from a group (idle for long, nothing pending).",
    ["stream", "group"],
)
REDIS_NOT_REPLICATED = Counter(
    "vigil_redis_not_replicated_total",
    "Writes no replica acknowledged in time (WAIT): retried, not acted on.",
)
REDIS_MASTER_CHANGES = Counter(
    "vigil_redis_master_changes_total",
    "Failovers noticed: the Sentinels named a new master and the connections were dropped.",
)
CONSUMER_LAG = Gauge(
    "vigil_consumer_lag_messages",
    "Entries in the stream not yet delivered to the group.",
    ["stream", "group"],
)
CONSUMER_PENDING = Gauge(
    "vigil_consumer_pending_messages",
    "Entries delivered to the group but not yet acknowledged.",
    ["stream", "group"],
)
STREAM_LENGTH = Gauge("vigil_stream_length_messages", "Entries held in a stream.", ["stream"])

# The labels each consumer's counters are created with (shared/bus.py primes them).
BUS_OUTCOMES = ("acked", "failed", "dead_lettered", "trimmed", "skipped")
BUS_ERROR_KINDS = ("connection", "nogroup")
BUS_DEAD_LETTER_REASONS = ("decode", "max_deliveries", "rejected")

# Poller
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

# Poller (owned by services/poller)
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

# Classifier
CLASSIFICATIONS = Counter(
    "vigil_classifications_total", "Classifier verdicts (flagged, not_flagged).", ["verdict"]
)
CLASSIFY_SECONDS = Observers(
    Histogram(
        "vigil_classification_duration_seconds",
        "Time to classify one article.",
        buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
    ),
    STAGE_SECONDS.labels("classify"),
)
CLASSIFY_SCORE = Histogram(
    "vigil_classification_score",
    "Scores given by the classifier.",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
)

# Notifier
DELIVERY_OUTCOMES = ("delivered", "retry", "throttled", "paused", "circuit_open", "rate_limited",
                     "folded", "dead_lettered", "disabled", "skipped_duplicate")  # fmt: skip
DELIVERIES = Counter(
    "vigil_deliveries_total",
    "Delivery turns by channel and outcome: delivered, retry, throttled (the endpoint asked to "
    "wait), paused, circuit_open, rate_limited (held back), folded (into one message), "
    "dead_lettered, disabled, skipped_duplicate.",
    ["channel", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "vigil_delivery_duration_seconds",
    "Time of one delivery attempt.",
    ["channel"],
    buckets=LATENCY_BUCKETS,
)
DELIVERY_RETRIES = Counter(
    "vigil_delivery_retries_total", "Deliveries scheduled for a retry.", ["channel"]
)
END_TO_END_SECONDS = Histogram(
    "vigil_end_to_end_latency_seconds",
    "Time from an article's fetch to its delivery to a subscriber.",
    ["channel"],
    buckets=E2E_BUCKETS,
)
NOTIFIER_DUE_JOBS = Gauge(
    "vigil_notifier_due_jobs",
    "Delivery jobs due now and not yet sent, per channel (the backlog autoscaling reads).",
    ["channel"],
)
NOTIFIER_UNREADABLE_SUBSCRIPTIONS = Gauge(
    "vigil_notifier_unreadable_subscriptions",
    "Stored subscriptions this version cannot read, left out of every match "
    "(logged as notifier.subscription_unreadable).",
)

# Console
CONSOLE_LOGIN_OUTCOMES = ("ok", "wrong_token", "throttled", "stale_form", "closed")
CONSOLE_LOGINS = Counter(
    "vigil_console_logins_total",
    "Console login attempts by outcome (ok, wrong_token, throttled, stale_form, closed).",
    ["outcome"],
)

# Process
READY = Gauge("vigil_ready", "1 when the component is ready to work, 0 otherwise.", ["component"])


def prime(metric: MetricWrapperBase, *values: Iterable[str]) -> None:
    """Create ``metric``'s child for every combination of the given label values."""
    for labels in product(*values):
        metric.labels(*labels)


def prime_consumer(stream: str, group: str) -> None:
    """Every counter of one stream consumer, at 0."""
    prime(BUS_MESSAGES, [stream], [group], BUS_OUTCOMES)
    prime(BUS_RECLAIMED, [stream], [group])
    prime(BUS_CONSUMERS_REMOVED, [stream], [group])
    prime(BUS_HANDLE_SECONDS, [stream], [group])
    prime(BUS_ERRORS, [stream], BUS_ERROR_KINDS)
    prime(DEAD_LETTERS, [stream], BUS_DEAD_LETTER_REASONS)


def prime_deliveries(channels: Iterable[str], stream: str, reasons: Iterable[str]) -> None:
    """Every counter of the notifier, at 0 (``stream``: where its dead letters come from)."""
    names = list(channels)
    prime(DELIVERIES, names, DELIVERY_OUTCOMES)
    prime(DELIVERY_RETRIES, names)
    prime(DELIVERY_SECONDS, names)
    prime(END_TO_END_SECONDS, names)
    prime(NOTIFIER_DUE_JOBS, names)
    prime(DEAD_LETTERS, [stream], reasons)


# Counters whose labels are known before any process starts.
prime(POLLS, POLL_OUTCOMES)
prime(POLLER_RETRIES, [o for o in POLL_OUTCOMES if o not in ("ok", "not_modified")])
prime(ARTICLES, ["new", "duplicate"])
prime(POLLER_STORIES, ["new_story", "near_duplicate"])
prime(POLLER_WEBSUB, ["subscribed", "subscribe_failed", "verified", "refused", "delivered",
                      "bad_signature"])  # fmt: skip
prime(POLLER_FULL_TEXT, ["extracted", "empty", "failed"])
prime(CLASSIFICATIONS, ["flagged", "not_flagged"])
prime(CONSOLE_LOGINS, CONSOLE_LOGIN_OUTCOMES)
