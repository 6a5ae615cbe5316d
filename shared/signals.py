"""Stop signals that arrive while a service is still starting: remembered, not fatal.

A service process spends its first second importing and connecting. A SIGTERM in that window
(an orchestrator scaling down, a restart storm) would otherwise kill it with the default
handler. :func:`hold` installs a handler that only remembers the signal; the runtime then
starts, sees :func:`requested`, and shuts down cleanly with exit code 0.
"""

from __future__ import annotations

import signal
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_received: list[int] = []


def _remember(signum: int, _: FrameType | None) -> None:
    _received.append(signum)


def hold() -> None:
    """Remember SIGTERM and SIGINT from now on instead of dying of them."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _remember)


def requested() -> bool:
    """Whether a stop signal arrived while held."""
    return bool(_received)
