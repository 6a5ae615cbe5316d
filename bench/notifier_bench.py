"""Notifier throughput and latency against a real Redis and a local webhook receiver.

    .venv/bin/python bench/notifier_bench.py [--burst 5000] [--rate 100] [--seconds 10]

1. burst: ``--burst`` alerts are put on ``vigil:alerts`` at once; we time how long the notifier
   takes until the receiver has acknowledged every signed webhook: deliveries per second.
2. steady: alerts enter ``vigil:alerts`` at ``--rate`` per second for ``--seconds``; for each we
   measure the time from XADD to the receiver's handler: p50, p99 and max latency.
Everything runs in one process on loopback (Redis as a child process), so the figures include
the receiver's own cost and are a lower bound of what a dedicated notifier host does.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr

from services.notifier.service import NotifierService
from services.notifier.subscriptions import Subscription
from services.settings import Settings
from shared.bus import StreamBus
from shared.connection import connect
from shared.embedded_redis import EmbeddedRedis
from shared.logging import configure_logging
from shared.models import Alert, Article, Claim, Classification
from shared.settings import LogSettings
from shared.streams import ALERTS

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def make_alert(article_id: str) -> Alert:
    """A typical alert: one claim, one evidence sentence."""
    evidence = "Turkish troops arrived in Tripoli, the Turkish defence ministry said."
    return Alert(
        alert_id=f"alert_{article_id}",
        article=Article(id=article_id, url=f"https://wire.example/{article_id}",
                        title="Turkey sends troops to Libya", text=evidence, source="wire"),
        classification=Classification(
            id=article_id, flagged=True, score=0.9, theaters=["libya"],
            stances=["acknowledgment"], evidence=[evidence],
            claims=[Claim(claimant="Turkish defence ministry", stance="acknowledgment",
                          evidence=evidence)],
        ),
    )  # fmt: skip


@asynccontextmanager
async def local_server(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


class Receiver:
    """Acknowledges every webhook and notes when each alert arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.arrived[body["data"]["alert_id"]] = time.perf_counter()
        self.changed.set()
        return web.Response(status=204)

    async def wait_for_count(self, count: int, deadline: float) -> None:
        while len(self.arrived) < count:
            self.changed.clear()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(f"only {len(self.arrived)} of {count} deliveries arrived")
            await asyncio.wait_for(self.changed.wait(), timeout=remaining)


async def run(burst: int, rate: float, seconds: float) -> None:
    configure_logging(LogSettings(format="console", level="WARNING"))
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedRedis(Path(folder), persist=False)
        server.start()
        try:
            await measure(server.url, burst, rate, seconds)
        finally:
            server.stop()


async def measure(redis_url: str, burst: int, rate: float, seconds: float) -> None:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    redis = connect(redis_url)
    settings = Settings(
        redis_url=redis_url, allow_private_targets=True, admin_token=SecretStr("bench"),
        _env_file=None,
    )  # fmt: skip
    bus = StreamBus(redis)
    async with local_server(app) as base:
        subscription = Subscription.model_validate(
            {
                "id": "bench",
                "channel": "webhook",
                "url": f"{base}/hook",
                "secret": SECRET,
                "rate_limit_per_minute": 100_000,
            }
        )
        service = NotifierService(settings, redis, [subscription])
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        while not service.is_ready():  # noqa: ASYNC110 - readiness is a probe, not an event
            await asyncio.sleep(0.01)

        started = time.perf_counter()
        for start in range(0, burst, 500):
            alerts = [make_alert(f"burst{n}") for n in range(start, min(start + 500, burst))]
            for alert in alerts:
                await bus.publish(ALERTS, alert)
        await receiver.wait_for_count(burst, time.perf_counter() + 300)
        elapsed = time.perf_counter() - started
        print(f"burst: {burst} alerts delivered in {elapsed:.2f} s = "
              f"{burst / elapsed:,.0f} webhook deliveries/s")  # fmt: skip

        sent: dict[str, float] = {}
        total = int(rate * seconds)
        interval = 1.0 / rate
        began = time.perf_counter()
        for n in range(total):
            await asyncio.sleep(max(0.0, began + n * interval - time.perf_counter()))
            alert = make_alert(f"steady{n}")
            sent[alert.alert_id] = time.perf_counter()
            await bus.publish(ALERTS, alert)
        await receiver.wait_for_count(burst + total, time.perf_counter() + 60)
        latencies = sorted((receiver.arrived[key] - at) * 1000 for key, at in sent.items())
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"steady: {total} alerts at {rate:.0f}/s: latency XADD -> receiver "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms")  # fmt: skip
        stop.set()
        await task
    await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(run(args.burst, args.rate, args.seconds))


if __name__ == "__main__":
    main()
