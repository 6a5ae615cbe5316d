"""The poller's CPU work (parsing, HTML to text, language, fingerprints) on a few threads.

The event loop only waits on I/O: it must answer ``/healthz`` and keep fetching while a big
feed is parsed. A fixed number of threads (``parse_workers``) bounds how many documents are
worked on at once, so CPU and memory do not grow with the number of sources in flight.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import ParamSpec, TypeVar

from shared import metrics

SWITCH_INTERVAL_SECONDS = 0.0005
P = ParamSpec("P")
T = TypeVar("T")


class ParsePool:
    """A bounded thread pool whose jobs are timed as a stage of the pipeline."""

    def __init__(self, workers: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vigil-parse")
        # The event loop gives up the GIL at every socket call; with the default 5 ms switch
        # interval it then waits up to 5 ms per call behind a parsing thread (the "convoy
        # effect"), and a loop busy with I/O stalls for seconds. Hand the GIL over sooner.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_SECONDS))

    async def run(
        self, stage: str | None, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``work(*args, **kwargs)`` on a pool thread; its own duration observed as ``stage``."""
        job = partial(_timed, stage, partial(work, *args, **kwargs))
        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    def close(self) -> None:
        """Stop the threads once queued work is done (none is queued after the poller stops)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _timed(stage: str | None, work: Callable[[], T]) -> T:
    started = time.perf_counter()
    try:
        return work()
    finally:
        if stage is not None:
            metrics.STAGE_SECONDS.labels(stage).observe(time.perf_counter() - started)
