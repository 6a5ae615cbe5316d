"""How long to wait before trying again: one rule for every retry in Vigil.

Exponential backoff with jitter, as in AWS's "Exponential Backoff And Jitter": after the n-th
failure in a row the step is ``base * 2**n`` capped at ``cap`` (or the n-th of an explicit
schedule, ``steps``), and the wait is the step times a factor drawn from ``jitter``: (0, 1) is
full jitter, (0.5, 1) equal jitter, (0.8, 1.2) plus or minus 20 %. The policies in use:

- Redis away, in every loop (:class:`shared.resilience.Backoff`): :data:`RECONNECT`;
- one command's reconnections inside redis-py (:mod:`shared.connection`): :data:`COMMAND`;
- a failing source (the poller): ``retry_base_seconds`` doubling up to
  ``max_interval_seconds``, equal jitter; the failure count is kept in Redis;
- a failed delivery (the notifier's policy): ``retry_schedule_seconds`` with
  ``retry_jitter``, drawn from the job id so that the policy stays a pure function.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio.retry import Retry
from redis.backoff import AbstractBackoff

FULL_JITTER = (0.0, 1.0)
EQUAL_JITTER = (0.5, 1.0)
_MAX_DOUBLINGS = 64  # past any cap; 2**n of a long failure run would overflow a float


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again after failures in a row, and when to give up (``retries``, or the
    length of ``steps``; never if neither is given)."""

    base: float = 0.1
    cap: float = 10.0
    jitter: tuple[float, float] = FULL_JITTER
    steps: tuple[float, ...] = ()
    retries: int | None = None

    @classmethod
    def schedule(cls, steps: Sequence[float], spread: float) -> RetryPolicy:
        """Retries after the given delays, each plus or minus ``spread`` (a fraction)."""
        return cls(steps=tuple(steps), jitter=(1 - spread, 1 + spread))

    def gives_up(self, failures: int) -> bool:
        """Whether no retry follows the ``failures``-th failure in a row."""
        limit = self.retries if self.retries is not None else len(self.steps) or None
        return limit is not None and failures > limit

    def delay(self, failures: int, draw: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1 for the first);
        ``draw`` in [0, 1] places the wait within the jitter (at random if not given)."""
        if self.steps:
            step = self.steps[min(max(failures, 1), len(self.steps)) - 1]
        else:
            step = min(self.cap, self.base * 2.0 ** min(failures, _MAX_DOUBLINGS))
        low, high = self.jitter
        unit = random.random() if draw is None else draw  # noqa: S311 - not cryptographic
        return step * (low + (high - low) * unit)

    def redis_retry(self) -> Retry:
        """This policy as redis-py's client takes it (``retries`` None: -1, for ever)."""
        return Retry(_RedisBackoff(self), retries=-1 if self.retries is None else self.retries)


class _RedisBackoff(AbstractBackoff):
    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def compute(self, failures: int) -> float:
        return self.policy.delay(failures)


RECONNECT = RetryPolicy(base=0.1, cap=10.0)
"""A loop that meets Redis errors: 0.2 s at most at first, up to 10 s."""
COMMAND = RetryPolicy(base=0.05, cap=2.0, retries=3)
"""redis-py's own reconnections for one command, before the error reaches the loop."""
