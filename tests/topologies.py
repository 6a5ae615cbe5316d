"""Redis deployments the tests start themselves from the same ``redis-server`` binary.

- :class:`SentinelDeployment`: a master, a replica and a Sentinel watching them, with a
  planned failover (``SENTINEL FAILOVER``) and a crash (the master SIGKILLed);
- :class:`ClusterDeployment`: three masters sharing the 16384 slots.

All bind to loopback on free ports and live under a temporary folder.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from urllib.parse import quote

import redis

from shared.embedded_redis import EmbeddedRedis, free_port

MASTER_NAME = "vigil"
SLOTS = 16384
# A master waits 5 s for more replicas before a full sync by default: not in tests.
NO_SYNC_DELAY = ["--repl-diskless-sync-delay", "0"]


def _until(probe: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _auth(password: str | None) -> list[str]:
    return ["--requirepass", password, "--masterauth", password] if password else []


def _tls(port: int, cert: Path, key: str | Path, *more: str) -> list[str]:
    """TLS on ``port`` beside the plain port (which the tests' own checks use)."""
    return ["--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
            "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
            "--tls-replication", "yes", *more]  # fmt: skip


def _data_node(password: str | None) -> list[str]:
    return [*NO_SYNC_DELAY, *_auth(password)]


class SentinelDeployment:
    """A master, its replicas (one by default) and one Sentinel (quorum 1) on loopback.

    With ``password`` the data nodes require it; with ``sentinel_password`` the Sentinel
    requires its own; with ``tls`` (certificate, key) every node also listens with TLS, the
    URL names the TLS ports and the Sentinel speaks TLS to the data nodes.
    """

    def __init__(
        self,
        folder: Path,
        *,
        replicas: int = 1,
        down_after_ms: int = 1000,
        password: str | None = None,
        sentinel_password: str | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.folder = folder
        self.down_after_ms = down_after_ms
        self.password = password
        self.sentinel_password = sentinel_password
        self.tls = tls
        ports = [free_port() for _ in range(replicas + 2)]
        self.tls_ports = {port: free_port() for port in ports}
        master_port = ports[0]
        self.servers = {}
        for n, port in enumerate(ports[:-1]):
            follows = ["--replicaof", "127.0.0.1", str(self._data_port(master_port))] if n else []
            self.servers[port] = EmbeddedRedis(
                folder / f"node{n}", port=port, persist=False,
                extra_args=[*follows, *_data_node(password), *self._tls_args(port)],
            )  # fmt: skip
        self.sentinel = EmbeddedRedis(
            folder / "sentinel",
            port=ports[-1],
            persist=False,
            config_file=folder / "sentinel" / "sentinel.conf",
            extra_args=["--sentinel", *_auth(sentinel_password)[:2], *self._tls_args(ports[-1])],
        )
        self._first_master = master_port

    def _tls_args(self, port: int) -> list[str]:
        return _tls(self.tls_ports[port], *self.tls) if self.tls else []

    def _data_port(self, port: int) -> int:
        """The port a node is known by to the others and the Sentinel (TLS or not)."""
        return self.tls_ports[port] if self.tls else port

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        query = (
            f"?sentinel_password={quote(self.sentinel_password, safe='')}"
            if self.sentinel_password
            else ""
        )
        if self.tls:
            query = (query + "&" if query else "?") + f"ssl_ca_certs={self.tls[0]}"
            port = self.tls_ports[self.sentinel.port]
            return f"rediss+sentinel://{auth}127.0.0.1:{port}/{MASTER_NAME}{query}"
        return f"redis+sentinel://{auth}127.0.0.1:{self.sentinel.port}/{MASTER_NAME}{query}"

    def _sentinel_admin(self) -> redis.Redis:
        return redis.Redis(port=self.sentinel.port, password=self.sentinel_password,
                           decode_responses=True, socket_timeout=5)  # fmt: skip

    def client(self, port: int) -> redis.Redis:
        """A synchronous client of one data node."""
        return redis.Redis(port=port, password=self.password, decode_responses=True,
                           socket_timeout=5)  # fmt: skip

    def start(self) -> None:
        for server in self.servers.values():
            server.start()
        for replica in (p for p in self.servers if p != self._first_master):
            _until(partial(self._link_up, replica), 10, "the replicas to sync")
        conf = self.sentinel.config_file
        assert conf is not None
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self._data_port(self._first_master)} 1\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}\n"
            f"sentinel failover-timeout {MASTER_NAME} 10000\n"
            + (f'sentinel auth-pass {MASTER_NAME} "{self.password}"\n' if self.password else "")
        )
        self.sentinel.start()
        _until(self._sentinel_sees_replica, 15, "the Sentinel to find the replica")

    def stop(self) -> None:
        self.sentinel.stop()
        for server in self.servers.values():
            server.stop()

    def master_port(self) -> int:
        """The (plain) port of the master the Sentinel names."""
        with self._sentinel_admin() as admin:
            named = int(admin.sentinel_get_master_addr_by_name(MASTER_NAME)[1])
        return next(p for p in self.servers if self._data_port(p) == named)

    def failover(self, timeout: float = 30) -> int:
        """A planned failover (``SENTINEL FAILOVER``); returns the new master's port."""
        old = self.master_port()
        with self._sentinel_admin() as admin:
            admin.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
        return self._await_new_master(old, timeout)

    def kill_master(self, timeout: float = 30) -> int:
        """SIGKILL the master; returns the port of the replica the Sentinel promotes."""
        old = self.master_port()
        process = self.servers[old].process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait()
        return self._await_new_master(old, timeout)

    def _await_new_master(self, old: int, timeout: float) -> int:
        _until(lambda: self.master_port() != old, timeout, "the Sentinel to switch masters")
        new = self.master_port()
        _until(lambda: self._role(new) == "master", timeout, "the new master to take writes")
        return new

    def _role(self, port: int) -> str:
        with self.client(port) as client:
            return str(client.info("replication")["role"])

    def _link_up(self, replica: int) -> bool:
        with self.client(replica) as client:
            return bool(client.info("replication").get("master_link_status") == "up")

    def _sentinel_sees_replica(self) -> bool:
        with self._sentinel_admin() as admin:
            replicas = admin.sentinel_slaves(MASTER_NAME)
        # A replica the Sentinel could promote: seen up, with its link to the master up.
        return any(not r["is_sdown"] and r.get("master-link-status") == "ok" for r in replicas)


class ClusterDeployment:
    """Three cluster-enabled masters, slots split evenly, joined with ``CLUSTER MEET``; the
    first master also has a replica (so ``WAIT`` succeeds on its slots only)."""

    def __init__(
        self,
        folder: Path,
        *,
        size: int = 3,
        password: str | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.password = password
        self.tls = tls
        self.tls_ports: dict[int, int] = {}
        self.bus_ports: dict[int, int] = {}
        self.nodes = [self._node(folder / f"node{index}") for index in range(size)]
        self.replica = self._node(folder / "replica")

    def _node(self, node_dir: Path) -> EmbeddedRedis:
        bus_port, tls_port = free_port(), free_port()
        node = EmbeddedRedis(
            node_dir,
            persist=False,
            extra_args=[
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(node_dir / "nodes.conf"),
                "--cluster-port", str(bus_port),
                "--cluster-node-timeout", "2000",
                *_data_node(self.password),
                *(_tls(tls_port, *self.tls, "--tls-cluster", "yes") if self.tls else []),
            ],
        )  # fmt: skip
        self.bus_ports[node.port] = bus_port
        self.tls_ports[node.port] = tls_port
        return node

    @property
    def url(self) -> str:
        # Two of the three nodes: the client learns the third from the cluster itself.
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        if self.tls:
            hosts = ",".join(f"127.0.0.1:{self.tls_ports[n.port]}" for n in self.nodes[:2])
            return f"rediss+cluster://{auth}{hosts}?ssl_ca_certs={self.tls[0]}"
        return f"redis+cluster://{auth}" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:2])

    def client(self, node: EmbeddedRedis) -> redis.Redis:
        """A synchronous client of one node."""
        return redis.Redis(port=node.port, password=self.password, decode_responses=True,
                           socket_timeout=5)  # fmt: skip

    def start(self) -> None:
        for node in [*self.nodes, self.replica]:
            node.start()
        share = SLOTS // len(self.nodes)
        for index, node in enumerate(self.nodes):
            last = SLOTS - 1 if index == len(self.nodes) - 1 else (index + 1) * share - 1
            with self.client(node) as admin:
                admin.execute_command("CLUSTER", "ADDSLOTSRANGE", index * share, last)
        with self.client(self.nodes[0]) as admin:
            for node in [*self.nodes[1:], self.replica]:
                admin.execute_command(
                    "CLUSTER", "MEET", "127.0.0.1", node.port, self.bus_ports[node.port]
                )
            first = admin.execute_command("CLUSTER", "MYID")
        _until(lambda: self._knows(self.replica, first), 20, "the replica to meet the first master")
        with self.client(self.replica) as admin:
            admin.execute_command("CLUSTER", "REPLICATE", first)
        _until(self._ok, 20, "the cluster to agree on its slots")

    def stop(self) -> None:
        for node in [*self.nodes, self.replica]:
            node.stop()

    def _knows(self, node: EmbeddedRedis, node_id: str) -> bool:
        with self.client(node) as admin:
            return node_id in str(admin.execute_command("CLUSTER", "NODES"))

    def flush(self) -> None:
        """Empty every master (each test starts from nothing)."""
        for node in self.nodes:
            with self.client(node) as admin:
                admin.flushall()

    def _ok(self) -> bool:
        for node in [*self.nodes, self.replica]:
            with self.client(node) as admin:
                info = str(admin.execute_command("CLUSTER", "INFO"))
                if "cluster_state:ok" not in info or \
                        f"cluster_known_nodes:{len(self.nodes) + 1}" not in info:  # fmt: skip
                    return False
        with self.client(self.replica) as admin:
            return bool(admin.info("replication").get("master_link_status") == "up")
