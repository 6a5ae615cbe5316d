"""``vigil up`` on a terminal: alerts as readable blocks, one live status line, and repeated
failures summarised instead of scrolling the alerts away.

Offline, 20 of the 21 bundled feeds fail every minute; printed one line each, their
``poll.failed`` warnings bury the alerts. On a terminal (stdout and stderr both TTYs, log
format ``auto`` or ``console``) this view instead:

- takes ``poll.failed`` out of the log: sources that start failing are named in one line per
  second and kind of failure, their next failures only counted in the status line, and a
  source that recovers gets one line saying so;
- drops the info events the status line counts (a poll's new articles, each flagged
  article, each delivery);
- keeps one status line at the bottom: sources ok and failing, articles, alerts and
  deliveries since the start, and the console's URL.

Anything else (warnings, errors, the alert blocks) prints as before. Without a terminal
nothing changes: JSON logs stay complete.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import threading
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

import structlog
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.notifier.channels.registry import CHANNELS
from services.poller.state import StateStore
from services.settings import Settings
from shared.aio import sleep_or_stop
from shared.bus import TRANSIENT_ERRORS
from shared.logging import configure_logging
from shared.settings import LogSettings

REFRESH_SECONDS = 1.0
# Info events the status line counts: on a terminal they are not printed one by one.
COUNTED = frozenset({"poll.fetched", "classify.flagged", "notifier.delivered"})
_CLEAR = "\r\x1b[2K"


class Screen:
    """One terminal written by several streams, with a status line kept at the bottom.

    Writes are buffered up to their last newline, so a line is never split by the status
    line; a terminal that went away (the window closed) is ignored, never an error that
    would stop a service or its shutdown.
    """

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err
        self.status = ""
        self._lock = threading.Lock()
        self._gone = False

    def stream(self, target: TextIO) -> _Through:
        """A text stream writing to ``target`` around the status line."""
        return _Through(self, target)

    def write(self, target: TextIO, text: str) -> None:
        with self._lock:
            self._draw(target, _CLEAR + text)

    def show(self, status: str) -> None:
        """Replace the status line."""
        width = shutil.get_terminal_size((100, 24)).columns
        with self._lock:
            self.status = status if len(status) < width else status[: width - 2] + "…"
            self._draw(None, _CLEAR)

    def close(self) -> None:
        """Leave the status line as the last line, ended."""
        with self._lock:
            self._draw(None, _CLEAR + self.status + "\n", redraw=False)

    def _draw(self, target: TextIO | None, text: str, *, redraw: bool = True) -> None:
        if self._gone:
            return
        try:
            if target is not None and target is not self.err:
                self.err.write(_CLEAR)
                self.err.flush()
                target.write(text.removeprefix(_CLEAR))
                target.flush()
                text = ""
            self.err.write(text + (self.status if redraw else ""))
            self.err.flush()
        except OSError:  # the terminal is gone (EIO): nothing can be shown any more
            self._gone = True


class _Through:
    """A minimal text stream for structlog, logging and the console channel."""

    def __init__(self, screen: Screen, target: TextIO) -> None:
        self.screen = screen
        self.target = target
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        complete, newline, rest = self._pending.rpartition("\n")
        if newline:
            self.screen.write(self.target, complete + newline)
            self._pending = rest
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return True


class Summary:
    """The structlog processor of the terminal view (see the module's doc): it takes the
    ``poll.failed`` events out of the log, for :class:`StatusLine` to report in one line."""

    def __init__(self) -> None:
        self.failing: dict[str, int] = {}
        self.fresh: list[tuple[str, str, str]] = []  # (source, outcome, error) not yet shown

    def __call__(
        self, _: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        name = event.get("event")
        if name in COUNTED and method in ("info", "debug"):
            raise structlog.DropEvent
        if name == "poll.failed":
            source = str(event.get("source"))
            if source not in self.failing:
                self.fresh.append((source, str(event.get("outcome")), str(event.get("error"))))
            self.failing[source] = self.failing.get(source, 0) + 1
            raise structlog.DropEvent
        return event

    def news(self, still_failing: set[str]) -> list[str]:
        """Lines to print: sources that started failing since the last call (one line per kind
        of failure) and sources that poll fine again."""
        lines = []
        by_outcome: dict[str, list[tuple[str, str]]] = {}
        for source, outcome, error in self.fresh:
            by_outcome.setdefault(outcome, []).append((source, error))
        self.fresh.clear()
        for outcome, failures in by_outcome.items():
            names = ", ".join(source for source, _ in failures)
            count = f"{len(failures)} source{'s' if len(failures) != 1 else ''}"
            lines.append(f"⚠ {count} failing ({outcome}): {names}. First error: "
                         f"{failures[0][1][:160]}. Retried with backoff; the status line "
                         "counts them.")  # fmt: skip
        back = [(s, n) for s, n in self.failing.items() if s not in still_failing]
        for source, failed in back:
            del self.failing[source]
            lines.append(f"✓ {source} polls fine again after {failed} failed polls.")
        return lines


def _counter(name: str, **labels: str) -> int:
    return int(REGISTRY.get_sample_value(name, labels) or 0)


class StatusLine:
    """Refreshes the status line every second (a component of ``vigil up``)."""

    name = "terminal"

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        source_ids: Sequence[str],
        screen: Screen,
        summary: Summary,
    ) -> None:
        self.redis = redis
        self.source_ids = list(source_ids)
        self.screen = screen
        self.summary = summary
        self.url = f"http://{settings.http.host}:{settings.http.port}/"
        self.states = StateStore(redis)

    def is_ready(self) -> bool:
        return True

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while True:
                try:
                    await self.refresh()
                except TRANSIENT_ERRORS:
                    self.screen.show("● Redis unreachable: retrying…")
                if await sleep_or_stop(stop, REFRESH_SECONDS):
                    return
        finally:
            self.screen.close()

    async def refresh(self) -> None:
        states = await self.states.many(self.source_ids)
        failing = {s for s, st in zip(self.source_ids, states, strict=True)
                   if st.consecutive_failures}  # fmt: skip
        ok = sum(1 for st in states if st.last_poll is not None and not st.consecutive_failures)
        for line in self.summary.news(failing):
            self.screen.write(self.screen.err, line + "\n")
        deliveries = sum(
            _counter("vigil_deliveries_total", channel=c, outcome="delivered") for c in CHANNELS
        )
        self.screen.show(
            f"● sources {ok} ok · {len(failing)} failing │ "
            f"{_counter('vigil_articles_total', result='new')} articles · "
            f"{_counter('vigil_classifications_total', verdict='flagged')} alerts · "
            f"{deliveries} deliveries │ console {self.url}"
        )


@dataclass
class TerminalView:
    """The screen and the log summary of one ``vigil up`` on a terminal."""

    screen: Screen
    summary: Summary = field(default_factory=Summary)

    @classmethod
    def open(cls, settings: LogSettings) -> TerminalView | None:
        """The view, with logging routed through it, if stdout and stderr are a terminal."""
        if settings.format == "json" or not (sys.stdout.isatty() and sys.stderr.isatty()):
            return None
        view = cls(Screen(sys.stdout, sys.stderr))
        configure_logging(settings, view.logs, processors=[view.summary])
        return view

    @property
    def logs(self) -> TextIO:
        return cast(TextIO, self.screen.stream(self.screen.err))

    @property
    def alerts(self) -> TextIO:
        """Where the console subscriber's alert blocks go."""
        return cast(TextIO, self.screen.stream(self.screen.out))

    def status_line(
        self, settings: Settings, redis: Redis, source_ids: Sequence[str]
    ) -> StatusLine:
        return StatusLine(settings, redis, source_ids, self.screen, self.summary)
