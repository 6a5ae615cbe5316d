"""``VIGIL_REDIS_URL``: which Redis deployment to use, parsed once and checked at start-up.

Forms (the design's settings table):

- ``redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]``, ``rediss://`` (TLS), ``unix:///PATH?db=N``:
  one server, read by redis-py's own URL parser;
- ``redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT…]/MASTER_NAME[/DB]``: the master
  that these Sentinels name; ``rediss+sentinel://`` talks TLS to the master and the Sentinels;
- ``redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT…]``: a Redis Cluster, found from
  any of these nodes; ``rediss+cluster://`` for TLS.

The user and password are the data nodes'. Sentinels that require a password of their own get
it from ``?sentinel_password=…`` (and ``sentinel_username``). TLS options go in the query
(``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``,
``ssl_check_hostname``). Nothing here logs the URL: :meth:`RedisTarget.describe` is the form
without secrets that logs and messages may show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.asyncio.connection import parse_url

Topology = Literal["standalone", "sentinel", "cluster"]

_SCHEMES: dict[str, tuple[Topology, bool]] = {
    "redis": ("standalone", False),
    "rediss": ("standalone", True),
    "unix": ("standalone", False),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
_DEFAULT_PORTS = {"sentinel": 26379, "cluster": 6379}
_TLS_OPTIONS = {"ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs"}
_FLAG_OPTIONS = {"ssl_check_hostname"}
_SENTINEL_OPTIONS = {"sentinel_username", "sentinel_password"}


class RedisUrlError(ValueError):
    """A ``VIGIL_REDIS_URL`` that names no usable deployment; the message says why."""


@dataclass(frozen=True)
class RedisTarget:
    """A parsed ``VIGIL_REDIS_URL``."""

    topology: Topology
    url: str = field(repr=False)
    tls: bool = False
    nodes: tuple[tuple[str, int], ...] = ()
    master: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: dict[str, Any] = field(default_factory=dict, repr=False)
    sentinel_options: dict[str, str] = field(default_factory=dict, repr=False)

    def describe(self) -> str:
        """The deployment in words, without credentials (for logs and error messages)."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.nodes)
        tls = " over TLS" if self.tls else ""
        if self.topology == "sentinel":
            return f"master {self.master!r} (db {self.db}) of the Sentinels {hosts}{tls}"
        if self.topology == "cluster":
            return f"the Redis Cluster of {hosts}{tls}"
        parts = urlsplit(self.url)
        where = parts.path if parts.scheme == "unix" else parts.hostname or "localhost"
        port = "" if parts.scheme == "unix" else f":{parts.port or 6379}"
        return f"{parts.scheme}://{where}{port} (db {self.db}){tls}"


def parse_redis_url(url: str) -> RedisTarget:
    """Parse one of the accepted forms; raise :class:`RedisUrlError` naming what is wrong."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in _SCHEMES:
        raise RedisUrlError(
            "must start with redis://, rediss://, unix://, redis+sentinel://, "
            "rediss+sentinel://, redis+cluster:// or rediss+cluster://"
        )
    topology, tls = _SCHEMES[scheme]
    if topology == "standalone":
        return _standalone(url, tls)
    rest, _, query = url.split("://", 1)[1].partition("?")
    authority, _, path = rest.partition("/")
    userinfo, _, hosts = authority.rpartition("@")
    username, password = _credentials(userinfo)
    nodes = _nodes(hosts, _DEFAULT_PORTS[topology])
    options, sentinel_options = _options(query, tls, topology)
    segments = [unquote(s) for s in path.split("/") if s]
    if topology == "cluster":
        if segments:
            raise RedisUrlError("a Redis Cluster has one database: leave the path out")
        return RedisTarget("cluster", url, tls, nodes, None, 0, username, password, options)
    if not segments or len(segments) > 2:
        raise RedisUrlError("name the master after the Sentinels: .../MASTER_NAME[/DB]")
    db = _db(segments[1]) if len(segments) == 2 else 0
    return RedisTarget("sentinel", url, tls, nodes, segments[0], db, username, password,
                       options, sentinel_options)  # fmt: skip


def _standalone(url: str, tls: bool) -> RedisTarget:
    try:
        parsed = parse_url(url)
    except (ValueError, TypeError) as error:
        raise RedisUrlError(str(error)) from error
    host = parsed.get("host")
    port = int(parsed.get("port") or 6379)
    nodes = ((str(host), port),) if host else ()
    return RedisTarget("standalone", url, tls, nodes, db=int(parsed.get("db") or 0))


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, has_password, password = userinfo.partition(":")
    return unquote(user) or None, unquote(password) if has_password else None


def _nodes(hosts: str, default_port: int) -> tuple[tuple[str, int], ...]:
    nodes = []
    for raw in hosts.split(","):
        item = raw.strip()
        if not item:
            raise RedisUrlError("list at least one HOST:PORT, separated by commas")
        if item.startswith("["):  # [IPv6]:port
            host, _, port = item[1:].partition("]")
            port = port.removeprefix(":")
        else:
            host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
        if not host:
            raise RedisUrlError(f"no host in {item!r}")
        try:
            number = int(port) if port else default_port
        except ValueError:
            raise RedisUrlError(f"port of {item!r} is not a number") from None
        if not 0 < number < 65536:
            raise RedisUrlError(f"port of {item!r} is out of range")
        nodes.append((host, number))
    return tuple(nodes)


def _db(text: str) -> int:
    try:
        db = int(text)
    except ValueError:
        raise RedisUrlError(f"database {text!r} is not a number") from None
    if db < 0:
        raise RedisUrlError(f"database {db} is negative")
    return db


def _options(query: str, tls: bool, topology: Topology) -> tuple[dict[str, Any], dict[str, str]]:
    options: dict[str, Any] = {}
    sentinel: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in _SENTINEL_OPTIONS and topology == "sentinel":
            sentinel[name.removeprefix("sentinel_")] = value
        elif name in _FLAG_OPTIONS and tls:
            options[name] = value.lower() in ("1", "true", "yes")
        elif name in _TLS_OPTIONS and tls:
            options[name] = value
        else:
            raise RedisUrlError(f"unknown option {name!r} for this form of URL")
    return options, sentinel
