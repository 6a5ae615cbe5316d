"""The notifier's Prometheus metrics: deliveries by channel and outcome, retries, latency from
fetch to delivery and the backlog of due jobs."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

from shared.metrics import DEAD_LETTERS, LATENCY_BUCKETS, prime

E2E_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

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
TURNS_RETRIED_IN_PLACE = Counter(
    "vigil_notifier_turns_retried_in_place_total",
    "Delivery turns that met Redis away (a failover, a restart) and were taken again in place.",
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


def prime_deliveries(channels: Iterable[str], stream: str, reasons: Iterable[str]) -> None:
    """Every counter of the notifier, at 0 (``stream``: where its dead letters come from)."""
    names = list(channels)
    prime(DELIVERIES, names, DELIVERY_OUTCOMES)
    prime(DELIVERY_RETRIES, names)
    prime(DELIVERY_SECONDS, names)
    prime(END_TO_END_SECONDS, names)
    prime(NOTIFIER_DUE_JOBS, names)
    prime(DEAD_LETTERS, [stream], reasons)
