"""The Redis of an operator command (``vigil dlq``, ``vigil sources``, ``vigil status``...):
one client on ``VIGIL_REDIS_URL`` for the command's action, closed afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis

from services.settings import load_settings
from shared.connection import connect, ensure_access
from shared.settings import ConfigError

T = TypeVar("T")


def with_redis(action: Callable[[Redis], Awaitable[T]]) -> T:
    """Run ``action`` with a client on ``VIGIL_REDIS_URL``, closing it afterwards."""
    settings = load_settings()
    if settings.redis_url is None:
        raise ConfigError("VIGIL_REDIS_URL is required for this command")
    url = settings.redis_url

    async def run() -> T:
        redis = connect(url, settings.bus)
        try:
            await ensure_access(redis)
            return await action(redis)
        finally:
            await redis.aclose()

    return asyncio.run(run())
