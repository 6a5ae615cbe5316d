"""Shared fixtures: a real redis-server started by the test session on a free port, and the
bundled detector."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.classifier.detector import Detector
from services.classifier.lexicon import load_lexicon
from services.settings import Settings
from shared.connection import connect
from shared.embedded_redis import EmbeddedRedis, free_port
from tests.helpers import posting_to
from tests.receivers import ChatEndpoint, Receiver, served
from tests.topologies import ClusterDeployment, SentinelDeployment

PASSWORD = "pass word/1"  # a space and a slash: the URLs must quote it


@pytest.fixture(scope="session")
def detector() -> Detector:
    """The detector with the bundled lexicon, compiled once for the session."""
    return Detector(load_lexicon())


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A private redis-server for the whole session (never a shared or system one)."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and its key), made with openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="session")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelDeployment]:
    """A master, a replica and a Sentinel, each requiring a password, for the session.

    Tests that fail over start their own deployment: this one keeps its first master.
    """
    deployment = SentinelDeployment(
        tmp_path_factory.mktemp("sentinel"), password=PASSWORD, sentinel_password=PASSWORD
    )
    deployment.start()
    yield deployment
    deployment.stop()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterDeployment]:
    """Three password-protected cluster masters for the session."""
    deployment = ClusterDeployment(tmp_path_factory.mktemp("cluster"), password=PASSWORD)
    deployment.start()
    yield deployment
    deployment.stop()


@pytest.fixture
async def cluster_client(cluster: ClusterDeployment) -> AsyncIterator[Redis]:
    """A client of the session's cluster, emptied."""
    cluster.flush()
    client = connect(cluster.url)
    yield client
    await client.aclose()


@pytest.fixture(params=["server", "sentinel", "cluster"])
async def deployment(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, Redis]]:
    """Each kind of deployment ``VIGIL_REDIS_URL`` can name, emptied: its URL and a client."""
    if request.param == "server":
        url = request.getfixturevalue("redis_url")
    else:
        url = request.getfixturevalue(str(request.param)).url
    client = connect(url)
    if request.param == "cluster":
        request.getfixturevalue("cluster").flush()
    else:
        await client.flushall()
    yield url, client
    await client.aclose()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client on an empty database."""
    client = connect(redis_url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    """Settings for one test: its Redis, a free HTTP port, loopback webhooks allowed."""
    return Settings(
        redis_url=redis_url,
        data_dir=tmp_path / "data",
        allow_private_targets=True,
        http={"host": "127.0.0.1", "port": free_port()},
        bus={"claim_idle_ms": 500, "claim_interval_seconds": 0.2, "block_ms": 200},
        _env_file=None,
    )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on loopback (``tests/receivers.py``)."""
    async with served(Receiver()) as hook:
        yield hook


@pytest.fixture
async def endpoint() -> AsyncIterator[ChatEndpoint]:
    """A chat endpoint on loopback; its ``url`` is the Apprise ``json://`` URL."""
    chat = ChatEndpoint()
    async with posting_to(chat.handle) as url:
        chat.url = url.replace("http://", "json://")
        yield chat
