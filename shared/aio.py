"""Waiting in asyncio for a stop, a wake-up or a time, whichever comes first.

Every loop of the services waits through these two: :func:`sleep_or_stop` between periodic
rounds, :class:`Wakeup` where other code may hand the loop work sooner (a finished task frees
a slot, a new job is due now).
"""

from __future__ import annotations

import asyncio


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; return True at once if ``stop`` is set meanwhile."""
    await _first(stop, seconds=seconds)
    return stop.is_set()


class Wakeup:
    """A loop's wake-up call. One that arrives while the loop is busy is kept: its next
    :meth:`wait` returns at once, so no call is lost."""

    def __init__(self) -> None:
        self._called = asyncio.Event()

    def set(self) -> None:
        """Wake the loop now, or at its next wait."""
        self._called.set()

    async def wait(self, stop: asyncio.Event, seconds: float | None = None) -> bool:
        """Wait for a wake-up call, ``stop`` or ``seconds``; take the call; True if stopped."""
        await _first(stop, self._called, seconds=seconds)
        self._called.clear()
        return stop.is_set()


async def _first(*events: asyncio.Event, seconds: float | None) -> None:
    """Return as soon as one of ``events`` is set, or after ``seconds`` (if given)."""
    if any(event.is_set() for event in events) or (seconds is not None and seconds <= 0):
        return
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
