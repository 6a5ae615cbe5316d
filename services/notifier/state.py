"""What the notifier knows about one subscriber's endpoint: counters, circuit, pause, window.

Plain data, read from Redis by :mod:`services.notifier.store` (with
:func:`shared.hashes.from_hash`), judged by :mod:`services.notifier.policy` and summed up in a
few words for operators.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Window = Mapping[int, tuple[int, int]]
"""Attempts of the recent past: period number -> (successes, failures)."""


@dataclass(frozen=True)
class EndpointState:
    """How one subscriber's endpoint is doing: attempts by outcome, circuit, pause.

    The circuit is closed while ``circuit_open_until`` is 0; open until that time; then
    half-open: one job (``probe_job``, leased until ``probe_until``) tries the endpoint.
    ``circuit_opened_at`` is when the current run of open periods began. ``paused_until`` is
    the endpoint's own request to wait (``Retry-After``).
    """

    delivered: int = 0
    failed: int = 0
    dead_lettered: int = 0
    consecutive_failures: int = 0
    last_success_at: float | None = None
    last_error_at: float | None = None
    last_error: str = ""
    circuit_open_until: float = 0.0
    circuit_opened_at: float = 0.0
    probe_job: str = ""
    probe_until: float = 0.0
    paused_until: float = 0.0
    disabled_reason: str = ""

    def circuit(self, now: float) -> str:
        """``closed``, ``open`` or ``half-open`` at ``now``."""
        if not self.circuit_open_until:
            return "closed"
        return "open" if self.circuit_open_until > now else "half-open"


def subscription_health(row: Mapping[str, Any], now: float) -> str:
    """How a subscription is doing, in a few words: a row of
    :meth:`~services.notifier.store.SubscriptionStore.overview`, its subscription's fields
    beside ``state`` (``vigil status``, the console)."""
    state = row["state"]
    if not row["enabled"]:
        return "disabled" + (f" ({state['disabled_reason']})" if state["disabled_reason"] else "")
    if state["circuit_open_until"]:
        return "circuit open" if state["circuit_open_until"] > now else "circuit half-open"
    if state["paused_until"] > now:
        return "paused (asked to wait)"
    return "failing" if state["consecutive_failures"] else "ok"
