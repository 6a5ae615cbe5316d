"""A running console for the tests: ``vigil notifier`` in this process on a real Redis, and a
logged-in HTTP client."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr
from redis.asyncio import Redis

from services.runner import run_services
from services.settings import Settings
from tests.helpers import wait_for

TOKEN = "console-test-token-0123456789"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Console:
    """The console's base URL and the process's stop event."""

    url: str
    stop: asyncio.Event


def console_settings(settings: Settings, tmp_path: Path, subscriptions: str = "") -> Settings:
    """The test settings with an admin token, a sources file and a subscriptions file."""
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n"
        "  - {id: wire, url: 'https://wire.example.org/rss?api_key=abc123', name: Wire}\n"
        "  - {id: post, url: 'https://post.example.org/feed'}\n"
    )
    subs = tmp_path / "subscriptions.yaml"
    subs.write_text(subscriptions or "subscriptions: []\n")
    files = {"sources_file": sources, "subscriptions_file": subs}
    return settings.model_copy(update={"admin_token": SecretStr(TOKEN), **files})


@asynccontextmanager
async def running_console(settings: Settings, redis: Redis) -> AsyncIterator[Console]:
    """``vigil notifier`` (notifier, archive and console) in the background."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_services(settings, ["notifier"], stop=stop))
    url = f"http://{settings.http.host}:{settings.http.port}"

    async def up() -> bool:
        if task.done():
            task.result()  # it failed to start: raise its error
        try:
            async with aiohttp.ClientSession() as session, session.get(f"{url}/readyz") as reply:
                return reply.status == 200
        except aiohttp.ClientConnectionError:
            return False

    try:
        await wait_for(up, timeout=15, message="the console's server ready")
        yield Console(url, stop)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    match = _CSRF.search(html)
    assert match, "no form with a CSRF token on the page"
    return match[1]


def browser_like(url: str, **options: Any) -> aiohttp.ClientSession:
    """An HTTP client that keeps the cookies of a loopback address, as a browser does."""
    return aiohttp.ClientSession(base_url=url, cookie_jar=aiohttp.CookieJar(unsafe=True),
                                 **options)  # fmt: skip


@asynccontextmanager
async def logged_in(url: str, token: str = TOKEN) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client with a console session."""
    async with browser_like(url) as client:
        async with client.get("/") as page:
            csrf = csrf_of(await page.text())
        async with client.post("/login", data={"token": token, "csrf": csrf}) as reply:
            assert reply.status == 200, await reply.text()
            assert "Log out" in await reply.text()
        yield client


async def page_csrf(client: aiohttp.ClientSession, path: str) -> str:
    async with client.get(path) as page:
        return csrf_of(await page.text())
