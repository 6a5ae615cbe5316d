"""What the notifier knows about one subscriber's endpoint: counters, circuit, pause, window.

Plain data, read from Redis by :mod:`services.notifier.store` and judged by
:mod:`services.notifier.policy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

Window = Mapping[int, tuple[int, int]]
"""Attempts of the recent past: period number -> (successes, failures)."""


def _number(raw: Mapping[str, str], name: str) -> float:
    return float(raw.get(name) or 0.0)


@dataclass(frozen=True)
class DeliveryState:
    """How deliveries to one subscriber are going.

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

    @classmethod
    def from_hash(cls, raw: Mapping[str, str]) -> DeliveryState:
        return cls(
            delivered=int(raw.get("delivered", 0)),
            failed=int(raw.get("failed", 0)),
            dead_lettered=int(raw.get("dead_lettered", 0)),
            consecutive_failures=int(raw.get("consecutive_failures", 0)),
            last_success_at=_number(raw, "last_success_at") or None,
            last_error_at=_number(raw, "last_error_at") or None,
            last_error=raw.get("last_error", ""),
            circuit_open_until=_number(raw, "circuit_open_until"),
            circuit_opened_at=_number(raw, "circuit_opened_at"),
            probe_job=raw.get("probe_job", ""),
            probe_until=_number(raw, "probe_until"),
            paused_until=_number(raw, "paused_until"),
            disabled_reason=raw.get("disabled_reason", ""),
        )

    def circuit(self, now: float) -> str:
        """``closed``, ``open`` or ``half-open`` at ``now``."""
        if not self.circuit_open_until:
            return "closed"
        return "open" if self.circuit_open_until > now else "half-open"
