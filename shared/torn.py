"""Connections closed under a command, reported as the connection errors they are.

Dropping a pool after a failover (:func:`shared.connection.drop_connections`) closes the
connections other tasks are writing on, or still opening; redis-py then fails inside its own
connection code with ``'NoneType' object has no attribute ...`` (redis/redis-py#4287) instead
of a ``ConnectionError``. Vigil's clients are made of the connection classes here, which
raise the ``ConnectionError`` instead, so redis-py's own retries and every loop's handling of
transient errors apply (before, the console's live feed died of it in a failover).
"""

from __future__ import annotations

import os
import traceback
from typing import Any

from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.exceptions import ConnectionError as RedisConnectionError


def torn_connection(error: BaseException) -> bool:
    """Whether ``error`` is redis-py's ``AttributeError`` for a connection closed under a
    command (see the module): it means reconnect. Any other ``AttributeError`` is a bug."""
    if not isinstance(error, AttributeError) or "'NoneType' object" not in str(error):
        return False
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and f"{os.sep}redis{os.sep}" in frames[-1].filename


class ReportsTornConnections(AbstractConnection):
    """A connection that reports being closed under a command as a ``ConnectionError``."""

    async def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        try:
            await super().send_packed_command(*args, **kwargs)
        except AttributeError as error:
            _raise_if_torn(error)
            raise

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except AttributeError as error:
            _raise_if_torn(error)
            raise


def _raise_if_torn(error: AttributeError) -> None:
    """Raise a ``ConnectionError`` in place of a torn connection's ``error``; return for any
    other ``AttributeError``, which the caller re-raises as it is."""
    if torn_connection(error):
        raise RedisConnectionError(f"connection closed while in use ({error})") from error


class _Connection(ReportsTornConnections, Connection):
    """TCP."""


class _SSLConnection(ReportsTornConnections, SSLConnection):
    """TLS."""


class _UnixConnection(ReportsTornConnections, UnixDomainSocketConnection):
    """A Unix socket."""


TORN_SAFE: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: _Connection,
    SSLConnection: _SSLConnection,
    UnixDomainSocketConnection: _UnixConnection,
}
