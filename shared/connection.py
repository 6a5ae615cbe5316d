"""Redis clients for the three deployments ``VIGIL_REDIS_URL`` can name, and their checks.

One server (``redis://``, ``rediss://``, ``unix://``), a Sentinel-managed master and a Redis
Cluster each get redis-py's own asyncio client, with a socket timeout well above the longest
``BLOCK`` and reconnects with backoff. Services type the client as :class:`Redis`: the
cluster client speaks the same commands, and the few places where the two differ (dropping
connections after a failover) are handled here.
"""

from __future__ import annotations

from typing import Any, cast
from weakref import WeakKeyDictionary

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.sentinel import (
    MasterNotFoundError,
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
)
from redis.exceptions import AuthenticationError, RedisClusterException, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.redis_url import parse_redis_url
from shared.retry import COMMAND
from shared.settings import BusSettings, ConfigError
from shared.torn import TORN_SAFE, ReportsTornConnections

_SENTINEL_TIMEOUT_SECONDS = 2.0


def connect(url: str, bus: BusSettings | None = None) -> Redis:
    """A pooled client of the deployment ``url`` names (see :mod:`shared.redis_url`)."""
    target = parse_redis_url(url)
    block_seconds = (bus or BusSettings()).block_ms / 1000
    common: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": block_seconds + 10,
        "socket_connect_timeout": 5,
        "retry": COMMAND.redis_retry(),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }
    if target.topology == "standalone":
        return _standalone(url, common)
    auth: dict[str, Any] = {"username": target.username, "password": target.password}
    tls = {"ssl": True, **target.options} if target.tls else {}
    if target.topology == "cluster":
        cluster = _Cluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            health_check_interval=30,
            **auth,
            **tls,
            **common,
        )
        return cast(Redis, cluster)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        target.nodes,
        sentinel_kwargs={
            "socket_timeout": _SENTINEL_TIMEOUT_SECONDS,
            "socket_connect_timeout": _SENTINEL_TIMEOUT_SECONDS,
            **target.sentinel_options,
            **tls,
        },
    )
    assert target.master is not None
    connection_class = _FollowingSSLConnection if target.tls else _FollowingConnection
    return cast(
        Redis,
        sentinel.master_for(
            target.master,
            redis_class=_SentinelRedis,
            connection_pool_class=_FollowingPool,
            connection_class=connection_class,
            db=target.db,
            **auth,
            **tls,
            **common,
        ),
    )


def _standalone(url: str, common: dict[str, Any]) -> Redis:
    client = Redis.from_url(url, health_check_interval=30, **common)
    pool = client.connection_pool
    pool.connection_class = TORN_SAFE[pool.connection_class]
    return client


class _Cluster(RedisCluster):
    """A cluster client whose "no node answers" is a connection error, as for one server.

    redis-py reports a cluster it cannot load at (re)initialisation as a bare
    :class:`RedisClusterException` wrapping the last node's error. The services retry
    connection errors, so that is what an unreachable or partly covered cluster becomes; a
    refused password, or nodes without cluster mode, keep their own error: configuration.
    Its connections report being closed under a command as a connection error too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One dict, shared with the nodes manager: the nodes it discovers get the class too.
        shared = self.connection_kwargs
        shared["connection_class"] = TORN_SAFE[shared.get("connection_class", Connection)]
        for node in self.startup_nodes:
            node.connection_class = shared["connection_class"]

    async def initialize(self, *args: Any, **kwargs: Any) -> RedisCluster:
        try:
            return await super().initialize(*args, **kwargs)
        except RedisClusterException as error:
            cause = error.__cause__
            if isinstance(cause, AuthenticationError | ResponseError | RedisClusterException):
                raise cause from error
            raise RedisConnectionError(str(error)) from error


class _FollowingPool(SentinelConnectionPool):
    """A pool that learns of a new master as soon as a failover has promoted it.

    redis-py asks the Sentinels with ``SENTINEL MASTERS``, which names the old master until the
    failover has ended (measured: over a second after the promotion, while the old master
    still takes writes that are then lost). ``SENTINEL GET-MASTER-ADDR-BY-NAME`` names the
    promoted replica from the moment the Sentinel has seen it take the role.
    """

    async def get_master_address(self) -> tuple[str, int]:
        address = await _named_master(self.sentinel_manager, self.service_name)
        if address is None:  # no Sentinel answered: redis-py's own search raises the error
            return await super().get_master_address()  # type: ignore[no-untyped-call,no-any-return]
        if self.master_address != address:
            if self.master_address is not None:
                _next_epoch(self)
            self.master_address = address
            # Busy connections too: one left to the old master would be handed out again when
            # released, and commands of one operation would be split between two masters (the
            # likely path of a job a CI run never sent: claimed on the new master, its body
            # read on the old one, found missing and dropped). Their commands fail as
            # connection errors and are retried on the new master.
            await self.disconnect(inuse_connections=True)
        return address


async def _named_master(sentinels: Sentinel, name: str) -> tuple[str, int] | None:
    for node in sentinels.sentinels:
        try:
            reply = await node.sentinel_get_master_addr_by_name(name)
        except (RedisConnectionError, RedisTimeoutError):
            continue
        if isinstance(reply, tuple | list) and reply:
            host = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
            return host, int(reply[1])
    return None


class _FollowingConnection(ReportsTornConnections, SentinelManagedConnection):
    """A connection to a Sentinel-managed master that reconnects to the master of *now*.

    redis-py (8.1; redis/redis-py#3874, open) reconnects a connection dropped while in use (a
    command being retried) to the address it had, bypassing the Sentinels: after a failover,
    to the old master, which goes on accepting writes until it is demoted, writes the new
    master never sees (measured: a consumer acknowledged the same entry again and again, on
    the wrong server). So each (re)connection asks the Sentinels first.
    """

    async def _connect(self) -> None:
        if self.connection_pool.is_master:
            self.host, self.port = await self.connection_pool.get_master_address()
        await super()._connect()  # type: ignore[no-untyped-call]


class _FollowingSSLConnection(_FollowingConnection, SSLConnection):
    """The same over TLS."""


class _SentinelRedis(Redis):
    """A client of a Sentinel-managed master that also closes its Sentinel connections."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        pool = self.connection_pool
        await super().aclose(close_connection_pool)
        if isinstance(pool, SentinelConnectionPool):
            await pool.sentinel_manager.aclose()


def is_cluster(client: Redis) -> bool:
    return isinstance(client, RedisCluster)


# How many times each pool (a cluster client: the client) was emptied: connection_epoch.
_EPOCHS: WeakKeyDictionary[object, int] = WeakKeyDictionary()


def _epoch_key(client: Redis) -> object:
    return client if isinstance(client, RedisCluster) else client.connection_pool


def _next_epoch(key: object) -> None:
    _EPOCHS[key] = _EPOCHS.get(key, 0) + 1


def connection_epoch(client: Redis) -> int:
    """How many times ``client``'s connections were dropped, or its Sentinel-managed pool
    moved to a new master. A loop that relies on what the server holds compares it with the
    value it saw before: when it changed, writes made meanwhile may have gone to an old
    master, which drops them once demoted, so the loop checks again what is pending."""
    return _EPOCHS.get(_epoch_key(client), 0)


async def drop_connections(client: Redis) -> None:
    """Close every pooled connection, busy ones included, so the next command connects anew.

    After a failover the old master answers ``READONLY`` on connections made before it:
    a Sentinel-managed pool then asks the Sentinels for the new master, a cluster client
    reloads its slot map, and a plain client resolves its host name again (managed Redis
    services move the name to the new primary). Each call moves :func:`connection_epoch` on.
    """
    _next_epoch(_epoch_key(client))
    if isinstance(client, RedisCluster):
        await client.aclose()  # marks the client for re-initialisation on its next command
        return
    await client.connection_pool.disconnect(inuse_connections=True)


async def current_master(client: Redis) -> tuple[str, int] | None:
    """The address the Sentinels give for the master now; None for other deployments."""
    pool = client.connection_pool if not isinstance(client, RedisCluster) else None
    if not isinstance(pool, SentinelConnectionPool):
        return None
    address = await pool.get_master_address()  # type: ignore[no-untyped-call]
    return str(address[0]), int(address[1])


async def ensure_access(client: Redis) -> None:
    """Raise ``ConfigError`` if the deployment answers but cannot be used as configured.

    A wrong password, an ACL, protected mode, a Sentinel or cluster node addressed as a plain
    server, or a master name no Sentinel knows are configuration problems no retry fixes, so
    they are reported at once; an unreachable Redis raises its connection error.
    """
    pool = None if isinstance(client, RedisCluster) else client.connection_pool
    try:
        if isinstance(pool, SentinelConnectionPool):
            await _check_sentinels(pool)
        await client.ping()
        if pool is not None and not isinstance(pool, SentinelConnectionPool):
            await _check_not_special(client)
    except (AuthenticationError, ResponseError) as error:
        raise ConfigError(f"Redis refused the connection: {error}") from error
    except RedisClusterException as error:
        raise ConfigError(
            "VIGIL_REDIS_URL names a Redis Cluster, but cluster mode is not enabled on its "
            "nodes: use redis:// for one server"
        ) from error


async def _check_not_special(client: Redis) -> None:
    """A ``redis://`` URL must name a data server, not a Sentinel or a cluster node."""
    try:
        info = await client.info("server")
    except ResponseError:  # INFO refused by an ACL: nothing more to learn
        return
    mode = str(info.get("redis_mode", ""))
    if mode == "sentinel":
        raise ConfigError(
            "VIGIL_REDIS_URL points at a Sentinel, not at a Redis server: "
            "use redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME"
        )
    if mode == "cluster":
        raise ConfigError(
            "VIGIL_REDIS_URL points at a Redis Cluster node: "
            "use redis+cluster://HOST:PORT[,HOST:PORT...]"
        )


async def _check_sentinels(pool: SentinelConnectionPool) -> None:
    """The master name must be known to the Sentinels that answer."""
    sentinels: Sentinel = pool.sentinel_manager
    answered = False
    for node in sentinels.sentinels:
        address = node.connection_pool.connection_kwargs
        where = f"{address.get('host')}:{address.get('port')}"
        try:
            masters = await node.sentinel_masters()
        except AuthenticationError as error:
            raise ConfigError(
                f"the Sentinel at {where} refused the connection: {error} "
                "(its own password goes in ?sentinel_password=...)"
            ) from error
        except (RedisConnectionError, RedisTimeoutError):
            continue
        except ResponseError as error:
            if "NOAUTH" in str(error):
                raise ConfigError(
                    f"the Sentinel at {where} requires a password: add ?sentinel_password=..."
                ) from error
            raise ConfigError(f"VIGIL_REDIS_URL: {where} is not a Sentinel ({error})") from error
        answered = True
        if pool.service_name in masters:
            return
    if answered:
        raise ConfigError(
            f"VIGIL_REDIS_URL: no Sentinel monitors a master named {pool.service_name!r}"
        )
    raise MasterNotFoundError(f"no Sentinel answered for {pool.service_name!r}")
