"""The alert archive at 100,000 alerts: memory in Redis, write rate, and the console's reads.

    .venv/bin/python bench/archive_bench.py [--alerts 100000]

A private ``redis-server`` receives ``--alerts`` realistic alerts (one to three claims with
quotes of 120-250 characters, 9 theaters, 60 claimants, 40 sources, 5 languages, one story in
five reported by a second source), written as the archive component writes them. Then:
Redis's ``used_memory`` per alert, the console's queries (first page, filtered pages, a page
deep in history, the claims ledger, a claimant), and one trim of 10 % beyond the size limit.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.archive.records import Query
from services.archive.settings import ArchiveSettings
from services.archive.store import AlertArchive
from shared.connection import connect
from shared.embedded_redis import EmbeddedRedis
from shared.models import Alert, Article, Claim, Classification
from shared.vocabulary import DEFAULT_VOCABULARY

WORDS = [
    "Turkish", "troops", "drones", "officials", "said", "ministry", "border", "forces",
    "deployed", "reported", "according", "sources", "military", "operation", "base", "advisers",
    "Ankara", "region", "government", "army", "statement", "week", "denied", "confirmed",
    "claims", "vessels", "training",
]  # fmt: skip
CLAIMANTS = [f"{who} {role}" for who in ("Armenia's", "Azerbaijan's", "Turkey's", "Libya's",
                                         "Syria's", "Iraq's") for role in (
             "defence ministry", "foreign ministry", "president", "army", "government",
             "opposition", "observers", "media", "officials", "spokesman")]  # fmt: skip
SOURCES = [f"source-{n}" for n in range(40)]
LANGUAGES = ("en", "tr", "ar", "fr", "ru")
START_MS = 1_800_000_000_000


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(20, 40))]
    return " ".join(words).capitalize() + "."


def make_alert(rng: random.Random, n: int, story: int) -> Alert:
    claims = [
        Claim(claimant=rng.choice(CLAIMANTS), stance=rng.choice(DEFAULT_VOCABULARY.stances),
              theater=rng.choice(DEFAULT_VOCABULARY.theaters), evidence=sentence(rng))
        for _ in range(rng.randint(1, 3))
    ]  # fmt: skip
    published = datetime(2027, 1, 1, tzinfo=UTC) + timedelta(seconds=n * 20)
    article = Article(
        id=f"{n:032x}", url=f"https://{rng.choice(SOURCES)}.example/news/{n}",
        title=" ".join(rng.choice(WORDS) for _ in range(10)).capitalize(),
        text=sentence(rng) * 10, source=rng.choice(SOURCES), published_at=published,
        fetched_at=published, language=rng.choice(LANGUAGES), story_id=f"story-{story}",
    )  # fmt: skip
    verdict = Classification(
        id=article.id, flagged=True, score=0.8,
        theaters=sorted({c.theater for c in claims}), stances=sorted({c.stance for c in claims}),
        claims=claims, evidence=[c.evidence for c in claims], language=article.language or "en",
    )  # fmt: skip
    return Alert(alert_id=f"alert_{article.id}", article=article, classification=verdict)


async def timed(label: str, action: Callable[[], Awaitable[Any]], runs: int = 20) -> None:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await action()
        times.append(time.perf_counter() - started)
    print(f"| {label} | {statistics.median(times) * 1000:.1f} ms | {max(times) * 1000:.1f} ms |")


async def main(count: int) -> None:
    rng = random.Random(16)
    with (
        tempfile.TemporaryDirectory() as folder,
        EmbeddedRedis(Path(folder), persist=False) as server,
    ):
        redis = connect(server.url)
        archive = AlertArchive(redis, ArchiveSettings(days=3650, max_alerts=count))
        empty = int((await redis.info("memory"))["used_memory"])
        alerts = []
        story = 0
        for n in range(count):
            story = story if n and rng.random() < 0.2 else n  # one in five: a second source
            alerts.append(make_alert(rng, n, story))
        started = time.perf_counter()
        for n, alert in enumerate(alerts):
            await archive.add(alert, f"{START_MS + n * 20_000}-0")
        elapsed = time.perf_counter() - started
        used = int((await redis.info("memory"))["used_memory"]) - empty
        kept = await archive.count()
        print(f"{kept:,} alerts kept ({count:,} written) in {elapsed:.1f} s: "
              f"{count / elapsed:,.0f} alerts/s from one client")  # fmt: skip
        print(f"Redis memory: {used / 2**20:.1f} MiB, {used / kept:,.0f} bytes per alert\n")
        print("| query | median | max |\n|---|---|---|")
        await timed("first page of 25, no filter", lambda: archive.stories(Query()))
        libya = Query(theaters=["libya"])
        await timed("first page, theater = libya", lambda: archive.stories(libya))
        await timed("first page, theater + stance + language",
                    lambda: archive.stories(Query(theaters=["syria"], stances=["denial"],
                                                  languages=["tr"])))  # fmt: skip
        await timed("first page, claimant contains 'ministry'",
                    lambda: archive.stories(Query(claimant="ministry")))  # fmt: skip
        middle = START_MS * 1000 + count // 2 * 20_000_000
        await timed("a page half-way back in history",
                    lambda: archive.stories(Query(), before=middle))  # fmt: skip
        await timed("claims ledger page of 50, one theater",
                    lambda: archive.claims(theater="karabakh"))  # fmt: skip
        await timed("one claimant's claims, page of 50",
                    lambda: archive.claims(claimant="Turkey's defence ministry"))  # fmt: skip
        await timed("claimants list (top 40)", archive.claimants)
        await timed("new stories since a score (live view)",
                    lambda: archive.newer(START_MS * 1000 + (count - 10) * 20_000_000))  # fmt: skip
        archive.settings = ArchiveSettings(days=3650, max_alerts=int(count * 0.9))
        started = time.perf_counter()
        dropped = await archive.trim(now=START_MS / 1000 + count * 20)
        print(f"\ntrim of {dropped:,} alerts beyond the limit: "
              f"{time.perf_counter() - started:.2f} s")  # fmt: skip
        after = int((await redis.info("memory"))["used_memory"]) - empty
        print(f"Redis memory after the trim: {after / 2**20:.1f} MiB for {await archive.count():,}")
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().alerts))
