"""Poller throughput and memory: N sources on local HTTP servers, mostly answering 304.

    PYTHONPATH=. .venv/bin/python bench/poller_bench.py [--sources 5000] [--seconds 20] \
        [--sizes 1000,10000]

The feed server runs in a child process on 32 loopback addresses (so per-host limits apply
as they would across real hosts); the poller runs in another child with its own
redis-server (EmbeddedRedis), so CPU time and peak memory are the poller's alone. One source
in ten publishes a new item on every poll; the rest answer 304 to the conditional GET.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web
from prometheus_client import REGISTRY

from services.poller.service import PollerService
from services.poller.sources import Source
from services.settings import Settings
from shared.connection import connect
from shared.embedded_redis import EmbeddedRedis, free_port
from shared.logging import configure_logging
from shared.settings import LogSettings

HOSTS = 32
CHANGING_EVERY = 10


def _feed(n: int, version: int) -> str:
    items = "".join(
        f"<item><title>Story {n}-{v}: Turkish drones and the lira</title>"
        f"<link>http://news{n % HOSTS}.test/{n}/{v}?utm_source=rss</link>"
        f"<pubDate>Tue, 24 Nov 2026 08:00:00 GMT</pubDate>"
        f"<description>Item {v} of source {n}, with some text to parse.</description></item>"
        for v in range(max(0, version - 9), version + 1)
    )
    head = f'<?xml version="1.0"?><rss version="2.0"><channel><title>S{n}</title>'
    return f"{head}{items}</channel></rss>"


def serve(port: int) -> None:
    """The feed server (child process): /f/<n>.xml, ETag-aware."""
    versions: dict[int, int] = {}

    async def handle(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n % CHANGING_EVERY == 0:
            versions[n] = versions.get(n, 0) + 1
        version = versions.get(n, 0)
        etag = f'"{n}-{version}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(text=_feed(n, version), content_type="application/rss+xml",
                            headers={"ETag": etag})  # fmt: skip

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/f/{n}.xml", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        for host in range(1, HOSTS + 1):
            await web.TCPSite(runner, f"127.0.0.{host}", port, backlog=1024).start()
        await asyncio.Event().wait()

    asyncio.run(main())


def _polls() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "vigil_polls"
        for sample in metric.samples
        if sample.name == "vigil_polls_total"
    )


async def _run(sources: int, seconds: float, port: int, redis_url: str) -> dict[str, float]:
    settings = Settings(redis_url=redis_url, _env_file=None)
    settings = settings.model_copy(update={"poller": settings.poller.model_copy(
        update={"min_interval_seconds": 0.5})})  # fmt: skip
    configured = [
        Source(id=f"s{n}", url=f"http://127.0.0.{n % HOSTS + 1}:{port}/f/{n}.xml", interval=1.0)
        for n in range(sources)
    ]
    redis = connect(redis_url)
    service = PollerService(settings, redis, configured)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    # Warm-up: every source polled once (first fetches parse and publish whole feeds).
    while _polls() < sources:  # noqa: ASYNC110 - sampling a counter, not awaiting an event
        await asyncio.sleep(0.1)
    polls0, cpu0, wall0 = _polls(), time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    polls, cpu, wall = _polls() - polls0, time.process_time() - cpu0, time.perf_counter() - wall0
    stop.set()
    await task
    await redis.aclose()
    return {
        "sources": sources,
        "polls": polls,
        "polls_per_second": polls / wall,
        "cpu_seconds_per_1000_polls": 1000 * cpu / polls,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_one(sources: int, seconds: float) -> dict[str, float]:
    """Serve, start Redis, poll: one measurement (run in its own process)."""
    configure_logging(LogSettings(level="warning"))
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(port,), daemon=True)
    server.start()
    try:
        with tempfile.TemporaryDirectory() as data, EmbeddedRedis(Path(data), persist=False) as rd:
            time.sleep(1.0)  # the server child binds its sockets
            return asyncio.run(_run(sources, seconds, port, rd.url))
    finally:
        server.terminate()
        server.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sizes", default="1000,10000", help="sizes for the memory check")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.sources, args.seconds)))
        return
    results = []
    for size in [args.sources, *(int(s) for s in args.sizes.split(",") if s)]:
        out = subprocess.run(
            [sys.executable, __file__, "--one", "--sources", str(size), "--seconds",
             str(args.seconds)], capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    print(f"{'sources':>8} {'polls/s':>9} {'CPU s/1000 polls':>17} {'peak RSS MiB':>13}")
    for r in results:
        print(f"{r['sources']:>8.0f} {r['polls_per_second']:>9.0f} "
              f"{r['cpu_seconds_per_1000_polls']:>17.3f} {r['peak_rss_mib']:>13.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
