"""The admin HTTP API: manage subscriptions at run time (bearer token, JSON, OpenAPI).

Mounted under ``/api/v1`` on the notifier's HTTP server. Every route needs
``Authorization: Bearer $VIGIL_ADMIN_TOKEN``; with no token configured the API refuses all
requests. Invalid input gets a 4xx whose message names the field.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import structlog
from aiohttp import web
from pydantic import ValidationError

from services.notifier.store import SubscriptionStore, UnreadableSubscriptionError
from services.notifier.subscriptions import Subscription, keep_masked, new_subscription
from services.notifier.validation import SubscriptionRefusedError, check_subscription
from services.settings import Settings
from shared.models import Alert, Article, Claim, Classification
from shared.resilience import TRANSIENT_ERRORS
from shared.settings import describe_validation_error
from shared.vocabulary import published_vocabulary

log = structlog.get_logger(component="admin")

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


def test_alert(subscription_id: str, now: datetime) -> Alert:
    """The sample alert sent by "send a test event"."""
    article = Article(
        id=f"test-{subscription_id}",
        url="https://example.org/vigil-test-event",
        title="Vigil test event: Turkish drones reported over a test theater",
        text="This is a test event sent from the Vigil admin API.",
        source="vigil-test",
        published_at=now,
        fetched_at=now,
    )
    claim = Claim(
        claimant="Vigil",
        stance="report",
        evidence="This is a test event sent from the Vigil admin API.",
    )
    verdict = Classification(
        id=article.id,
        flagged=True,
        score=1.0,
        theaters=["other"],
        stances=["report"],
        claims=[claim],
        evidence=[claim.evidence],
    )
    return Alert(alert_id=f"alert_test_{subscription_id}", article=article, classification=verdict)


class Notifier(Protocol):
    """What the admin API needs of a running notifier."""

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> SubscriptionStore: ...

    async def send_test(self, subscription: Subscription, alert: Alert) -> str:
        """Schedule a test event for ``subscription`` now; returns its job id."""
        ...


class AdminApi:
    """Routes of the admin API over a running notifier."""

    def __init__(self, service: Notifier) -> None:
        self.service = service
        self.store = service.store
        token = service.settings.admin_token
        self._token = token.get_secret_value().encode() if token else None

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
        return _json(openapi_document())

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
        alert = test_alert(subscription.id, datetime.now(UTC))
        job_id = await self.service.send_test(subscription, alert)
        return _json({"job_id": job_id, "status": "scheduled"}, status=202)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of this API."""
    ref = {"$ref": "#/components/schemas/Subscription"}
    error = {
        "description": "error",
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"error": {"type": "string"}}}
            }
        },
    }
    item = {
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    }
    body = {"required": True, "content": {"application/json": {"schema": ref}}}
    ok = {"description": "the subscription", "content": {"application/json": {"schema": ref}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Vigil admin API", "version": "1"},
        "components": {
            "schemas": {"Subscription": Subscription.model_json_schema()},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            f"{BASE}/subscriptions": {
                "get": {
                    "summary": "List subscriptions with their delivery state",
                    "responses": {"200": {"description": "subscriptions"}, "401": error},
                },
                "post": {
                    "summary": "Create a subscription",
                    "requestBody": body,
                    "responses": {"201": ok, "409": error, "422": error, "401": error},
                },
            },
            f"{BASE}/subscriptions/{{id}}": {
                **item,
                "get": {"summary": "Show one", "responses": {"200": ok, "404": error}},
                "put": {
                    "summary": "Create or replace",
                    "requestBody": body,
                    "responses": {"200": ok, "201": ok, "422": error},
                },
                "patch": {
                    "summary": "Change some fields",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "responses": {"200": ok, "404": error, "422": error},
                },
                "delete": {
                    "summary": "Delete",
                    "responses": {"204": {"description": "deleted"}, "404": error},
                },
            },
            f"{BASE}/subscriptions/{{id}}/disable": {
                **item,
                "post": {"summary": "Stop deliveries", "responses": {"200": ok, "404": error}},
            },
            f"{BASE}/subscriptions/{{id}}/enable": {
                **item,
                "post": {"summary": "Resume deliveries", "responses": {"200": ok, "404": error}},
            },
            f"{BASE}/subscriptions/{{id}}/test": {
                **item,
                "post": {
                    "summary": "Send a test event",
                    "responses": {"202": {"description": "scheduled"}, "404": error},
                },
            },
        },
    }
