"""The embedded redis-server's ports: never ones the kernel may lend to outgoing connections."""

from __future__ import annotations

import socket
from pathlib import Path

from shared.embedded_redis import EmbeddedRedis, free_port

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def test_free_ports_lie_below_the_ephemeral_range_and_are_not_repeated() -> None:
    # A port from the ephemeral range can become the local end of any outgoing connection
    # before the server binds it: CI once failed on exactly that ("Address already in use").
    low = int(EPHEMERAL_RANGE.read_text().split()[0])
    ports = [free_port() for _ in range(300)]
    assert all(1024 <= port < low for port in ports), ports
    assert len(set(ports)) == len(ports)


def test_a_free_port_is_one_a_server_can_bind(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path, persist=False) as server, socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) == 0
