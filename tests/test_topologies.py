"""Connecting to each deployment ``VIGIL_REDIS_URL`` can name, against real servers; a URL
that names the wrong kind of server is one clear line with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.connection import connect, ensure_access, is_cluster
from shared.embedded_redis import EmbeddedRedis, free_port
from shared.settings import ConfigError
from tests.conftest import PASSWORD
from tests.processes import clean_env, run_vigil
from tests.topologies import MASTER_NAME, ClusterDeployment, SentinelDeployment


async def test_sentinel_url_writes_to_the_master(sentinel: SentinelDeployment) -> None:
    client = connect(sentinel.url)
    try:
        await ensure_access(client)
        await client.set("topology:probe", "sentinel")
    finally:
        await client.aclose()
    with sentinel.client(sentinel.master_port()) as master:
        assert master.get("topology:probe") == "sentinel"


async def test_cluster_url_reaches_every_master(cluster: ClusterDeployment) -> None:
    client = connect(cluster.url)
    try:
        await ensure_access(client)
        assert is_cluster(client)
        keys = [f"topology:probe:{n}" for n in range(30)]  # spread over the three masters
        for key in keys:
            await client.set(key, "cluster")
        assert [await client.get(key) for key in keys] == ["cluster"] * len(keys)
    finally:
        await client.aclose()
    holders = []
    for node in cluster.nodes:
        with cluster.client(node) as admin:
            holders.append(int(admin.dbsize()))
    assert all(holders), f"keys on every master, not only the two named in the URL: {holders}"


async def test_tls_forms_of_sentinel_and_cluster(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    """``rediss+sentinel://`` (TLS to the Sentinel and the master, passwords for both) and
    ``rediss+cluster://``, with the CA named in the URL; both follow a planned failover or
    reach every master."""
    sentinel = SentinelDeployment(tmp_path / "sentinel", tls=certificate, password=PASSWORD,
                                  sentinel_password=PASSWORD)  # fmt: skip
    cluster = ClusterDeployment(tmp_path / "cluster", tls=certificate)
    sentinel.start()
    cluster.start()
    try:
        assert sentinel.url.startswith("rediss+sentinel://")
        assert cluster.url.startswith("rediss+cluster://")
        for url in (sentinel.url, cluster.url):
            client = connect(url)
            try:
                await ensure_access(client)
                for n in range(12):
                    await client.set(f"tls:{n}", url[:8])
                assert await client.get("tls:11") == url[:8]
            finally:
                await client.aclose()
        sentinel.failover()
        client = connect(sentinel.url)
        try:
            assert (await client.info("replication"))["role"] == "master"
            assert await client.get("tls:11") == "rediss+s"
        finally:
            await client.aclose()
    finally:
        sentinel.stop()
        cluster.stop()


async def test_wrong_passwords_are_configuration_errors(
    sentinel: SentinelDeployment, cluster: ClusterDeployment
) -> None:
    for url in (
        sentinel.url.replace("pass%20word", "nope"),  # the master's password
        sentinel.url.replace("sentinel_password=pass%20word", "sentinel_password=nope"),
        cluster.url.replace("pass%20word", "nope"),
    ):
        client = connect(url)
        try:
            with pytest.raises(ConfigError):
                await ensure_access(client)
        finally:
            await client.aclose()


async def test_unknown_master_name_is_a_configuration_error(sentinel: SentinelDeployment) -> None:
    client = connect(sentinel.url.replace(f"/{MASTER_NAME}?", "/elsewhere?"))
    try:
        with pytest.raises(ConfigError, match="no Sentinel monitors a master named 'elsewhere'"):
            await ensure_access(client)
    finally:
        await client.aclose()


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("vigil: error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("command", [["status"], ["classifier"]])
def test_sentinel_port_used_as_a_master_is_one_line(
    sentinel: SentinelDeployment, tmp_path: Path, command: list[str]
) -> None:
    url = f"redis://:{PASSWORD.replace(' ', '%20').replace('/', '%2F')}@127.0.0.1:"
    url += f"{sentinel.sentinel.port}/0"
    result = run_vigil(command, clean_env(tmp_path, VIGIL_REDIS_URL=url))
    assert result.returncode == 2, result.stderr
    line = _one_error_line(result.stderr)
    assert "points at a Sentinel" in line
    assert "redis+sentinel://" in line
    assert PASSWORD not in result.stderr


def test_cluster_node_used_as_one_server_is_one_line(
    cluster: ClusterDeployment, tmp_path: Path
) -> None:
    url = cluster.url.replace("redis+cluster://", "redis://").split(",")[0]
    result = run_vigil(["status"], clean_env(tmp_path, VIGIL_REDIS_URL=url))
    assert result.returncode == 2, result.stderr
    assert "points at a Redis Cluster node" in _one_error_line(result.stderr)


def test_plain_server_named_as_a_cluster_or_a_sentinel_is_one_line(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "plain", persist=False) as server:
        for url, problem in (
            (f"redis+cluster://127.0.0.1:{server.port}", "cluster mode is not enabled"),
            (f"redis+sentinel://127.0.0.1:{server.port}/m", "is not a Sentinel"),
        ):
            result = run_vigil(["status"], clean_env(tmp_path, VIGIL_REDIS_URL=url))
            assert result.returncode == 2, result.stderr
            assert problem in _one_error_line(result.stderr)


def test_no_sentinel_answering_is_one_line(tmp_path: Path) -> None:
    url = f"redis+sentinel://127.0.0.1:{free_port()}/{MASTER_NAME}"
    result = run_vigil(["status"], clean_env(tmp_path, VIGIL_REDIS_URL=url))
    assert result.returncode == 2, result.stderr
    assert "cannot reach Redis" in _one_error_line(result.stderr)
