"""Work in flight, bounded, and the one way to end it on shutdown.

The stream consumers, the poller and the notifier's dispatcher each run up to a limit of
tasks at once, one per thing being worked on (an entry, a source, a job). On a stop signal
they all do what :meth:`TaskPool.drain` does: take no new work, give the tasks in flight the
grace period, cancel the rest, and release what those held (an entry stays pending, a source
is made due again, a job keeps its lease).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Generic, TypeVar

K = TypeVar("K")
Task = asyncio.Task[None]


class TaskPool(Generic[K]):
    """Up to ``limit`` tasks, each with a key that names its work.

    ``on_done(task, key)`` runs when a task ends, after it left the pool (a slot is free).
    """

    def __init__(self, limit: int, on_done: Callable[[Task, K], object] | None = None) -> None:
        self.limit = limit
        self._on_done = on_done
        self._tasks: dict[Task, K] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self._tasks))

    @property
    def free(self) -> int:
        """Slots left."""
        return self.limit - len(self._tasks)

    def keys(self) -> set[K]:
        """The keys of the work in flight."""
        return set(self._tasks.values())

    def spawn(self, key: K, work: Coroutine[Any, Any, None], *, name: str | None = None) -> Task:
        """Run ``work`` as a task of the pool (the caller keeps to the limit)."""
        task = asyncio.create_task(work, name=name)
        self._tasks[task] = key
        task.add_done_callback(self._finished)
        return task

    async def wait_for_slot(self) -> None:
        """Return once a slot is free."""
        while self.free <= 0:
            await asyncio.wait(list(self._tasks), return_when=asyncio.FIRST_COMPLETED)

    async def drain(self, grace: float) -> list[K]:
        """Let the tasks finish within ``grace`` seconds, cancel the rest; the keys of those
        cancelled, for the caller to release."""
        if not self._tasks:
            return []
        keys = dict(self._tasks)
        _, late = await asyncio.wait(list(keys), timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
        return [keys[task] for task in late]

    def _finished(self, task: Task) -> None:
        key = self._tasks.pop(task)
        if self._on_done is not None:
            self._on_done(task, key)
