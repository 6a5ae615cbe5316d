"""The console's Prometheus metrics: login attempts by outcome."""

from __future__ import annotations

from prometheus_client import Counter

from shared.metrics import prime

CONSOLE_LOGIN_OUTCOMES = ("ok", "wrong_token", "throttled", "stale_form", "closed")
CONSOLE_LOGINS = Counter(
    "vigil_console_logins_total",
    "Console login attempts by outcome (ok, wrong_token, throttled, stale_form, closed).",
    ["outcome"],
)
prime(CONSOLE_LOGINS, CONSOLE_LOGIN_OUTCOMES)
