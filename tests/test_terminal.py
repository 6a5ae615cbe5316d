"""``vigil up`` on a real pseudo-terminal: alert blocks, one status line, failures summarised;
and the same run without a terminal, whose JSON logs keep every failure."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import signal
import struct
import termios
import threading
from pathlib import Path

import orjson
from redis.asyncio import Redis

from services.poller.state import StateStore
from services.runner import DEFAULTS_DIR
from shared.embedded_redis import free_port
from tests.helpers import wait_for
from tests.processes import VIGIL, clean_env

DEAD = ("dead-a", "dead-b", "dead-c")
FAILURES = 3  # each unreachable source fails at least this often before the run ends
CYPRUS = "ALERT  Turkey deploys armed drones to northern Cyprus"  # the sample's last alert


def _environment(tmp_path: Path, redis_url: str) -> dict[str, str]:
    """The bundled offline sample plus three sources that nothing answers."""
    closed = free_port()
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n"
        f"  - {{id: sample, url: 'file://{DEFAULTS_DIR / 'sample-feed.xml'}', interval: 60}}\n"
        + "".join(f"  - {{id: {s}, url: 'http://127.0.0.1:{closed}/{s}'}}\n" for s in DEAD)
    )
    # Retries come quickly, so that each source fails several times within the test.
    return clean_env(tmp_path, VIGIL_SOURCES_FILE=str(sources), VIGIL_REDIS_URL=redis_url,
                     VIGIL_POLLER__RETRY_BASE_SECONDS="0.2", COLUMNS="160")  # fmt: skip


async def _failed_often(redis: Redis) -> bool:
    states = await StateStore(redis).many(list(DEAD))
    return all(state.consecutive_failures >= FAILURES for state in states)


async def _failures(redis: Redis) -> dict[str, int]:
    states = await StateStore(redis).many(list(DEAD))
    return {s: st.consecutive_failures for s, st in zip(DEAD, states, strict=True)}


class Terminal:
    """A pseudo-terminal of 160 columns whose output a thread collects."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        self.chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the other side closed
                return
            if not data:
                return
            self.chunks.append(data)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")


async def test_on_a_terminal_alerts_are_blocks_under_a_status_line_and_failures_summarised(
    tmp_path: Path, redis: Redis, redis_url: str
) -> None:
    screen = Terminal()
    process = await asyncio.create_subprocess_exec(
        *VIGIL, "up", env=_environment(tmp_path, redis_url), stdin=screen.slave,
        stdout=screen.slave, stderr=screen.slave, start_new_session=True,
    )  # fmt: skip
    os.close(screen.slave)
    screen._reader.start()
    try:
        await wait_for(lambda: CYPRUS in screen.text, timeout=60, message="the sample's alerts")
        await wait_for(lambda: _failed_often(redis), timeout=45, message="repeated failures")
        await wait_for(lambda: "1 ok · 3 failing" in screen.text, timeout=10,
                       message="the status line")  # fmt: skip
    finally:
        process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), timeout=30)
    await asyncio.to_thread(screen._reader.join, 5)
    text = screen.text
    assert code == 0, text[-2000:]
    # The alert blocks, readable, and the status line redrawn in place at the bottom.
    assert "\r\x1b[2K● sources 1 ok · 3 failing │ 12 articles · " in text
    assert "alerts · " in text
    assert "deliveries │ console http://127.0.0.1:" in text
    # Each source's failures: named once, then only counted, however often they repeat.
    for source in DEAD:
        assert text.count(source) == 1, source
    assert "failing (network_error): " in text
    assert "poll.failed" not in text
    assert "notifier.delivered" not in text  # counted in the status line instead
    assert "Traceback" not in text
    assert min((await _failures(redis)).values()) >= FAILURES


async def test_without_a_terminal_the_json_logs_keep_every_failure(
    tmp_path: Path, redis: Redis, redis_url: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        *VIGIL, "up", env=_environment(tmp_path, redis_url),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await wait_for(lambda: _failed_often(redis), timeout=45, message="repeated failures")
    finally:
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, err.decode()[-2000:]
    events = [orjson.loads(line) for line in err.splitlines() if line.startswith(b"{")]
    failures = await _failures(redis)
    for source in DEAD:
        logged = [e for e in events if e["event"] == "poll.failed" and e["source"] == source]
        assert len(logged) == failures[source] >= FAILURES, source
    assert any(e["event"] == "notifier.delivered" for e in events)
    assert b"ALERT  " in out
    assert b"\x1b[" not in out + err  # no terminal drawing in a pipe


def _own_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is the pty on stdin, as a
    shell gives the programs it runs."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def test_closing_its_terminal_window_stops_vigil_up(
    tmp_path: Path, redis: Redis, redis_url: str
) -> None:
    """The window ``vigil up`` runs in is closed: the kernel hangs up the terminal (SIGHUP), and
    Vigil stops as any program does (exit code 0), instead of taking the SIGHUP for a lexicon
    reload and running on headless with its ports taken."""
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    process = await asyncio.create_subprocess_exec(
        *VIGIL, "up", env=_environment(tmp_path, redis_url), stdin=slave, stdout=slave,
        stderr=slave, preexec_fn=_own_terminal,
    )  # fmt: skip
    os.close(slave)
    shown = bytearray()

    def screen() -> str:
        with contextlib.suppress(BlockingIOError):
            shown.extend(os.read(master, 65536))
        return shown.decode(errors="replace")

    try:
        await wait_for(lambda: CYPRUS in screen(), timeout=60, message="the sample's alerts")
        os.close(master)  # the window closes
        code = await asyncio.wait_for(process.wait(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0
