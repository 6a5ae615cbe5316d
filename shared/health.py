"""The HTTP endpoints every service exposes: ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis

from shared import metrics

ReadinessCheck = tuple[str, Callable[[], bool]]


def health_app(redis: Redis, checks: Sequence[ReadinessCheck]) -> web.Application:
    """An aiohttp application answering liveness, readiness and Prometheus scrapes."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        status = {name: check() for name, check in checks}
        try:
            status["redis"] = bool(await asyncio.wait_for(redis.ping(), timeout=1.0))
        except Exception:  # noqa: BLE001 - any failure to answer means "not ready"
            status["redis"] = False
        for name, ok in status.items():
            metrics.READY.labels(name).set(1 if ok else 0)
        ready = all(status.values())
        return web.json_response({"ready": ready, "checks": status}, status=200 if ready else 503)

    async def metrics_endpoint(_: web.Request) -> web.Response:
        body = generate_latest()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    return app
