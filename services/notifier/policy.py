"""The delivery policy: what happens to a job, as one pure function of what is known.

``decide(result, job, subscriber, config, now)`` answers, without touching Redis or a clock:

- before an attempt (``result`` None): send now (perhaps as the probe of a half-open
  circuit), pause until the endpoint may be tried, or dead-letter (no usable subscription);
- when the rate limiter has no slot left (:data:`RATE_LIMITED`): fold an alert into the
  subscriber's next "…and N more" message (email, chat) or pause until the next minute;
- after an attempt (a :class:`SendResult`): delivered, retry at a time, pause the endpoint
  (it asked us to wait), dead-letter or disable the subscription, with the circuit change.

The endpoint policy (after Convoy's and Svix's, see docs/notifier.md):

- The circuit opens when, over the last ``circuit_window_seconds``, at least
  ``circuit_min_attempts`` attempts were made, at least ``circuit_failure_ratio`` of them
  failed, and failures fell in at least ``circuit_min_failing_periods`` of the window's ten
  periods: a burst of first attempts failing together never opens it.
- Open, it holds every job without an attempt for ``circuit_open_seconds``; then one job
  probes (half-open). Success closes the circuit; failure re-opens it; an endpoint whose
  circuit has stayed open for ``circuit_disable_after_seconds`` is disabled (Svix: 5 days).
- ``429``/``503`` with ``Retry-After`` is backpressure: the endpoint is paused until then,
  no failure is counted and the job keeps its attempts; a job held that way for longer than
  the whole retry schedule is dead-lettered.
- A failure is retried on ``retry_schedule_seconds`` with a jitter derived from the job id
  (so the same inputs give the same answer); after the last one the job is dead-lettered.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final

from services.notifier.channels.base import SendResult
from services.notifier.channels.registry import CHANNELS
from services.notifier.jobs import Attempt, Job
from services.notifier.settings import NotifierSettings
from services.notifier.state import EndpointState, Window
from services.notifier.subscriptions import Subscription
from shared.retry import RetryPolicy

WINDOW_PERIODS: Final = 10
"""The breaker's window is cut into this many periods (a minute each by default)."""
DEAD_LETTER_REASONS: Final = (
    "subscription_deleted", "subscription_disabled", "unknown_channel", "invalid_subscription",
    "gone", "rejected", "max_attempts", "throttled", "failing",
)  # fmt: skip
"""Why a job is dead-lettered: the first word of each reason (the metrics' ``reason`` label;
``unknown_channel`` and ``invalid_subscription`` come from the store)."""


class RateLimited:
    """The "result" of an attempt the rate limiter did not allow."""

    def __repr__(self) -> str:
        return "RATE_LIMITED"


RATE_LIMITED: Final = RateLimited()
Result = SendResult | RateLimited | None


@dataclass(frozen=True)
class Subscriber:
    """What is known of the job's subscriber: its subscription (None if deleted), why a
    stored one cannot be used, its endpoint's state and its recent attempts."""

    subscription: Subscription | None
    state: EndpointState = field(default_factory=EndpointState)
    window: Window | None = None
    problem: str = ""


@dataclass(frozen=True)
class Send:
    """Attempt the job now; ``probe``: it is the one attempt of a half-open circuit."""

    probe: bool = False


@dataclass(frozen=True)
class Delivered:
    """The job is done; ``close_circuit`` after a successful probe."""

    close_circuit: bool = False


@dataclass(frozen=True)
class Retry:
    """Try ``job`` (its attempt counted) again at ``at``; open the circuit if asked."""

    job: Job
    at: float
    reason: str
    open_circuit_until: float | None = None


@dataclass(frozen=True)
class Pause:
    """Hold ``job`` until ``until`` without counting an attempt; ``endpoint``: the endpoint
    asked to wait, so hold its other jobs too."""

    job: Job
    until: float
    reason: str
    endpoint: bool = False


@dataclass(frozen=True)
class Fold:
    """Send the job's alert in the subscriber's overflow message of epoch minute ``minute``."""

    minute: int


@dataclass(frozen=True)
class DeadLetter:
    """Keep ``job`` in the dead letters with ``reason`` (replayable)."""

    job: Job
    reason: str
    open_circuit_until: float | None = None


@dataclass(frozen=True)
class Disable:
    """Turn the subscription off and dead-letter ``job``."""

    job: Job
    reason: str


Decision = Send | Delivered | Retry | Pause | Fold | DeadLetter | Disable


def decide(
    result: Result,
    job: Job,
    subscriber: Subscriber,
    config: NotifierSettings,
    now: float,
) -> Decision:
    """What to do with ``job`` given what just happened to it (see the module's doc)."""
    if result is None:
        return _before(job, subscriber, now)
    if isinstance(result, RateLimited):
        return _over_limit(job, subscriber, now)
    return _after(result, job, subscriber, config, now)


def _before(job: Job, subscriber: Subscriber, now: float) -> Decision:
    subscription = subscriber.subscription
    if subscription is None:
        reason = subscriber.problem or f"subscription_deleted: {job.subscription_id} is deleted"
        return DeadLetter(job, reason)
    if not subscription.enabled:
        return DeadLetter(job, f"subscription_disabled: {subscription.id} is disabled")
    return _hold(job, subscriber.state, now) or Send()


def _hold(job: Job, state: EndpointState, now: float) -> Pause | Send | None:
    """What the endpoint's pause and circuit say before an attempt (None: nothing)."""
    if state.paused_until > now:
        return Pause(job, state.paused_until, "paused")
    circuit = state.circuit(now)
    if circuit == "open":
        return Pause(job, state.circuit_open_until, "circuit_open")
    if circuit == "half-open":
        if state.probe_job == job.id and state.probe_until > now:
            return Send(probe=True)
        # Another job probes: look again when its lease ends (a success closes the circuit).
        return Pause(job, max(state.probe_until, now + 1.0), "circuit_open")
    return None


def _over_limit(job: Job, subscriber: Subscriber, now: float) -> Decision:
    next_minute = int(now // 60) + 1
    subscription = subscriber.subscription
    spec = CHANNELS.get(subscription.channel) if subscription else None
    if job.kind == "alert" and spec is not None and spec.folds_overflow:
        return Fold(next_minute)
    return Pause(job, next_minute * 60.0, "rate_limited")


def _after(
    result: SendResult,
    job: Job,
    subscriber: Subscriber,
    config: NotifierSettings,
    now: float,
) -> Decision:
    state = subscriber.state
    probe = state.circuit(now) != "closed" and state.probe_job == job.id
    if result.outcome == "delivered":
        return Delivered(close_circuit=probe)
    history = [*job.history, Attempt(at=now, outcome=result.outcome, detail=result.detail)]
    if result.outcome == "throttled":
        return _throttled(job.model_copy(update={"history": history}), result, config, now)
    tried = job.model_copy(update={"history": history, "attempts": job.attempts + 1})
    if result.outcome == "gone":
        return Disable(tried, f"gone: {result.detail}")
    if result.outcome == "rejected":
        return DeadLetter(tried, f"rejected: {result.detail}")
    return _failed(result, tried, subscriber, config, now, probe=probe)


def _failed(
    result: SendResult,
    tried: Job,
    subscriber: Subscriber,
    config: NotifierSettings,
    now: float,
    *,
    probe: bool,
) -> Decision:
    """A failed attempt: retry on the schedule, open the circuit if it trips (or re-open it
    after a failed probe), disable an endpoint failing for too long."""
    state = subscriber.state
    open_until: float | None = None
    if probe:
        failing_since = state.circuit_opened_at or now
        if now - failing_since >= config.circuit_disable_after_seconds:
            return Disable(
                tried, f"failing: every attempt since {failing_since:.0f} failed; last: "
                f"{result.detail}",
            )  # fmt: skip
        open_until = now + config.circuit_open_seconds
    elif state.circuit(now) == "closed" and trips(subscriber.window or {}, config, now):
        open_until = now + config.circuit_open_seconds
    retry = RetryPolicy.schedule(config.retry_schedule_seconds, config.retry_jitter)
    if retry.gives_up(tried.attempts):
        reason = f"max_attempts: failed {tried.attempts} times; last: {result.detail}"
        return DeadLetter(tried, reason, open_circuit_until=open_until)
    delay = retry.delay(tried.attempts, draw(tried))
    at = now + max(delay, result.retry_after or 0.0)
    return Retry(tried, at, result.detail, open_circuit_until=open_until)


def _throttled(job: Job, result: SendResult, config: NotifierSettings, now: float) -> Decision:
    """Backpressure: pause the endpoint as asked, unless this job has waited too long."""
    since = now
    for attempt in reversed(job.history):
        if attempt.outcome != "throttled":
            break
        since = attempt.at
    patience = sum(config.retry_schedule_seconds)
    if now - since > patience:
        return DeadLetter(
            job, f"throttled: the endpoint has asked to wait for {now - since:.0f} s, longer "
            f"than the retry schedule ({patience:.0f} s); last: {result.detail}",
        )  # fmt: skip
    wait = max(result.retry_after or 0.0, config.retry_schedule_seconds[0])
    return Pause(job, now + wait, "throttled", endpoint=True)


def trips(window: Window, config: NotifierSettings, now: float) -> bool:
    """Whether the attempts of the window's last ten periods open the circuit."""
    period = config.circuit_window_seconds / WINDOW_PERIODS
    current = int(now // period)
    recent = [counts for number, counts in window.items() if current - number < WINDOW_PERIODS]
    successes = sum(ok for ok, _ in recent)
    failures = sum(failed for _, failed in recent)
    failing_periods = sum(1 for _, failed in recent if failed)
    return (
        successes + failures >= config.circuit_min_attempts
        and failures >= config.circuit_failure_ratio * (successes + failures)
        and failing_periods >= config.circuit_min_failing_periods
    )


def draw(job: Job) -> float:
    """Where in [0, 1) the retry of ``job`` falls within the jitter: the same for the same job
    and attempt, different across jobs, so that retries of a burst do not all fall due in the
    same second and the policy stays a function of its inputs."""
    digest = hashlib.blake2b(f"{job.id}:{job.attempts}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
