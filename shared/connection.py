"""Redis client construction with reconnect and backoff suited to blocking stream reads."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.settings import BusSettings, ConfigError


def connect(url: str, bus: BusSettings | None = None) -> Redis:
    """A pooled client whose socket timeout stays well above the longest ``BLOCK``."""
    block_seconds = (bus or BusSettings()).block_ms / 1000
    client: Redis = Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=block_seconds + 10,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry=Retry(ExponentialWithJitterBackoff(cap=2.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return client


async def ensure_access(client: Redis) -> None:
    """Raise ``ConfigError`` if Redis answers but refuses this client.

    A wrong or missing password, an ACL or protected mode is a configuration problem that no
    retry will fix, so it is reported at once; an unreachable Redis raises its connection error.
    """
    try:
        await client.ping()
    except (AuthenticationError, ResponseError) as error:
        raise ConfigError(f"Redis refused the connection: {error}") from error
