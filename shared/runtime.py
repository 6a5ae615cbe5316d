"""Running one or more service components in a process, with signals and health endpoints.

A component is anything with ``name``, ``async run(stop)`` and ``is_ready()``. SIGTERM or
SIGINT sets the shared stop event: components stop taking new work and finish or release
what is in flight within their grace period, then the HTTP server and Redis close.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from typing import Protocol

from aiohttp import web
from redis.asyncio import Redis

from shared import signals
from shared.aio import sleep_or_stop
from shared.bus import TRANSIENT_ERRORS, StreamBus
from shared.health import health_app
from shared.logging import get_logger
from shared.resilience import follow_master
from shared.settings import HttpSettings

log = get_logger("runtime")

GAUGE_INTERVAL_SECONDS = 5.0
FORCED_STOP_MARGIN_SECONDS = 5.0


class Component(Protocol):
    """A long-running part of a service."""

    name: str

    async def run(self, stop: asyncio.Event) -> None: ...

    def is_ready(self) -> bool: ...


AppSetup = Callable[[web.Application], None]


async def _refresh_gauges(bus: StreamBus, streams: Sequence[str], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await bus.update_gauges(streams)
        except TRANSIENT_ERRORS as error:
            log.warning("runtime.gauges_failed", error=str(error))
        await sleep_or_stop(stop, GAUGE_INTERVAL_SECONDS)


async def serve(
    components: Sequence[Component],
    *,
    redis: Redis,
    http: HttpSettings,
    streams: Sequence[str] = (),
    app_setups: Sequence[AppSetup] = (),
    stop: asyncio.Event | None = None,
    grace_seconds: float = 10.0,
) -> None:
    """Run ``components`` until a signal (or ``stop``) asks them to end.

    After a stop signal the components have ``grace_seconds`` (plus a margin for closing
    connections) to return; a process still running then is ended (:func:`signals.watch`).
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    watcher = signals.watch(
        lambda sig: loop.call_soon_threadsafe(_on_signal, stop, sig),
        deadline=grace_seconds + FORCED_STOP_MARGIN_SECONDS,
    )
    if signals.requested():
        log.info("runtime.stopping", reason="signal received during start-up")
        stop.set()
    app = health_app(redis, [(c.name, c.is_ready) for c in components])
    for setup in app_setups:
        setup(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, http.host, http.port)
    await site.start()
    log.info("runtime.started", components=[c.name for c in components], host=http.host,
             port=http.port)  # fmt: skip
    try:
        async with asyncio.TaskGroup() as group:
            for component in components:
                group.create_task(_run_component(component, stop), name=component.name)
            group.create_task(_refresh_gauges(StreamBus(redis), streams, stop))
            group.create_task(follow_master(redis, stop))
    finally:
        stop.set()
        await runner.cleanup()
        await redis.aclose()
        watcher.finished()
        log.info("runtime.stopped")


async def _run_component(component: Component, stop: asyncio.Event) -> None:
    """Run one component; if it crashes, stop the others gracefully and re-raise."""
    try:
        await component.run(stop)
    except Exception:
        log.exception("runtime.component_crashed", component=component.name)
        stop.set()
        raise


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    if stop.is_set():
        return
    log.info("runtime.stopping", signal=sig.name)
    stop.set()
