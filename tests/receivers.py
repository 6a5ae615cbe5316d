"""The endpoints the notifier sends to in tests: one webhook receiver, one chat endpoint, one
mailbox for a real SMTP server (aiosmtpd).

:class:`Receiver` is every test's webhook subscriber: it verifies each Standard Webhooks
signature (a bad one fails the request, and the test), records every request with the status
it answered, and answers from a script. It serves ``POST /hook`` and ``POST /hook/{subscriber}``
(one receiver for several subscribers); :func:`served` puts it on a loopback port.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import Envelope, Session
from standardwebhooks import Webhook

from tests.helpers import local_server

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


@dataclass(frozen=True)
class Reply:
    """How the receiver answers one request; ``delay``: a slow endpoint."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    """One verified request and the status it was answered with."""

    subscriber: str
    """The path's last part (``/hook/{subscriber}``); empty for ``/hook``."""
    headers: dict[str, str]
    payload: dict[str, Any]
    status: int

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def alert_id(self) -> str:
        return str(self.payload["data"]["alert_id"])

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Receiver:
    """Answers ``answer()`` if set; else ``first_reply`` to the first request of each message
    (by ``webhook-id``) if set; else the next ``script`` entry; else ``default``."""

    url: str = ""
    script: list[Reply] = field(default_factory=list)
    first_reply: Reply | None = None
    answer: Callable[[], Reply] | None = None
    default: Reply = field(default_factory=Reply)
    secret: str = SECRET
    requests: list[Received] = field(default_factory=list)
    """Every request, recorded when it arrives (before a reply's delay)."""

    def url_for(self, subscriber: str) -> str:
        return f"{self.url}/{subscriber}"

    def routes(self, path: str = "/hook") -> list[web.RouteDef]:
        return [web.post(path, self.handle), web.post(path + "/{subscriber}", self.handle)]

    async def handle(self, request: web.Request) -> web.Response:
        headers = dict(request.headers)
        payload = Webhook(self.secret).verify(await request.read(), headers)
        reply = self._reply(first=headers["webhook-id"] not in self.ids)
        subscriber = request.match_info.get("subscriber", "")
        self.requests.append(Received(subscriber, headers, payload, reply.status))
        if reply.delay:
            await asyncio.sleep(reply.delay)  # a slow endpoint, not synchronisation
        return web.Response(status=reply.status, headers=reply.headers)

    def _reply(self, *, first: bool) -> Reply:
        if self.answer is not None:
            return self.answer()
        if first and self.first_reply is not None:
            return self.first_reply
        return self.script.pop(0) if self.script else self.default

    @property
    def ids(self) -> list[str]:
        """The ``webhook-id`` of every request, in arrival order."""
        return [received.webhook_id for received in self.requests]

    def accepted(self, subscriber: str | None = None) -> list[Received]:
        """Requests answered 2xx (of one subscriber, if given)."""
        return [
            received
            for received in self.requests
            if received.accepted and subscriber in (None, received.subscriber)
        ]

    def alert_ids(self, subscriber: str | None = None) -> set[str]:
        """The alerts accepted (by one subscriber, if given)."""
        return {received.alert_id for received in self.accepted(subscriber)}


@asynccontextmanager
async def served(receiver: Receiver) -> AsyncIterator[Receiver]:
    """``receiver`` on a loopback port, its ``url`` set."""
    app = web.Application()
    app.add_routes(receiver.routes())
    async with local_server(app) as base:
        receiver.url = f"{base}/hook"
        yield receiver


@dataclass
class ChatEndpoint:
    """A chat service as Apprise's ``json://`` plugin reaches it: records each message."""

    status: int = 200
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.Response(status=self.status)


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps messages, or answers RCPT with a scripted code."""

    refuse_rcpt: str | None = None
    refuse: dict[str, str] = field(default_factory=dict)
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.refuse_rcpt or address in self.refuse:
            return self.refuse_rcpt or self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Session, envelope: Envelope
    ) -> str:
        self.envelopes.append(envelope)
        raw = envelope.original_content or b""
        self.messages.append(message_from_bytes(raw, policy=policy.default))
        return "250 Message accepted"
