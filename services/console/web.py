"""The console's wiring: routes, login, the session guard and the security headers.

Served by the notifier's HTTP server (``vigil up``, ``vigil notifier``) at ``/``. Every page
but the login needs a session; every form carries the session's CSRF token and is refused
from another origin. Responses carry a strict Content-Security-Policy: scripts, styles and
images come from this server only (no CDN: the console works offline), no inline script.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from aiohttp import web
from redis.asyncio import Redis

from services.archive.reader import ArchiveReader
from services.console import metrics
from services.console.alerts import AlertViews
from services.console.claims import ClaimViews
from services.console.live import LiveFeed
from services.console.operations import DeadLetterViews, SourceViews
from services.console.pages import STATIC, render, see_other, setup_templates
from services.console.session import SESSION, Sessions, same_origin
from services.console.subscriptions import ConsoleNotifier, SubscriptionViews
from services.poller.sources import Source
from services.settings import Settings
from shared.logging import get_logger

log = get_logger("console")

FRAGMENT = "X-Vigil-Fragment"  # set by console.js when it refreshes part of a page
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # no-referrer would make form posts say Origin: null
    "Cross-Origin-Opener-Policy": "same-origin",
}


class Console:
    """The web console of one notifier process; its live feed runs as a component."""

    name = "console"

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        notifier: ConsoleNotifier,
        sources: Sequence[Source] = (),
    ) -> None:
        self.settings = settings
        self.sessions = Sessions(redis, settings)
        archive = ArchiveReader(redis)
        self.live = LiveFeed(archive)
        self.views = (
            AlertViews(archive, self.live),
            ClaimViews(archive),
            SubscriptionViews(notifier, redis),
            SourceViews(redis, sources),
            DeadLetterViews(redis),
        )

    def is_ready(self) -> bool:
        return self.live.is_ready()

    async def run(self, stop: asyncio.Event) -> None:
        await self.live.run(stop)

    def setup_app(self, app: web.Application) -> None:
        """Mount the console's routes and static files on the service's HTTP server."""
        setup_templates(app)
        app.on_response_prepare.append(_security_headers)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.guard(self.logout))
        app.router.add_static("/static/", STATIC, name="static", append_version=True)
        for views in self.views:
            for method, path, handler in views.routes():
                app.router.add_route(method, path, self.guard(handler))

    def guard(self, handler: Handler) -> Handler:
        """``handler`` for logged-in browsers only; its forms checked against CSRF."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            session = await self.sessions.current(request)
            if session is None:
                if request.method == "GET" and request.path == "/":
                    return self.login_page(request)
                stream = "text/event-stream" in request.headers.get("Accept", "")
                if request.method == "GET" and not stream and FRAGMENT not in request.headers:
                    raise web.HTTPSeeOther("/")
                raise web.HTTPUnauthorized(text="log in at /")
            request[SESSION] = session
            if request.method == "POST":
                form = await request.post()
                if not same_origin(request) or not self.sessions.form_ok(
                    session, str(form.get("csrf", ""))
                ):
                    log.warning("console.csrf_refused", path=request.path)
                    raise web.HTTPForbidden(
                        text="This form is stale or came from another site: reload the page."
                    )
            return await handler(request)

        return guarded

    def login_page(
        self, request: web.Request, *, error: str = "", status: int = 200
    ) -> web.Response:
        token = self.sessions.login_token(request)
        closed = not self.sessions.enabled
        context = {"error": error, "closed": closed, "login_csrf": token}
        response = render(request, "login.html.j2", context, status=status)
        self.sessions.set_login_token(request, response, token)
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        remote = request.remote or "unknown"
        refusal = await self._refusal(request, str(form.get("csrf", "")), remote)
        if refusal is None and not self.sessions.token_matches(str(form.get("token", ""))):
            await self.sessions.failed(remote)
            log.warning("console.login_failed", remote=remote)
            refusal = ("wrong_token", "That is not the admin token.", 401)
        if refusal is not None:
            outcome, message, status = refusal
            metrics.CONSOLE_LOGINS.labels(outcome).inc()
            return self.login_page(request, error=message, status=status)
        response = web.HTTPSeeOther("/")
        await self.sessions.start(request, response)
        metrics.CONSOLE_LOGINS.labels("ok").inc()
        log.info("console.login", remote=remote)
        raise response

    async def _refusal(
        self, request: web.Request, csrf: str, remote: str
    ) -> tuple[str, str, int] | None:
        """Why a login cannot even be tried: (outcome, message, status), or None."""
        if not self.sessions.enabled:
            return "closed", "The console is closed: set VIGIL_ADMIN_TOKEN.", 403
        if not same_origin(request) or not self.sessions.login_form_ok(request, csrf):
            return "stale_form", "The form expired: try again.", 403
        if await self.sessions.throttled(remote):
            log.warning("console.login_throttled", remote=remote)
            return "throttled", "Too many failed attempts: wait ten minutes.", 429
        return None

    async def logout(self, request: web.Request) -> web.StreamResponse:
        response = see_other("/", "logged_out")
        await self.sessions.end(request[SESSION], response)
        raise response


async def _security_headers(_: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
