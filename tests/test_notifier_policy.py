"""The delivery policy as a table: what happened, the job, the subscriber -> the decision.

Pure: no Redis, no clock, no network. Each row names the rule it checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from services.notifier.channels.base import SendResult
from services.notifier.jobs import Attempt, Job
from services.notifier.policy import (
    RATE_LIMITED,
    DeadLetter,
    Decision,
    Delivered,
    Disable,
    Fold,
    Pause,
    Result,
    Retry,
    Send,
    Subscriber,
    decide,
    draw,
    trips,
)
from services.notifier.settings import NotifierSettings
from services.notifier.state import EndpointState, Window
from services.notifier.subscriptions import Subscription
from shared.retry import RetryPolicy
from tests.factories import make_alert

NOW = 1_800_000_000.0  # a multiple of 600: the window's periods are whole minutes
CONFIG = NotifierSettings()
MINUTE = int(NOW // 60)
DAYS = 86_400.0
ALERT = make_alert("a1")


def job(**changes: Any) -> Job:
    base = Job(id="msg_1", subscription_id="desk", kind="alert", channel="webhook",
                       alerts=[ALERT], created_at=NOW - 10)  # fmt: skip
    return base.model_copy(update=changes)


TARGETS: dict[str, dict[str, Any]] = {
    "webhook": {"url": "https://hooks.example.org/x",
                "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
    "email": {"to": ["desk@example.org"]},
    "chat": {"url": "slack://T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"},
    "console": {},
}  # fmt: skip


def subscription(channel: str = "webhook", **extra: Any) -> Subscription:
    fields = TARGETS[channel]
    return Subscription.model_validate({"id": "desk", "channel": channel, **fields, **extra})


def subscriber(channel: str = "webhook", window: Window | None = None, **state: Any) -> Subscriber:
    return Subscriber(subscription(channel), EndpointState(**state), window)


def failures(*periods: int, each: int = 1, ok: int = 0) -> Window:
    """A window with ``each`` failures (and ``ok`` successes) in each of the given minutes."""
    return {MINUTE - back: (ok, each) for back in periods}


OPEN: dict[str, Any] = {"circuit_open_until": NOW + 100, "circuit_opened_at": NOW - 200}
HALF_OPEN_PROBE: dict[str, Any] = {"circuit_open_until": NOW - 1, "circuit_opened_at": NOW - 400,
                   "probe_job": "msg_1", "probe_until": NOW + 25}  # fmt: skip
HALF_OPEN_OTHER: dict[str, Any] = {**HALF_OPEN_PROBE, "probe_job": "msg_2"}


@dataclass(frozen=True)
class Row:
    rule: str
    result: Result
    expected: Decision | type[Decision]
    job: Job = field(default_factory=job)
    subscriber: Subscriber = field(default_factory=subscriber)
    check: dict[str, Any] = field(default_factory=dict)
    """Attributes the decision must have (``job.attempts``, ``at``...), besides its type."""


def fail(detail: str = "HTTP 500", retry_after: float | None = None) -> SendResult:
    return SendResult("retry", detail, retry_after)


def throttled(retry_after: float) -> SendResult:
    return SendResult("throttled", "HTTP 429", retry_after)


def throttled_since(at: float) -> list[Attempt]:
    return [Attempt(at=at, outcome="throttled", detail="HTTP 429"),
            Attempt(at=NOW - 60, outcome="throttled", detail="HTTP 429")]  # fmt: skip


BEFORE = [
    Row("a deleted subscription dead-letters its jobs", None,
        DeadLetter(job(), "subscription_deleted: desk is deleted"), subscriber=Subscriber(None)),
    Row("a stored subscription of an unknown channel dead-letters instead of looping", None,
        DeadLetter(job(), "unknown_channel: desk: channel: pager"),
        subscriber=Subscriber(None, problem="unknown_channel: desk: channel: pager")),
    Row("a disabled subscription dead-letters its jobs", None,
        DeadLetter(job(), "subscription_disabled: desk is disabled"),
        subscriber=Subscriber(subscription(enabled=False))),
    Row("an endpoint that asked to wait holds its jobs", None,
        Pause(job(), NOW + 7, "paused"), subscriber=subscriber(paused_until=NOW + 7)),
    Row("an open circuit holds jobs without an attempt", None,
        Pause(job(), NOW + 100, "circuit_open"), subscriber=subscriber(**OPEN)),
    Row("the probe of a half-open circuit is delivered", None, Send(probe=True),
        subscriber=subscriber(**HALF_OPEN_PROBE)),
    Row("other jobs wait for the probe's lease to end", None,
        Pause(job(), NOW + 25, "circuit_open"), subscriber=subscriber(**HALF_OPEN_OTHER)),
    Row("a closed circuit delivers", None, Send()),
    Row("a pause that ended is no pause", None, Send(),
        subscriber=subscriber(paused_until=NOW - 1)),
]  # fmt: skip

RATE = [
    Row("an email alert over the limit folds into the next minute's message", RATE_LIMITED,
        Fold(MINUTE + 1), subscriber=subscriber("email")),
    Row("a chat alert over the limit folds too", RATE_LIMITED, Fold(MINUTE + 1),
        subscriber=subscriber("chat")),
    Row("a webhook over its limit waits for the next minute", RATE_LIMITED,
        Pause(job(), (MINUTE + 1) * 60.0, "rate_limited")),
    Row("a digest is never folded: it waits", RATE_LIMITED,
        Pause(job(kind="digest"), (MINUTE + 1) * 60.0, "rate_limited"),
        job=job(kind="digest"), subscriber=subscriber("email")),
]  # fmt: skip

AFTER = [
    Row("2xx is delivered", SendResult("delivered", "200"), Delivered()),
    Row("a successful probe closes the circuit", SendResult("delivered", "200"),
        Delivered(close_circuit=True), subscriber=subscriber(**HALF_OPEN_PROBE)),
    Row("an old in-flight success does not close an open circuit", SendResult("delivered"),
        Delivered(), subscriber=subscriber(**OPEN)),
    Row("410 disables the subscription", SendResult("gone", "410 Gone"), Disable,
        check={"reason": "gone: 410 Gone", "job.attempts": 1}),
    Row("a permanent failure dead-letters at once", SendResult("rejected", "SMTP 550"),
        DeadLetter, check={"reason": "rejected: SMTP 550", "job.attempts": 1}),
    Row("429 + Retry-After pauses the endpoint, counting no attempt", throttled(15), Pause,
        check={"until": NOW + 15, "endpoint": True, "job.attempts": 0,
               "job.history[-1].outcome": "throttled"}),
    Row("Retry-After: 0 still waits the first retry delay", throttled(0), Pause,
        check={"until": NOW + CONFIG.retry_schedule_seconds[0]}),
    Row("a job throttled for longer than the whole schedule is dead-lettered", throttled(15),
        DeadLetter, job=job(history=throttled_since(NOW - sum(CONFIG.retry_schedule_seconds) - 1)),
        check={"job.attempts": 0}),
    Row("a replay starts the throttling run afresh", throttled(15), Pause,
        job=job(history=[*throttled_since(NOW - 50 * DAYS),
                         Attempt(at=NOW - 5, outcome="replayed")])),
    Row("a first failure retries on the schedule's first delay", fail(), Retry,
        check={"job.attempts": 1, "open_circuit_until": None}),
    Row("Retry-After later than the backoff wins", fail(retry_after=120), Retry,
        check={"at": NOW + 120}),
    Row("the last failure dead-letters with the history", fail(), DeadLetter,
        job=job(attempts=len(CONFIG.retry_schedule_seconds)),
        check={"job.attempts": len(CONFIG.retry_schedule_seconds) + 1,
               "job.history[-1].detail": "HTTP 500"}),
    Row("failures over the minimum, in three periods of the window, open the circuit", fail(),
        Retry, subscriber=subscriber(window=failures(0, 1, 2, each=4)),
        check={"open_circuit_until": NOW + CONFIG.circuit_open_seconds}),
    Row("one burst of first-attempt failures never opens it", fail(), Retry,
        subscriber=subscriber(window=failures(0, each=60)), check={"open_circuit_until": None}),
    Row("fewer attempts than the minimum do not open it", fail(), Retry,
        subscriber=subscriber(window={MINUTE: (0, 3), MINUTE - 1: (0, 3), MINUTE - 2: (0, 3)}),
        check={"open_circuit_until": None}),
    Row("a failure rate under the threshold does not open it", fail(), Retry,
        subscriber=subscriber(window=failures(0, 1, 2, each=1, ok=3)),
        check={"open_circuit_until": None}),
    Row("failures that left the window do not count", fail(), Retry,
        subscriber=subscriber(window=failures(0, 10, 11, each=4)),
        check={"open_circuit_until": None}),
    Row("a failed probe opens the circuit again", fail(), Retry,
        subscriber=subscriber(**HALF_OPEN_PROBE),
        check={"open_circuit_until": NOW + CONFIG.circuit_open_seconds}),
    Row("an endpoint failing every probe for five days is disabled", fail(), Disable,
        subscriber=subscriber(**{**HALF_OPEN_PROBE, "circuit_opened_at": NOW - 5 * DAYS})),
    Row("a failure while the circuit is open does not re-open it", fail(), Retry,
        subscriber=subscriber(window=failures(0, 1, 2, each=4), **OPEN),
        check={"open_circuit_until": None}),
    Row("the last attempt can still open the circuit", fail(), DeadLetter,
        job=job(attempts=len(CONFIG.retry_schedule_seconds)),
        subscriber=subscriber(window=failures(0, 1, 2, each=4)),
        check={"open_circuit_until": NOW + CONFIG.circuit_open_seconds}),
]  # fmt: skip


def _attribute(value: Any, path: str) -> Any:
    for part in path.replace("[-1]", ".-1").split("."):
        value = value[-1] if part == "-1" else getattr(value, part)
    return value


@pytest.mark.parametrize("row", BEFORE + RATE + AFTER, ids=lambda row: row.rule)
def test_the_policy_table(row: Row) -> None:
    decision = decide(row.result, row.job, row.subscriber, CONFIG, NOW)
    if isinstance(row.expected, type):
        assert isinstance(decision, row.expected), decision
    else:
        assert decision == row.expected
    for path, expected in row.check.items():
        assert _attribute(decision, path) == expected, path


def test_a_retry_comes_within_the_jitter_of_its_delay() -> None:
    for attempts, delay in enumerate(CONFIG.retry_schedule_seconds[:-1]):
        decision = decide(fail(), job(attempts=attempts), subscriber(), CONFIG, NOW)
        assert isinstance(decision, Retry)
        spread = delay * CONFIG.retry_jitter
        assert NOW + delay - spread <= decision.at <= NOW + delay + spread


def jitter(job: Job, spread: float) -> float:
    """The factor a one-second schedule gives ``job``'s retry."""
    return RetryPolicy.schedule([1.0], spread).delay(1, draw(job))


def test_jitter_is_the_same_for_a_job_and_differs_across_jobs() -> None:
    factors = {jitter(job(id=f"msg_{n}"), 0.2) for n in range(50)}
    assert jitter(job(), 0.2) == jitter(job(), 0.2)
    assert len(factors) == 50
    assert all(0.8 <= factor <= 1.2 for factor in factors)
    assert jitter(job(), 0.0) == 1.0


def test_the_window_needs_failures_spread_over_its_periods() -> None:
    spread = failures(0, 4, 9, each=4)
    assert trips(spread, CONFIG, NOW)
    assert not trips({MINUTE: (0, 100), MINUTE - 1: (0, 100)}, CONFIG, NOW)
