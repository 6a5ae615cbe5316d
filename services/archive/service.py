"""The archive as a component: its own consumer group on ``vigil:alerts``.

It runs in the notifier's process (``vigil up``, ``vigil notifier``) but reads the alerts
apart from the notifier's group, so delivery never waits on history and history never
changes delivery. Entries are acknowledged once stored; trimming runs every
``VIGIL_ARCHIVE__TRIM_INTERVAL_SECONDS``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from redis.asyncio import Redis

from services.archive.store import AlertArchive
from services.settings import Settings
from shared.aio import sleep_or_stop
from shared.bus import TRANSIENT_ERRORS, Receipt, StreamBus
from shared.logging import get_logger
from shared.models import Alert
from shared.streams import ALERTS, ARCHIVE_GROUP

log = get_logger("archive")


def _nothing() -> None:
    return None


class ArchiveService:
    """Stores every alert in the archive and keeps the archive within its bounds."""

    name = "archive"

    def __init__(
        self, settings: Settings, redis: Redis, *, on_stored: Callable[[], None] = _nothing
    ) -> None:
        self.settings = settings
        self.archive = AlertArchive(redis, settings.archive)
        self.on_stored = on_stored
        self.consumer = StreamBus(redis, settings.bus).consumer(
            stream=ALERTS,
            group=ARCHIVE_GROUP,
            name=settings.consumer_name,
            model=Alert,
            handler=self.handle,
            observer=True,  # the notifier's group dead-letters what neither can read
        )

    def is_ready(self) -> bool:
        return self.consumer.ready

    async def handle(self, alert: Alert, delivery: Receipt) -> None:
        if await self.archive.add(alert, delivery.entry_id):
            log.debug("archive.stored", alert_id=alert.alert_id)
            self.on_stored()

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.consumer.run(stop))
            group.create_task(self._trim(stop))

    async def _trim(self, stop: asyncio.Event) -> None:
        """Trim now (a restart may find an archive past its bounds), then periodically."""
        while True:
            try:
                dropped = await self.archive.trim()
            except TRANSIENT_ERRORS as error:
                log.warning("archive.trim_failed", error=str(error))
            else:
                if dropped:
                    log.info("archive.trimmed", alerts=dropped)
            if await sleep_or_stop(stop, self.settings.archive.trim_interval_seconds):
                return
