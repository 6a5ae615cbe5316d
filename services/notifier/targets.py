"""The private-address guard (SSRF) every channel's target passes, at save time and send time.

A subscriber names a host (a webhook URL, the host inside an Apprise URL); the notifier must
not be made to connect into its own network. At save time the host is checked as written:
local names, private literals in every spelling (``2130706433``, ``127.1``, ``0x7f000001``,
octal, IPv4 inside NAT64, 6to4, Teredo or IPv4-mapped IPv6) are refused. At send time the
name is resolved and every address checked again, so a name that later resolves to 127.0.0.1
(DNS rebinding) is still refused: webhooks through the resolver below, chat before Apprise
connects.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from ipaddress import IPv4Address, IPv6Address

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver


class TargetRefusedError(Exception):
    """A target that points into a private network, or whose destination cannot be checked."""


_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
# Labels inet_aton reads as numbers (decimal, octal with a leading 0, hex with 0x).
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: IPv4 in the last 32 bits
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: local-use translation
_SIIT = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765: IPv4-translated
_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible (and ::, ::1)


def _embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64, ...), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _SIIT or ip in _COMPATIBLE:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(address: str) -> bool:
    """Whether an IP address is globally routable (not private, loopback, link-local, ...),
    judging an IPv6 address that carries an IPv4 one by the IPv4 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, IPv6Address):
        if ip in _NAT64_LOCAL:
            return False
        ip = _embedded_ipv4(ip) or ip
    return ip.is_global and not ip.is_multicast


def _ambiguous_ipv4(host: str) -> bool:
    """A host made of numeric labels that is not a plain dotted quad: ``2130706433``,
    ``127.1``, ``0x7f000001``, ``0177.0.0.1``. Resolvers read these as addresses, people
    don't; none is a real host name, so they are refused whatever address they mean."""
    labels = host.split(".")
    if not all(_NUMERIC_LABEL.match(label) for label in labels):
        return False
    try:
        return str(IPv4Address(host)) != host
    except ValueError:
        return True


def check_host(host: str, *, allow_private: bool) -> None:
    """Refuse a host that is a local name or a non-public address in any spelling."""
    if allow_private:
        return
    name = host.lower().rstrip(".").strip("[]")
    if not name:
        raise TargetRefusedError("has no host")
    if name == "localhost" or name.endswith(_LOCAL_SUFFIXES):
        raise TargetRefusedError(f"{name} is a local name")
    if _ambiguous_ipv4(name):
        raise TargetRefusedError(f"{name} is an ambiguous form of an IPv4 address")
    try:
        public = is_public_address(name)
    except ValueError:
        return  # a name: its addresses are checked when it is resolved
    if not public:
        raise TargetRefusedError(f"{name} is a private, loopback or link-local address")


async def check_resolved(host: str, port: int | None, *, allow_private: bool) -> None:
    """Resolve ``host`` and refuse it unless every address is public (send-time check).

    A name that does not resolve raises ``OSError``: a transient failure, not a refusal.
    """
    if allow_private:
        return
    check_host(host, allow_private=False)
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)
    private = [info[4][0] for info in infos if not is_public_address(str(info[4][0]))]
    if private:
        raise TargetRefusedError(f"{host} resolves to a non-public address ({private[0]})")


class PublicOnlyResolver(AbstractResolver):
    """DNS resolution that drops non-public addresses and fails when none is left."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        check_host(host, allow_private=False)
        results = [
            r for r in await self._inner.resolve(host, port, family) if is_public_address(r["host"])
        ]
        if not results:
            raise TargetRefusedError(f"{host} resolves only to private addresses")
        return results

    async def close(self) -> None:
        await self._inner.close()


def resolver_for(allow_private: bool) -> AbstractResolver:
    """The resolver webhook sessions use: the guard unless private targets are allowed."""
    return DefaultResolver() if allow_private else PublicOnlyResolver()
