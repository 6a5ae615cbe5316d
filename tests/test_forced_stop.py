"""A process whose event loop is stuck still ends after a stop signal, and stops its Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers import wait_for

# A service whose only component blocks the event loop for good once asked to stop, in a
# process that owns an embedded Redis, as `vigil up` does.
STUCK_SERVICE = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from shared import signals
    from shared.connection import connect
    from shared.embedded_redis import EmbeddedRedis, free_port
    from shared.runtime import serve
    from shared.settings import HttpSettings

    class Stuck:
        name = "stuck"
        def is_ready(self) -> bool:
            return True
        async def run(self, stop: asyncio.Event) -> None:
            print("running", flush=True)  # serve() has installed its signal handlers
            await stop.wait()
            while True:  # never yields again: the dispatcher hang of issue 13
                time.sleep(0.05)

    signals.hold()
    with EmbeddedRedis(Path(sys.argv[1]), persist=False) as server:
        signals.on_forced_exit(server.stop)
        print(server.process.pid, flush=True)
        asyncio.run(serve([Stuck()], redis=connect(server.url),
                          http=HttpSettings(port=free_port()), grace_seconds=1.0))
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_stuck_process_exits_after_the_grace_and_stops_its_redis(
    tmp_path: Path, signum: signal.Signals
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", STUCK_SERVICE, str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    redis_pid = int(await asyncio.wait_for(process.stdout.readline(), timeout=20))
    assert _alive(redis_pid)
    line = b""
    while line != b"running\n":  # log lines come first
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        assert line, "the process ended before its component started"
    started = time.monotonic()
    process.send_signal(signum)
    code = await asyncio.wait_for(process.wait(), timeout=15)
    elapsed = time.monotonic() - started
    stderr = (await process.stderr.read()).decode()
    assert code == 1, stderr
    assert 1.0 <= elapsed < 10, elapsed  # the grace plus the closing margin, not forever
    assert "runtime.forced_exit" in stderr
    await wait_for(lambda: not _alive(redis_pid), message="embedded redis stopped")
