"""Source health as the pollers recorded it: one row per configured source, for
``vigil sources status``, ``vigil status`` and the console's Sources view."""

from __future__ import annotations

from redis.asyncio import Redis

from services.poller.schedule import Schedule
from services.poller.sources import DEFAULT_SOURCES_FILE, Source, load_sources
from services.poller.state import SourceState, StateStore
from services.settings import load_settings


def _health(source: Source, state: SourceState) -> str:
    if not source.enabled:
        return "disabled"
    if state.last_poll is None:
        return "pending"
    return "failing" if state.consecutive_failures else "ok"


def _row(source: Source, state: SourceState, due: float | None) -> dict[str, object]:
    return {
        "id": source.id,
        "url": source.url,
        "health": _health(source, state),
        "last_outcome": state.last_outcome,
        "last_success": state.last_success,
        "last_error": state.last_error,
        "last_error_at": state.last_error_at,
        "consecutive_failures": state.consecutive_failures,
        "items_seen": state.items_seen,
        "interval_seconds": state.interval or source.interval,
        "next_due": due,
    }


async def source_rows(redis: Redis, configured: list[Source]) -> list[dict[str, object]]:
    """Every configured source with its health as recorded by the pollers."""
    ids = [s.id for s in configured]
    states = await StateStore(redis).many(ids)
    dues = await Schedule(redis).due_times(ids)
    return [_row(s, st, d) for s, st, d in zip(configured, states, dues, strict=True)]


def configured_sources() -> list[Source]:
    """The sources of ``VIGIL_SOURCES_FILE``, or the bundled default list."""
    return load_sources(load_settings().sources_file or DEFAULT_SOURCES_FILE)
