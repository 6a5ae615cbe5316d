"""A consumer's acknowledgements, and the last handler error kept per pending entry."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from shared.streams import companion


def errors_key(stream: str, group: str) -> str:
    """Hash of the last handler error per pending entry, quoted in dead letters; in the
    stream's cluster slot, so that acknowledging and forgetting the error is one step."""
    return companion(stream, f"errors:{group}")


class Acks:
    """A consumer's acknowledgements, sent together.

    Handlers that finish while an XACK is on its way share the next one, so under load a
    consumer pays one round trip per batch instead of one per entry; when idle an entry is
    acknowledged at once. Each handler still waits for its own entry's acknowledgement.
    """

    def __init__(self, redis: Redis, stream: str, group: str) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group
        self._waiting: list[tuple[str, bool, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def ack(self, entry_id: str, *, forget_error: bool) -> None:
        """Acknowledge ``entry_id`` (and forget its last error); return once Redis has it."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((entry_id, forget_error, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            errors = [entry_id for entry_id, forget, _ in batch if forget]
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.xack(self.stream, self.group, *(entry_id for entry_id, _, _ in batch))
                    if errors:
                        pipe.hdel(errors_key(self.stream, self.group), *errors)
                    await pipe.execute()
            except Exception as error:  # noqa: BLE001 - each waiting handler gets it
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(error)
            else:
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)
