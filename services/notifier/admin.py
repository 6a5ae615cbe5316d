"""The admin HTTP API: manage subscriptions at run time (bearer token, JSON, OpenAPI).

Mounted under ``/api/v1`` on the notifier's HTTP server. Every route needs
``Authorization: Bearer $VIGIL_ADMIN_TOKEN``; with no token configured the API refuses all
requests. Invalid input gets a 4xx whose message names the field.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web
from pydantic import ValidationError

from services.notifier.control import Notifier, sample_alert
from services.notifier.store import UnreadableSubscriptionError
from services.notifier.subscriptions import Subscription, keep_masked, new_subscription
from services.notifier.validation import SubscriptionRefusedError, check_subscription
from shared.logging import get_logger
from shared.resilience import TRANSIENT_ERRORS
from shared.settings import describe_validation_error
from shared.vocabulary import published_vocabulary

log = get_logger("admin")

BASE = "/api/v1"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, message: str, **extra: Any) -> web.HTTPException:
    body = orjson.dumps({"error": message, **extra}).decode()
    return _HTTP[status](text=body, content_type="application/json")


_HTTP: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
    422: web.HTTPUnprocessableEntity,
    503: web.HTTPServiceUnavailable,
}


class AdminApi:
    """Routes of the admin API over a running notifier."""

    def __init__(self, service: Notifier) -> None:
        self.service = service
        self.store = service.store
        token = service.settings.admin_token
        self._token = token.get_secret_value().encode() if token else None
        self._openapi = openapi_document()  # read at start: a broken file fails early

    def setup(self, app: web.Application) -> None:
        app.middlewares.append(self._auth)
        app.router.add_get(f"{BASE}/openapi.json", self.openapi)
        app.router.add_get(f"{BASE}/subscriptions", self.list)
        app.router.add_post(f"{BASE}/subscriptions", self.create)
        app.router.add_get(f"{BASE}/subscriptions/{{id}}", self.show)
        app.router.add_put(f"{BASE}/subscriptions/{{id}}", self.replace)
        app.router.add_patch(f"{BASE}/subscriptions/{{id}}", self.update)
        app.router.add_delete(f"{BASE}/subscriptions/{{id}}", self.delete)
        app.router.add_post(f"{BASE}/subscriptions/{{id}}/disable", self.disable)
        app.router.add_post(f"{BASE}/subscriptions/{{id}}/enable", self.enable)
        app.router.add_post(f"{BASE}/subscriptions/{{id}}/test", self.send_test)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith(f"{BASE}/"):
            return await handler(request)  # type: ignore[no-any-return]
        given = request.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        if self._token is None:
            raise _error(401, "the admin API is disabled: set VIGIL_ADMIN_TOKEN")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), self._token):
            log.warning("admin.unauthorized", path=request.path, remote=request.remote)
            raise _error(401, "missing or wrong bearer token")
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except TRANSIENT_ERRORS as error:  # Redis restarting or failing over: try again soon
            log.warning("admin.redis_unavailable", path=request.path, error=str(error))
            raise _error(503, "Redis is not available right now; try again shortly") from error

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as error:
            raise _error(400, f"body is not JSON: {error}") from error
        if not isinstance(body, dict):
            raise _error(400, "body must be a JSON object")
        return body

    async def _validate(self, data: dict[str, Any]) -> Subscription:
        """The subscription ``data`` describes, its filters checked against the published
        vocabulary; a 422 naming each bad field otherwise."""
        vocabulary = await published_vocabulary(self.store.redis)
        try:
            subscription = new_subscription(data, vocabulary)
            check_subscription(
                subscription, allow_private=self.service.settings.allow_private_targets
            )
        except ValidationError as error:
            fields = [
                {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
                for e in error.errors()
            ]
            raise _error(422, describe_validation_error(error, prefix=""), fields=fields) from error
        except SubscriptionRefusedError as error:
            raise _error(
                422, str(error), fields=[{"field": "url", "message": str(error)}]
            ) from error
        return subscription

    async def _stored(self, subscription_id: str) -> Subscription | None:
        """The stored subscription; None also for one this version cannot read (a PUT
        replaces it)."""
        try:
            return await self.store.get(subscription_id)
        except UnreadableSubscriptionError:
            return None

    async def _existing(self, request: web.Request) -> Subscription:
        try:
            subscription = await self.store.get(request.match_info["id"])
        except UnreadableSubscriptionError as error:
            raise _error(409, f"{error}; replace it with PUT") from error
        if subscription is None:
            raise _error(404, f"no subscription {request.match_info['id']!r}")
        return subscription

    async def _view(self, subscription: Subscription) -> dict[str, Any]:
        state = await self.store.state(subscription.id)
        return {**subscription.public(), "state": state.__dict__}

    async def openapi(self, _: web.Request) -> web.Response:
        return _json(self._openapi)

    async def list(self, _: web.Request) -> web.Response:
        return _json({"subscriptions": [await self._view(s) for s in await self.store.all()]})

    async def show(self, request: web.Request) -> web.Response:
        return _json(await self._view(await self._existing(request)))

    async def create(self, request: web.Request) -> web.Response:
        subscription = await self._validate(await self._body(request))
        if await self._stored(subscription.id) is not None:
            raise _error(409, f"subscription {subscription.id!r} exists; use PUT to replace it")
        await self.store.put(subscription)
        log.info("admin.subscription_created", subscription=subscription.id)
        return _json(await self._view(subscription), status=201)

    async def replace(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        body["id"] = request.match_info["id"]
        # What GET showed (a masked chat URL or secret) can be sent back: it keeps the stored.
        subscription = await self._validate(keep_masked(body, await self._stored(body["id"])))
        created = await self.store.put(subscription)
        log.info("admin.subscription_saved", subscription=subscription.id, created=created)
        return _json(await self._view(subscription), status=201 if created else 200)

    async def update(self, request: web.Request) -> web.Response:
        current = await self._existing(request)
        changes = await self._body(request)
        changes.pop("id", None)
        merged = keep_masked({**orjson.loads(current.stored()), **changes}, current)
        subscription = await self._validate(merged)
        await self.store.put(subscription)
        log.info("admin.subscription_updated", subscription=subscription.id, fields=sorted(changes))
        return _json(await self._view(subscription))

    async def delete(self, request: web.Request) -> web.Response:
        if not await self.store.delete(request.match_info["id"]):
            raise _error(404, f"no subscription {request.match_info['id']!r}")
        log.info("admin.subscription_deleted", subscription=request.match_info["id"])
        return web.Response(status=204)

    async def disable(self, request: web.Request) -> web.Response:
        await self._existing(request)
        updated = await self.store.disable(request.match_info["id"], "disabled by an operator")
        assert updated is not None
        return _json(await self._view(updated))

    async def enable(self, request: web.Request) -> web.Response:
        await self._existing(request)
        updated = await self.store.enable(request.match_info["id"])
        assert updated is not None
        return _json(await self._view(updated))

    async def send_test(self, request: web.Request) -> web.Response:
        subscription = await self._existing(request)
        alert = sample_alert(subscription.id)
        job_id = await self.service.send_test(subscription, alert)
        return _json({"job_id": job_id, "status": "scheduled"}, status=202)


OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of this API: ``openapi.yaml`` with the subscription's
    schema as the model declares it."""
    document: dict[str, Any] = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))
    del document["x-shared"]
    document["components"]["schemas"]["Subscription"] = Subscription.model_json_schema()
    return document
