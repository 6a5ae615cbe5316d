"""New stories for the browsers watching the alerts view (server-sent events).

One loop per process looks for stories newer than the last it saw, at once when this
process's archive stored one and every second otherwise (another replica may have stored
it), and hands each to every open event stream. A stream too slow to keep up is closed: the
browser reconnects with ``Last-Event-ID`` and catches up from the archive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from services.archive.reader import ArchiveReader
from services.archive.records import Story
from shared.aio import Wakeup
from shared.bus import TRANSIENT_ERRORS
from shared.logging import get_logger

log = get_logger("console")

POLL_SECONDS = 1.0
QUEUE_LENGTH = 100


class LiveFeed:
    """Fans new stories out to the listening event streams."""

    name = "console"

    def __init__(self, archive: ArchiveReader, poll_seconds: float = POLL_SECONDS) -> None:
        self.archive = archive
        self.poll_seconds = poll_seconds
        self._listeners: set[asyncio.Queue[Story | None]] = set()
        self._wake = Wakeup()
        self._ready = False

    def is_ready(self) -> bool:
        return self._ready

    def wake(self) -> None:
        """A story was stored in this process: look now."""
        self._wake.set()

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[Story | None]]:
        """A queue of new stories; ``None`` means the stream must end."""
        queue: asyncio.Queue[Story | None] = asyncio.Queue(QUEUE_LENGTH)
        self._listeners.add(queue)
        try:
            yield queue
        finally:
            self._listeners.discard(queue)

    async def run(self, stop: asyncio.Event) -> None:
        last: int | None = None
        try:
            while not stop.is_set():
                try:
                    if last is None:
                        last = await self.archive.latest_score()
                        self._ready = True
                    for story in await self.archive.newer(last):
                        last = max(last, int(story.lead.id, 36))
                        self._publish(story)
                except TRANSIENT_ERRORS as error:
                    log.warning("console.live_failed", error=str(error))
                await self._wake.wait(stop, self.poll_seconds)
        finally:
            self._ready = False
            for queue in list(self._listeners):
                self._close(queue)

    def _publish(self, story: Story) -> None:
        for queue in list(self._listeners):
            try:
                queue.put_nowait(story)
            except asyncio.QueueFull:
                log.info("console.live_slow_listener")
                self._close(queue)

    def _close(self, queue: asyncio.Queue[Story | None]) -> None:
        self._listeners.discard(queue)
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(None)
        if queue.full():  # make room for the end marker
            queue.get_nowait()
            queue.put_nowait(None)
