"""Test helpers: waiting on conditions with a deadline, and local aiohttp servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar, overload

from aiohttp import web
from aiohttp.typedefs import Handler
from redis.asyncio import Redis

from shared.bus import StreamBus

T = TypeVar("T")


@overload
async def wait_for(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = ...,  # noqa: ASYNC109
    interval: float = ...,
    message: str = ...,
) -> T: ...


@overload
async def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float = ...,  # noqa: ASYNC109
    interval: float = ...,
    message: str = ...,
) -> T: ...


async def wait_for(
    probe: Callable[[], Any],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - a deadline on polling, not on one await
    interval: float = 0.02,
    message: str = "condition",
) -> Any:
    """Poll ``probe`` until it returns a truthy value; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)


@asynccontextmanager
async def local_server(app: web.Application, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def posting_to(handler: Handler, path: str = "/hook") -> AsyncIterator[str]:
    """Serve one POST ``handler`` at ``path`` on loopback; yields its URL."""
    app = web.Application()
    app.router.add_post(path, handler)
    async with local_server(app) as base:
        yield f"{base}{path}"


class Runnable(Protocol):
    """Anything with the services' ``run(stop)`` loop."""

    async def run(self, stop: asyncio.Event) -> None: ...


@asynccontextmanager
async def background(runnable: Runnable) -> AsyncIterator[asyncio.Event]:
    """Run ``runnable`` in the background; on exit stop it and check that it stops in time."""
    stop = asyncio.Event()
    task = asyncio.create_task(runnable.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def group_done(redis: Redis, stream: str) -> bool:
    """Whether every consumer group of the stream has read and acknowledged every entry
    (a lag XINFO cannot tell, as after a restart, is counted: ``StreamBus.group_status``)."""
    groups = await StreamBus(redis).group_status(stream)
    return bool(groups) and all(group.lag == 0 and group.pending == 0 for group in groups)
