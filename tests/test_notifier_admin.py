"""The admin API over real HTTP: auth, validation naming the field, CRUD, test events, no leaks."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr
from redis.asyncio import Redis

from services.notifier.service import NotifierService
from services.settings import Settings
from shared.connection import connect
from shared.embedded_redis import EmbeddedRedis
from shared.logging import configure_logging
from shared.settings import LogSettings
from shared.vocabulary import DEFAULT_VOCABULARY, publish_vocabulary
from tests.helpers import local_server, wait_for
from tests.notifier_support import FakeClock, fast, running
from tests.receivers import SECRET, Receiver

TOKEN = "admin-token-that-must-stay-secret"
API = "/api/v1"


@dataclass
class Admin:
    """An HTTP client on a running notifier's admin API."""

    base: str
    session: aiohttp.ClientSession
    service: NotifierService

    async def call(
        self, method: str, path: str, *, token: str | None = TOKEN, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(
            method, f"{self.base}{API}{path}", headers=headers, **kwargs
        ) as response:
            body = await response.json() if response.status != 204 else {}
            return response.status, body


@pytest.fixture
async def admin(settings: Settings, redis: Redis) -> AsyncIterator[Admin]:
    async with _served(settings, redis) as client:
        yield client


@asynccontextmanager
async def _served(settings: Settings, redis: Redis) -> AsyncIterator[Admin]:
    """A running notifier with its admin API on a loopback port, and a client for it."""
    config = fast(settings).model_copy(update={"admin_token": SecretStr(TOKEN)})
    async with running(config, redis, [], FakeClock()) as service:
        app = web.Application()
        service.setup_app(app)
        async with local_server(app) as base, aiohttp.ClientSession() as session:
            yield Admin(base, session, service)


def hook(receiver: Receiver, sub_id: str = "desk", **extra: object) -> dict[str, object]:
    return {"id": sub_id, "channel": "webhook", "url": receiver.url, "secret": SECRET, **extra}


async def test_requests_without_the_right_token_get_401(admin: Admin) -> None:
    for token in (None, "wrong-token"):
        status, body = await admin.call("GET", "/subscriptions", token=token)
        assert status == 401
        assert "token" in str(body["error"])


async def test_invalid_input_gets_422_naming_the_field(admin: Admin, receiver: Receiver) -> None:
    status, body = await admin.call(
        "POST", "/subscriptions", json=hook(receiver, filters={"min_score": 7})
    )
    assert status == 422
    assert body["fields"][0]["field"] == "filters.min_score"
    status, body = await admin.call("POST", "/subscriptions", json=hook(receiver, secret="hunter2"))
    assert status == 422
    assert "secret" in str(body["fields"])
    assert "hunter2" not in str(body)
    status, body = await admin.call("POST", "/subscriptions", data=b"{not json")
    assert status == 400


async def test_filters_name_only_the_published_vocabulary(
    admin: Admin, receiver: Receiver, redis: Redis
) -> None:
    wanted = hook(receiver, filters={"theaters": ["zembla"]})
    status, body = await admin.call("POST", "/subscriptions", json=wanted)
    assert status == 422
    assert body["fields"][0]["field"] == "filters.theaters"
    assert "unknown theater 'zembla'" in body["fields"][0]["message"]
    theaters = (*DEFAULT_VOCABULARY.theaters, "zembla")
    await publish_vocabulary(redis, DEFAULT_VOCABULARY.model_copy(update={"theaters": theaters}))
    status, body = await admin.call("POST", "/subscriptions", json=wanted)
    assert (status, body["filters"]["theaters"]) == (201, ["zembla"])


async def test_create_list_show_update_disable_enable_delete(
    admin: Admin, receiver: Receiver
) -> None:
    status, created = await admin.call("POST", "/subscriptions", json=hook(receiver))
    assert status == 201
    assert created["secret"] != SECRET, "secrets are masked in responses"
    status, _ = await admin.call("POST", "/subscriptions", json=hook(receiver))
    assert status == 409

    status, listing = await admin.call("GET", "/subscriptions")
    assert [s["id"] for s in listing["subscriptions"]] == ["desk"]

    status, updated = await admin.call(
        "PATCH", "/subscriptions/desk", json={"filters": {"theaters": ["libya"]}}
    )
    assert status == 200
    assert updated["filters"]["theaters"] == ["libya"]
    stored = await admin.service.store.get("desk")
    assert stored is not None
    assert stored.secret is not None
    assert stored.secret.get_secret_value() == SECRET, "a PATCH keeps the secret"

    status, disabled = await admin.call("POST", "/subscriptions/desk/disable")
    assert (status, disabled["enabled"]) == (200, False)
    status, enabled = await admin.call("POST", "/subscriptions/desk/enable")
    assert (status, enabled["enabled"]) == (200, True)

    status, _ = await admin.call("DELETE", "/subscriptions/desk")
    assert status == 204
    status, _ = await admin.call("GET", "/subscriptions/desk")
    assert status == 404


async def test_a_test_event_reaches_the_subscriber(admin: Admin, receiver: Receiver) -> None:
    await admin.call("PUT", "/subscriptions/desk", json=hook(receiver))
    status, body = await admin.call("POST", "/subscriptions/desk/test")
    assert status == 202
    await wait_for(lambda: receiver.requests, message="the test event")
    [received] = receiver.requests
    assert received.payload["type"] == "alert.test"
    assert received.webhook_id == body["job_id"]


async def test_the_openapi_document_describes_every_route(admin: Admin) -> None:
    status, document = await admin.call("GET", "/openapi.json")
    assert status == 200
    paths = document["paths"]
    assert f"{API}/subscriptions" in paths
    assert f"{API}/subscriptions/{{id}}/test" in paths


async def test_secrets_never_reach_the_logs(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    """Run the notifier with JSON logs into a buffer, exercise it, scan every line."""
    buffer = io.StringIO()
    configure_logging(LogSettings(format="json", level="DEBUG"), stream=buffer)
    try:
        async with _served(settings, redis) as client:
            await client.call("PUT", "/subscriptions/desk", json=hook(receiver))
            await client.call("GET", "/subscriptions", token="wrong-" + TOKEN)
            await client.call("POST", "/subscriptions/desk/test")
            await wait_for(lambda: receiver.requests, message="the test event")
    finally:
        configure_logging(LogSettings(format="console", level="INFO"))
    logs = buffer.getvalue()
    assert "admin.subscription_saved" in logs, "the scan must see real log lines"
    assert TOKEN not in logs
    assert SECRET not in logs
    assert SECRET.removeprefix("whsec_") not in logs


CHAT_URL = "slack://T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"


async def test_chat_urls_are_write_only(admin: Admin) -> None:
    """Shown masked; a PUT of what GET showed keeps the stored URL; a new one needs it whole."""
    chat = {"id": "ops", "channel": "chat", "url": CHAT_URL}
    status, created = await admin.call("PUT", "/subscriptions/ops", json=chat)
    assert (status, created["url"]) == (201, "slack://**********")
    _, listing = await admin.call("GET", "/subscriptions")
    _, shown = await admin.call("GET", "/subscriptions/ops")
    assert "XXXXXXXXXXXXXXXXXXXXXXXX" not in str(listing) + str(shown)

    edited = {k: v for k, v in shown.items() if k != "state"} | {"description": "ops room"}
    status, _ = await admin.call("PUT", "/subscriptions/ops", json=edited)
    assert status == 200
    status, _ = await admin.call("PATCH", "/subscriptions/ops", json={"url": shown["url"]})
    assert status == 200
    stored = await admin.service.store.get("ops")
    assert stored is not None
    assert (stored.url, stored.description) == (CHAT_URL, "ops room")

    status, body = await admin.call("POST", "/subscriptions", json={**edited, "id": "new"})
    assert status == 422
    assert body["fields"][0]["field"] == "url"


async def test_a_chat_url_to_a_private_host_gets_422(settings: Settings, redis: Redis) -> None:
    strict = settings.model_copy(update={"allow_private_targets": False})
    async with _served(strict, redis) as client:
        for url in ("json://127.0.0.1:9/hook", "ntfy://10.0.0.1/alerts", "form://localhost"):
            chat = {"id": "ops", "channel": "chat", "url": url}
            status, body = await client.call("PUT", "/subscriptions/ops", json=chat)
            assert status == 422, url
            assert body["fields"] == [{"field": "url", "message": body["error"]}]
        assert await client.service.store.get("ops") is None


def test_the_admin_api_needs_only_a_small_interface_of_the_service() -> None:
    """No import circle: the admin API is typed against a Protocol, not NotifierService."""
    code = "import sys, services.notifier.admin; print('services.notifier.service' in sys.modules)"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert loaded.stdout.strip() == "False"


async def test_redis_away_gets_503_not_a_crash(settings: Settings, tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", persist=False)
    server.start()
    client = connect(server.url)
    try:
        async with _served(settings.model_copy(update={"redis_url": server.url}), client) as api:
            assert (await api.call("GET", "/subscriptions"))[0] == 200
            server.stop()
            status, body = await api.call("GET", "/subscriptions")
            assert status == 503
            assert "Redis is not available" in body["error"]
    finally:
        server.stop()
        await client.aclose()
