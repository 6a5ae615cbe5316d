"""Console logins: the admin token buys a session kept in Redis, behind an HttpOnly,
SameSite=Strict cookie, with a CSRF token for its forms.

Sessions live server-side (``vigil:console:session:{sha256 of the cookie}``) so that logging
out, or changing ``VIGIL_ADMIN_TOKEN``, ends them on every replica at once; Redis never holds
a usable cookie. (aiohttp-session's Redis storage keeps the raw cookie as the key and needs a
client that does not decode responses, unlike ours.) Failed logins are counted per address:
past ``VIGIL_CONSOLE__LOGIN_ATTEMPTS`` in ten minutes the form refuses to try.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from redis.asyncio import Redis

from services.settings import Settings

PREFIX = "vigil:console:"
COOKIE = "vigil_session"
LOGIN_COOKIE = "vigil_login"  # the login form's CSRF token (double submit: no session yet)
FAILURE_WINDOW_SECONDS = 600


@dataclass(frozen=True)
class Session:
    """A logged-in browser: its CSRF token and when the session ends."""

    key: str
    csrf: str
    expires: float


SESSION: web.RequestKey[Session] = web.RequestKey("session", Session)
"""Where a guarded handler finds the request's session."""


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def same_origin(request: web.Request) -> bool:
    """A form posted from this console (a browser sends ``Origin`` with every POST)."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


class Sessions:
    """Logins, sessions and CSRF checks."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings.console
        token = settings.admin_token
        self._token = token.get_secret_value().encode() if token else None
        # Sessions remember which token opened them: a new token ends them all.
        self._token_mark = (
            hmac.new(self._token, b"vigil console session", "sha256").hexdigest()
            if self._token
            else ""
        )

    @property
    def enabled(self) -> bool:
        """Whether anyone can log in (``VIGIL_ADMIN_TOKEN`` is set)."""
        return self._token is not None

    @property
    def lifetime(self) -> int:
        return int(self.settings.session_hours * 3600)

    def _cookie(self, request: web.Request) -> dict[str, Any]:
        return {"httponly": True, "samesite": "Strict", "secure": request.secure, "path": "/"}

    def token_matches(self, given: str) -> bool:
        return self._token is not None and hmac.compare_digest(given.encode(), self._token)

    async def throttled(self, remote: str) -> bool:
        """Whether ``remote`` failed to log in too often lately."""
        failures = await self.redis.get(f"{PREFIX}login_failures:{remote}")
        return int(failures or 0) >= self.settings.login_attempts

    async def failed(self, remote: str) -> None:
        key = f"{PREFIX}login_failures:{remote}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, FAILURE_WINDOW_SECONDS, nx=True)
            await pipe.execute()

    async def start(self, request: web.Request, response: web.StreamResponse) -> Session:
        """Open a session and set its cookie on ``response``."""
        await self.redis.delete(f"{PREFIX}login_failures:{request.remote}")
        cookie = secrets.token_urlsafe(32)
        session = Session(_digest(cookie), secrets.token_urlsafe(32), time.time() + self.lifetime)
        key = f"{PREFIX}session:{session.key}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"csrf": session.csrf, "expires": session.expires,
                                    "token": self._token_mark})  # fmt: skip
            pipe.expireat(key, int(session.expires) + 1)
            await pipe.execute()
        response.set_cookie(COOKIE, cookie, max_age=self.lifetime, **self._cookie(request))
        response.del_cookie(LOGIN_COOKIE, path="/")
        return session

    async def current(self, request: web.Request) -> Session | None:
        """The request's session, if its cookie names a live one opened with this token."""
        cookie = request.cookies.get(COOKIE)
        if not cookie or not self.enabled:
            return None
        key = _digest(cookie)
        raw = await self.redis.hgetall(f"{PREFIX}session:{key}")
        fields = {str(k): str(v) for k, v in raw.items()}
        expires = float(fields.get("expires") or 0)
        if expires <= time.time() or not hmac.compare_digest(
            fields.get("token", ""), self._token_mark
        ):
            return None
        return Session(key, fields["csrf"], expires)

    async def end(self, session: Session, response: web.StreamResponse) -> None:
        """Log out: forget the session everywhere and drop the cookie."""
        await self.redis.delete(f"{PREFIX}session:{session.key}")
        response.del_cookie(COOKIE, path="/")

    @staticmethod
    def login_token(request: web.Request) -> str:
        """The login form's CSRF token: the browser's, or a new one."""
        return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)

    def set_login_token(
        self, request: web.Request, response: web.StreamResponse, token: str
    ) -> None:
        """Keep the login form's token in a short-lived cookie (double submit)."""
        response.set_cookie(LOGIN_COOKIE, token, max_age=3600, **self._cookie(request))

    @staticmethod
    def login_form_ok(request: web.Request, given: str) -> bool:
        expected = request.cookies.get(LOGIN_COOKIE, "")
        return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())

    @staticmethod
    def form_ok(session: Session, given: str) -> bool:
        return hmac.compare_digest(given.encode(), session.csrf.encode())
