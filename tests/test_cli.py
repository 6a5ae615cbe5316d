"""The ``vigil`` command as a user meets it: real processes, real Redis, clear errors."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
from pathlib import Path

import feedparser
import orjson
import pytest
from redis import Redis as SyncRedis

from services.runner import DEFAULT_SOURCES
from shared.embedded_redis import EmbeddedRedis
from tests.helpers import wait_for
from tests.processes import VIGIL, clean_env, run_vigil


def test_classify_reads_and_writes_json_lines(tmp_path: Path) -> None:
    lines = [
        {"id": "1", "title": "Turkey sends troops to Libya",
         "text": "Turkish troops arrived in Tripoli to train Libyan government forces, "
                 "Turkey's defence ministry said."},
        {"id": "2", "title": "Galatasaray win the derby", "text": "A football match in Istanbul."},
    ]  # fmt: skip
    result = run_vigil(["classify"], clean_env(tmp_path),
                       "\n".join(orjson.dumps(x).decode() for x in lines))  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["1", "2"]
    assert out[0]["flagged"] is True
    assert out[0]["theaters"] == ["libya"]
    assert out[1]["flagged"] is False
    assert set(out[0]) == {"id", "flagged", "score", "theaters", "stances", "claims", "evidence",
                           "language"}  # fmt: skip


def test_classify_reports_a_bad_line_and_keeps_going(tmp_path: Path) -> None:
    stdin = '{"id": "1", "title": "x"}\nnot json\n{"id": "3", "title": "t", "text": "b"}\n'
    result = run_vigil(["classify", "-"], clean_env(tmp_path), stdin)
    assert result.returncode == 2
    errors = result.stderr.strip().splitlines()
    assert errors[0] == "vigil: error: line 1: text: Field required"
    assert errors[1].startswith("vigil: error: line 2: ")
    assert "Traceback" not in result.stderr
    assert [orjson.loads(line)["id"] for line in result.stdout.splitlines()] == ["3"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"VIGIL_HTTP__PORT": "eighty"}, "VIGIL_HTTP__PORT"),
        ({"VIGIL_REDIS_URL": "http://localhost"}, "VIGIL_REDIS_URL"),
        ({"VIGIL_LOG__LEVEL": "loud"}, "VIGIL_LOG__LEVEL"),
        # JSON-valued settings: pydantic-settings fails before validation, naming no variable
        (
            {"VIGIL_NOTIFIER__RETRY_SCHEDULE_SECONDS": "notjson"},
            "VIGIL_NOTIFIER__RETRY_SCHEDULE_SECONDS: not valid JSON",
        ),
        ({"VIGIL_BUS": '{"concurrency": '}, "VIGIL_BUS: not valid JSON"),
        # A name no section has (here one that was removed) is refused, not ignored.
        ({"VIGIL_NOTIFIER__CIRCUIT_FAILURES": "5"}, "VIGIL_NOTIFIER__CIRCUIT_FAILURES"),
        ({"VIGIL_SOURCES_FILE": "/nonexistent/sources.yaml"}, "/nonexistent/sources.yaml"),
        (
            {"VIGIL_SMTP__HOST": "mail.example", "VIGIL_SMTP__PASSWORD": "hunter2-pw"},
            "VIGIL_SMTP__SECURITY to starttls or tls",
        ),
    ],
)
def test_bad_configuration_is_one_clear_line(
    tmp_path: Path, extra: dict[str, str], expected: str
) -> None:
    result = run_vigil(["up"], clean_env(tmp_path, **extra))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("vigil: error:")]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert "hunter2-pw" not in result.stderr


def test_malformed_sources_yaml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "sources.yaml"
    bad.write_text("sources:\n  - id: a\n    url: [unclosed\n")
    result = run_vigil(["up"], clean_env(tmp_path, VIGIL_SOURCES_FILE=str(bad)))
    assert result.returncode == 2
    assert "sources.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def _sample_titles() -> set[str]:
    sample = DEFAULT_SOURCES.parent / "sample-feed.xml"
    return {entry.title for entry in feedparser.parse(sample.read_bytes()).entries}


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def _start_up(tmp_path: Path) -> tuple[asyncio.subprocess.Process, list[str], list[str]]:
    process = await asyncio.create_subprocess_exec(
        *VIGIL, "up", env=clean_env(tmp_path, VIGIL_LOG__FORMAT="json"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out: list[str] = []
    err: list[str] = []

    async def pump(stream: asyncio.StreamReader | None, into: list[str]) -> None:
        assert stream is not None
        async for line in stream:
            into.append(line.decode())

    asyncio.get_running_loop().create_task(pump(process.stdout, out))
    asyncio.get_running_loop().create_task(pump(process.stderr, err))
    return process, out, err


def _redis_port(err: list[str]) -> int | None:
    for line in err:
        match = re.search(r"embedded Redis at redis://127\.0\.0\.1:(\d+)", line)
        if match:
            return int(match.group(1))
    return None


async def test_up_prints_alerts_offline_and_stops_cleanly(tmp_path: Path) -> None:
    process, out, err = await _start_up(tmp_path)
    try:
        port = await wait_for(lambda: _redis_port(err), timeout=20, message="embedded Redis")
        titles = _sample_titles()
        await wait_for(lambda: any(t in "".join(out) for t in titles), timeout=45,
                       message="an alert from the offline sample feed")  # fmt: skip
    finally:
        process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), timeout=30)
    assert code == 0, "".join(err[-20:])
    assert not _port_open(port), "embedded redis-server left running"
    assert (tmp_path / "data" / "redis" / "appendonlydir").is_dir()  # persisted under data dir


async def test_up_killed_leaves_no_orphan_redis(tmp_path: Path) -> None:
    process, _, err = await _start_up(tmp_path)
    try:
        port = await wait_for(lambda: _redis_port(err), timeout=20, message="embedded Redis")
        assert _port_open(port)
    finally:
        process.kill()
        await process.wait()
    await wait_for(lambda: not _port_open(port), timeout=10, message="redis-server to exit")


@pytest.mark.parametrize("command", [["poller"], ["status"]])
def test_redis_refusing_the_client_is_one_clear_line(tmp_path: Path, command: list[str]) -> None:
    """A password Redis requires (or protected mode) is a config error: fail fast, no traceback."""
    with EmbeddedRedis(tmp_path / "locked", persist=False) as server:
        with SyncRedis.from_url(server.url) as admin:
            admin.config_set("requirepass", "s3cret")
        result = run_vigil(command, clean_env(tmp_path, VIGIL_REDIS_URL=server.url))
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("vigil: error:")]
    assert len(lines) == 1, result.stderr
    assert "Redis refused the connection" in lines[0]
    assert "Traceback" not in result.stderr
