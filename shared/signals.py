"""Stop signals: remembered during start-up, then a polite stop with a deadline.

A service process spends its first second importing and connecting. A SIGTERM in that window
(an orchestrator scaling down, a restart storm) would otherwise kill it with the default
handler. :func:`hold` installs a handler that only remembers the signal; the runtime then
starts, sees :func:`requested`, and shuts down cleanly with exit code 0.

Once running, :func:`watch` turns the first SIGTERM or SIGINT into a polite stop and arms a
watchdog thread: a process that has not finished within its deadline (a component ignoring the
stop, an event loop that never yields) runs the :func:`on_forced_exit` hooks, which stop the
embedded Redis, and exits with code 1. A second signal insists at once. The handler is a plain
Python signal handler, not the event loop's, because it must work while the loop is blocked.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
FORCED_EXIT_CODE = 1
_received: list[int] = []
_forced_exit_hooks: list[Callable[[], None]] = []


def _remember(signum: int, _: FrameType | None) -> None:
    _received.append(signum)


def hold() -> None:
    """Remember SIGTERM and SIGINT from now on instead of dying of them."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _remember)


def requested() -> bool:
    """Whether a stop signal arrived while held."""
    return bool(_received)


def on_forced_exit(hook: Callable[[], None]) -> None:
    """Run ``hook`` (last registered first) before the watchdog ends a stuck process."""
    _forced_exit_hooks.append(hook)


def _report(event: str, **fields: str) -> None:
    # Plain stderr, not structlog: the event loop (and whatever holds its locks) may be stuck.
    # A closed terminal (EIO) or pipe must not keep the process from ending.
    with contextlib.suppress(OSError):
        sys.stderr.write(json.dumps({"event": event, "level": "error", **fields}) + "\n")
        sys.stderr.flush()


def _force_exit(reason: str) -> None:
    _report("runtime.forced_exit", reason=reason)
    for hook in reversed(_forced_exit_hooks):
        try:
            hook()
        except Exception as error:  # noqa: BLE001 - the process ends anyway: report, go on
            _report("runtime.forced_exit_hook_failed", error=str(error))
    os._exit(FORCED_EXIT_CODE)


class Watch:
    """The stop signals of a running process (see :func:`watch`)."""

    def __init__(self, on_stop: Callable[[signal.Signals], object], deadline: float) -> None:
        self._on_stop = on_stop
        self._deadline = deadline
        self._stopping = threading.Event()
        self._finished = threading.Event()

    def _handle(self, signum: int, _: FrameType | None) -> None:
        if self._stopping.is_set():
            _force_exit(f"second {signal.Signals(signum).name}")
        self._stopping.set()
        threading.Thread(target=self._watchdog, name="stop-watchdog", daemon=True).start()
        self._on_stop(signal.Signals(signum))

    def _watchdog(self) -> None:
        if not self._finished.wait(self._deadline):
            _force_exit(f"still running {self._deadline:.0f}s after the stop signal")

    def finished(self) -> None:
        """The process stopped in time: disarm the watchdog and restore default handlers."""
        self._finished.set()
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)


def watch(on_stop: Callable[[signal.Signals], object], deadline: float) -> Watch:
    """Call ``on_stop`` on the first stop signal; end the process ``deadline`` s later."""
    watcher = Watch(on_stop, deadline)
    for sig in STOP_SIGNALS:
        signal.signal(sig, watcher._handle)
    return watcher


def has_terminal() -> bool:
    """Whether the process has a controlling terminal now (the window it was started in)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def on_hangup(reload: Callable[[], object]) -> Callable[[], None]:
    """A SIGHUP handler: ``reload``, as daemons do; but if the terminal the process runs in
    has gone (its window was closed), a polite stop (SIGTERM), as any program in a terminal
    does, instead of running on headless with its ports taken."""
    had_terminal = has_terminal()

    def handle() -> None:
        if had_terminal and not has_terminal():  # nothing to log to: the terminal is gone
            os.kill(os.getpid(), signal.SIGTERM)
            return
        reload()

    return handle
