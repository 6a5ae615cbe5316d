"""Refusing webhook targets on private, loopback and link-local addresses (SSRF guard).

The URL is checked when a subscription is saved and again at connection time: the resolver
below filters every address DNS returns, so a name that later resolves to 127.0.0.1 (DNS
rebinding) is still refused.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver


class TargetRefusedError(Exception):
    """A webhook target that points into a private network."""


def is_public_address(address: str) -> bool:
    """Whether an IP address is globally routable (not private, loopback, link-local, ...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse a URL whose host is a literal private address or a local name."""
    host = urlsplit(url).hostname or ""
    if allow_private:
        return
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise TargetRefusedError(f"{host} is a local name")
    try:
        public = is_public_address(host)
    except ValueError:
        return  # a name: checked again when it resolves
    if not public:
        raise TargetRefusedError(f"{host} is a private, loopback or link-local address")


class PublicOnlyResolver(AbstractResolver):
    """DNS resolution that drops non-public addresses and fails when none is left."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        check_target(f"http://{host}/", allow_private=False)
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
