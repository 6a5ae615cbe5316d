"""Keys written before the cluster layout, moved to their hash-tagged names once.

Earlier versions kept the notifier's keys under ``vigil:notifier:``, the poller's seen set
and story buckets under ``vigil:poller:`` and the bus's error hashes under
``<stream>:errors:<group>``. Their cluster slots differed, so the scripts and transactions
that touch several of them could not run on a Redis Cluster; they now carry hash tags
(docs/operations.md, "Key layout"). A server or Sentinel deployment that ran the old names
gets them renamed when this version first starts: ``RENAMENX`` per key (TTLs kept), never over
a key this version already wrote. Running it twice, or from several replicas at once, is
harmless. A cluster has nothing to move: the old names never worked there.
"""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.notifier.jobs import OLD_PREFIX, PREFIX
from services.poller.dedupe import SEEN_KEY
from shared.connection import is_cluster
from shared.logging import get_logger
from shared.streams import ALERTS, ARTICLES, REPLAYS, companion

log = get_logger("layout")

LAYOUT_KEY = "vigil:layout"
LAYOUT = "2"  # hash tags for the notifier, the poller's dedupe state and the bus's errors


def _beside(stream: str, old_prefix: str) -> Callable[[str], str]:
    return lambda key: companion(stream, key.removeprefix(old_prefix))


def _rules() -> list[tuple[str, Callable[[str], str]]]:
    """(SCAN pattern, new name of a matching key)."""
    rules: list[tuple[str, Callable[[str], str]]] = [
        (f"{OLD_PREFIX}*", lambda key: PREFIX + key.removeprefix(OLD_PREFIX)),
        ("vigil:poller:seen", lambda _: SEEN_KEY),
        ("vigil:poller:story:*", _beside(ARTICLES, "vigil:poller:")),
    ]
    rules += [(f"{s}:errors:*", _beside(s, f"{s}:")) for s in (ARTICLES, ALERTS, REPLAYS)]
    return rules


async def migrate_layout(redis: Redis) -> int:
    """Rename the keys of the old layout; returns how many were moved."""
    if is_cluster(redis) or await redis.get(LAYOUT_KEY) == LAYOUT:
        return 0
    moved = 0
    for pattern, rename in _rules():
        async for key in redis.scan_iter(match=pattern, count=1000):
            try:
                moved += int(await redis.renamenx(key, rename(str(key))))
            except ResponseError:  # "no such key": another replica moved it meanwhile
                continue
    await redis.set(LAYOUT_KEY, LAYOUT)
    if moved:
        log.info("layout.migrated", keys=moved, layout=LAYOUT)
    return moved
