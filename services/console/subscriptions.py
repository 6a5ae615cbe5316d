"""Subscriptions in the console: list, create, edit filters, enable and disable, rotate the
signing secret, send a test; and per subscriber the delivery log, with replay of a
dead-lettered delivery and "retry now" for one waiting to be retried.

Secrets are write-only here as everywhere: the form never shows a webhook secret or a chat
URL, and leaving them untouched keeps the stored ones.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from aiohttp import web
from pydantic import ValidationError
from redis.asyncio import Redis

from services.console.forms import LIST_FILTERS, field_errors, subscription_data
from services.console.pages import fragment, render, see_other
from services.notifier.channels.registry import CHANNELS
from services.notifier.control import Notifier, sample_alert
from services.notifier.deliverylog import DeliveryLog
from services.notifier.jobs import JOBS
from services.notifier.queue import JobQueue
from services.notifier.state import subscription_health
from services.notifier.subscriptions import Subscription, masked_url, new_subscription
from services.notifier.validation import SubscriptionRefusedError, check_subscription
from shared.bus import StreamBus
from shared.vocabulary import Vocabulary, published_vocabulary

LOG_LINES = 50
KEPT_SECRETS = 3  # the current one and up to two being rotated out


class ConsoleNotifier(Notifier, Protocol):
    """What the console needs of a running notifier, beyond the admin API's needs."""

    @property
    def queue(self) -> JobQueue: ...

    def wake(self) -> None: ...


class SubscriptionViews:
    """``/subscriptions`` and everything under it."""

    def __init__(self, notifier: ConsoleNotifier, redis: Redis) -> None:
        self.notifier = notifier
        self.store = notifier.store
        self.bus = StreamBus(redis)
        self.redis = redis
        self.history = DeliveryLog(redis, notifier.settings.notifier.delivery_log_length)

    def routes(self) -> list[tuple[str, str, Any]]:
        base = "/subscriptions/{id}"
        return [
            ("GET", "/subscriptions", self.list),
            ("GET", "/subscriptions/new", self.new),
            ("POST", "/subscriptions", self.create),
            ("GET", base, self.show),
            ("GET", f"{base}/log", self.log),
            ("GET", f"{base}/edit", self.edit),
            ("POST", base, self.update),
            ("POST", f"{base}/enable", self.enable),
            ("POST", f"{base}/disable", self.disable),
            ("POST", f"{base}/test", self.send_test),
            ("POST", f"{base}/rotate", self.rotate),
            ("POST", f"{base}/rotation/end", self.end_rotation),
            ("POST", f"{base}/replay", self.replay),
            ("POST", f"{base}/retry", self.retry),
        ]

    async def _existing(self, request: web.Request) -> Subscription:
        subscription = await self.store.get(request.match_info["id"])
        if subscription is None:
            raise web.HTTPNotFound(text=f"no subscription {request.match_info['id']!r}")
        return subscription

    def _check(self, subscription: Subscription) -> Subscription:
        check_subscription(subscription, allow_private=self.notifier.settings.allow_private_targets)
        return subscription

    async def _validated(
        self, request: web.Request, data: dict[str, Any], stored: Subscription | None
    ) -> Subscription | web.Response:
        """The subscription the form describes (its filters checked against the published
        vocabulary), or the form again with its errors."""
        vocabulary = await published_vocabulary(self.redis)
        try:
            return self._check(new_subscription(data, vocabulary))
        except ValidationError as error:
            errors = field_errors(error)
        except SubscriptionRefusedError as error:
            errors = {"url": str(error)}
        return self._form(request, values=data, stored=stored, errors=errors, vocabulary=vocabulary)

    def _form(
        self,
        request: web.Request,
        *,
        values: dict[str, Any],
        stored: Subscription | None,
        vocabulary: Vocabulary,
        errors: dict[str, str] | None = None,
    ) -> web.Response:
        if values.get("channel") == "chat" and values.get("url"):
            # A chat URL holds tokens: the form shows its scheme only, even back to its author.
            values = {**values, "url": masked_url(str(values["url"]))}
        filters = values.get("filters") or {}
        lists = {name: ", ".join(filters.get(name) or []) for name in LIST_FILTERS}
        return render(request, "subscription_form.html.j2", {
            "values": values,
            "filters": filters,
            "lists": lists,
            "stored": stored,
            "errors": errors or {},
            "channels": list(CHANNELS),
            "theaters": vocabulary.theaters,
            "stances": vocabulary.stances,
        }, status=422 if errors else 200)  # fmt: skip

    async def list(self, request: web.Request) -> web.Response:
        now = time.time()
        rows = [
            {**row, "health": subscription_health({**row["subscription"], **row}, now)}
            for row in await self.store.overview()
        ]
        return render(request, "subscriptions.html.j2", {"rows": rows})

    async def new(self, request: web.Request) -> web.Response:
        values = {"channel": "webhook", "enabled": True}
        vocabulary = await published_vocabulary(self.redis)
        return self._form(request, values=values, stored=None, vocabulary=vocabulary)

    async def create(self, request: web.Request) -> web.Response:
        form = await request.post()
        subscription_id = str(form.get("id", "")).strip()
        data = subscription_data(form, subscription_id, None)
        subscription = await self._validated(request, data, None)
        if isinstance(subscription, web.Response):
            return subscription
        if await self.store.get(subscription.id) is not None:
            errors = {"id": f"a subscription {subscription.id!r} exists already"}
            vocabulary = await published_vocabulary(self.redis)
            return self._form(
                request, values=data, stored=None, vocabulary=vocabulary, errors=errors
            )
        await self.store.put(subscription)
        raise see_other(f"/subscriptions/{subscription.id}", "created")

    async def show(self, request: web.Request) -> web.Response:
        subscription = await self._existing(request)
        state = await self.store.state(subscription.id)
        health = subscription_health(
            {"enabled": subscription.enabled, "state": state.__dict__}, time.time()
        )
        return render(request, "subscription.html.j2", {
            "subscription": subscription,
            "view": subscription.public(),
            "state": state,
            "health": health,
            **await self._log_context(subscription.id),
        })  # fmt: skip

    async def log(self, request: web.Request) -> web.Response:
        """The delivery log alone (the page refreshes it while open)."""
        subscription = await self._existing(request)
        html = fragment(request, "_log.html.j2", {
            "subscription": subscription, **await self._log_context(subscription.id)
        })  # fmt: skip
        no_store = {"Cache-Control": "no-store"}
        return web.Response(text=html, content_type="text/html", headers=no_store)

    async def _log_context(self, subscription_id: str) -> dict[str, Any]:
        lines = await self.history.lines(subscription_id, count=LOG_LINES)
        job_ids = list(dict.fromkeys(line.job_id for line in lines if line.outcome == "retry"))
        waiting = {
            job for job, body in zip(job_ids, await self.redis.hmget(JOBS, job_ids), strict=True)
            if body is not None
        } if job_ids else set()  # fmt: skip
        dead = {
            line.dead_id
            for line in lines
            if line.dead_id and await self.bus.get_dead_letter(line.dead_id) is not None
        }
        return {"lines": lines, "waiting": waiting, "replayable": dead}

    async def edit(self, request: web.Request) -> web.Response:
        stored = await self._existing(request)
        vocabulary = await published_vocabulary(self.redis)
        return self._form(request, values=stored.public(), stored=stored, vocabulary=vocabulary)

    async def update(self, request: web.Request) -> web.Response:
        stored = await self._existing(request)
        data = subscription_data(await request.post(), stored.id, stored)
        subscription = await self._validated(request, data, stored)
        if isinstance(subscription, web.Response):
            return subscription
        await self.store.put(subscription)
        raise see_other(f"/subscriptions/{stored.id}", "saved")

    async def enable(self, request: web.Request) -> web.Response:
        await self._existing(request)
        await self.store.enable(request.match_info["id"])
        raise see_other(f"/subscriptions/{request.match_info['id']}", "enabled")

    async def disable(self, request: web.Request) -> web.Response:
        await self._existing(request)
        await self.store.disable(request.match_info["id"], "disabled in the console")
        raise see_other(f"/subscriptions/{request.match_info['id']}", "disabled")

    async def send_test(self, request: web.Request) -> web.Response:
        subscription = await self._existing(request)
        await self.notifier.send_test(subscription, sample_alert(subscription.id))
        raise see_other(f"/subscriptions/{subscription.id}", "test")

    async def rotate(self, request: web.Request) -> web.Response:
        """A new signing secret; the old one keeps signing until the rotation ends."""
        stored = await self._existing(request)
        form = await request.post()
        data = stored.model_dump(mode="json", context={"reveal": True})
        data["secret"] = str(form.get("secret", "")).strip()
        if stored.secret is not None:
            old = [stored.secret.get_secret_value(), *data["previous_secrets"]]
            data["previous_secrets"] = old[: KEPT_SECRETS - 1]
        try:  # the filters are as stored: only the secrets change
            subscription = self._check(Subscription.model_validate(data))
        except ValidationError as error:
            return render(request, "error.html.j2", {
                "title": "The secret was not rotated",
                "message": "; ".join(f"{k}: {v}" for k, v in field_errors(error).items()),
                "back": f"/subscriptions/{stored.id}",
            }, status=422)  # fmt: skip
        await self.store.put(subscription)
        raise see_other(f"/subscriptions/{stored.id}", "rotated")

    async def end_rotation(self, request: web.Request) -> web.Response:
        stored = await self._existing(request)
        await self.store.put(stored.model_copy(update={"previous_secrets": []}))
        raise see_other(f"/subscriptions/{stored.id}", "rotation_ended")

    async def replay(self, request: web.Request) -> web.Response:
        """Put a dead-lettered delivery back: same job, same ``webhook-id``."""
        await self._existing(request)
        form = await request.post()
        replayed = await self.bus.replay(str(form.get("dead_id", "")))
        notice = "replayed" if replayed else "not_replayed"
        raise see_other(f"/subscriptions/{request.match_info['id']}", notice)

    async def retry(self, request: web.Request) -> web.Response:
        """Send a delivery waiting for its next retry now."""
        await self._existing(request)
        form = await request.post()
        hurried = await self.notifier.queue.hurry(str(form.get("job_id", "")), time.time())
        if hurried:
            self.notifier.wake()
        notice = "hurried" if hurried else "not_waiting"
        raise see_other(f"/subscriptions/{request.match_info['id']}", notice)
