"""Every delivery attempt per subscriber, newest first: the console's delivery log.

Like Svix's message attempts: when, what was sent, the outcome with the status code or the
error, and the latency. A dead-lettered job's line names its dead letter, so the console can
replay it. One list per subscriber (``vigil:notifier:log:{id}``), trimmed to
``VIGIL_NOTIFIER__DELIVERY_LOG_LENGTH`` lines; writing it never holds up a delivery.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import orjson
from redis.asyncio import Redis

from services.notifier.channels.base import SendResult
from services.notifier.jobs import PREFIX, Job
from shared.bus import TRANSIENT_ERRORS
from shared.logging import get_logger

log = get_logger("notifier")


def log_key(subscription_id: str) -> str:
    return f"{PREFIX}log:{subscription_id}"


@dataclass(frozen=True)
class LogLine:
    """One attempt (or the dead-lettering) of a job."""

    at: float
    job_id: str
    kind: str
    title: str
    attempt: int
    outcome: str
    detail: str = ""
    seconds: float | None = None
    dead_id: str = ""


def _title(job: Job) -> str:
    if job.kind in ("digest", "overflow"):
        return f"{len(job.alerts)} alerts in one message"
    return job.alerts[0].article.title if job.alerts else ""


class DeliveryLog:
    """Appends and reads the per-subscriber attempt lists."""

    def __init__(self, redis: Redis, length: int) -> None:
        self.redis = redis
        self.length = length

    async def _append(self, subscription_id: str, line: LogLine) -> None:
        key = log_key(subscription_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.lpush(key, orjson.dumps(asdict(line)))
                pipe.ltrim(key, 0, self.length - 1)
                await pipe.execute()
        except TRANSIENT_ERRORS as error:
            # The delivery itself is settled; a missing log line must not resend it.
            log.warning("notifier.log_failed", error=str(error))

    async def attempt(self, job: Job, result: SendResult, *, at: float, seconds: float) -> None:
        """Note one send of ``job`` and how it went."""
        line = LogLine(at=at, job_id=job.id, kind=job.kind, title=_title(job),
                       attempt=job.attempts + 1, outcome=result.outcome,
                       detail=result.detail, seconds=seconds)  # fmt: skip
        await self._append(job.subscription_id, line)

    async def dead_lettered(self, job: Job, reason: str, dead_id: str, at: float) -> None:
        """Note that ``job`` went to the dead letters as ``dead_id``."""
        line = LogLine(at=at, job_id=job.id, kind=job.kind, title=_title(job),
                       attempt=job.attempts, outcome="dead_lettered", detail=reason,
                       dead_id=dead_id)  # fmt: skip
        await self._append(job.subscription_id, line)

    async def lines(
        self, subscription_id: str, *, offset: int = 0, count: int = 50
    ) -> list[LogLine]:
        """The subscriber's latest lines, newest first."""
        rows = await self.redis.lrange(log_key(subscription_id), offset, offset + count - 1)
        return [LogLine(**orjson.loads(row)) for row in rows]
