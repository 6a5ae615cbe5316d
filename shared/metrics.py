"""The Prometheus metrics every Vigil process exports (stream bus, Redis, pipeline stages,
readiness) and the helpers each service's own ``metrics`` module uses.

Each service defines its own in its package (``services/<service>/metrics.py``). Names carry
the ``vigil_`` prefix and their unit; labels are low-cardinality (no URLs or ids). A labelled
counter exists at 0 for each of its known labels from the start (:func:`prime`): rules and
dashboards that name ``outcome="dead_lettered"`` see a series before the first dead letter,
and ``increase()`` counts that first one.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import product

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

STAGES = ("fetch", "parse", "publish", "classify", "deliver")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
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
    "Idle entries of other consumers reclaimed (XCLAIM once idle past claim_idle_ms).",
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
    "Redis errors met by consumers (connection, nogroup: reading; in_flight: handling an entry, "
    "retried in place), each followed by a backoff.",
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
BUS_ERROR_KINDS = ("connection", "nogroup", "in_flight")
BUS_DEAD_LETTER_REASONS = ("decode", "max_deliveries", "rejected")

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
