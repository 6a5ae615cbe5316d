"""The whole pipeline in this process, for tests that change the Redis under it.

A :class:`Wire` feed grows on demand (every item is a distinct story the classifier flags),
the one test :class:`~tests.receivers.Receiver` takes the signed webhooks of each subscriber,
and :func:`running_pipeline` runs poller, classifier and notifier (``run_services``) on any
``VIGIL_REDIS_URL``. Tests then judge by what the receiver saw: every item arrived, and each
alert came under one ``webhook-id`` only.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from services.runner import ALL_SERVICES, run_services
from services.settings import Settings
from tests.helpers import local_server, wait_for
from tests.receivers import SECRET, Received, Receiver

_STORIES = [
    ("Turkish drones strike PKK targets in northern Iraq ({n})",
     "Turkish armed drones struck PKK positions near Duhok in northern Iraq, the Turkish "
     "defence ministry said on Monday."),
    ("Turkey deploys troops to Libya ({n})",
     "Turkey sent more soldiers and military advisers to Tripoli, the Turkish defence "
     "ministry announced."),
    ("Erdogan threatens new military operation in northern Syria ({n})",
     "President Recep Tayyip Erdogan said Turkish forces could launch a new cross-border "
     "operation against Kurdish fighters in northern Syria."),
]  # fmt: skip


class Wire:
    """An RSS feed that carries items 0..count-1; :meth:`publish` adds more."""

    def __init__(self) -> None:
        self.count = 0

    def publish(self, items: int) -> None:
        self.count += items

    def urls(self) -> set[str]:
        return {_url(n) for n in range(self.count)}

    async def handle(self, _: web.Request) -> web.Response:
        items = []
        for n in range(self.count):
            title, text = _STORIES[n % len(_STORIES)]
            # Words of this item only: distinct stories, never near-duplicates of each other.
            words = " ".join(f"w{n}x{j}" for j in range(12))
            items.append(
                f"<item><title>{title.format(n=n)}</title><link>{_url(n)}</link>"
                f"<guid>wire-{n}</guid><description>{text} Filed under {words}.</description>"
                "</item>"
            )
        body = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
            f"<link>http://wire.test/</link><description>d</description>{''.join(items)}"
            "</channel></rss>"
        )
        return web.Response(text=body, content_type="application/rss+xml")


def _url(n: int) -> str:
    return f"http://wire.test/item/{n}"


@dataclass
class Flow:
    """A running pipeline: its feed, its receiver and its subscribers."""

    wire: Wire
    receiver: Receiver
    subscribers: tuple[str, ...]
    task: asyncio.Task[None]

    def urls(self, subscriber: str) -> set[str]:
        """The article URLs that reached ``subscriber``."""
        return {_article_url(r) for r in self.receiver.accepted(subscriber)}

    def delivered_all(self) -> bool:
        expected = self.wire.urls()
        return all(expected <= self.urls(s) for s in self.subscribers)

    def repeats(self, subscriber: str) -> int:
        """Deliveries beyond the first of each ``webhook-id`` (receivers dedupe those)."""
        counts = Counter(r.webhook_id for r in self.receiver.accepted(subscriber))
        return sum(n - 1 for n in counts.values())

    async def wait_delivered(self, timeout: float, message: str) -> None:  # noqa: ASYNC109
        try:
            await wait_for(self.delivered_all, timeout=timeout, message=message)
        except AssertionError as error:
            missing = {s: sorted(self.wire.urls() - self.urls(s)) for s in self.subscribers}
            raise AssertionError(f"{error}; missing: {missing}") from None

    def assert_one_id_per_alert(self) -> None:
        """No alert reached a subscriber under two webhook-ids (a retry keeps its id)."""
        for subscriber in self.subscribers:
            ids: dict[str, set[str]] = {}
            for received in self.receiver.accepted(subscriber):
                ids.setdefault(_article_url(received), set()).add(received.webhook_id)
            two = {url: i for url, i in ids.items() if len(i) > 1}
            assert not two, f"{subscriber} got alerts under several webhook-ids: {two}"


def _article_url(received: Received) -> str:
    return str(received.payload["data"]["article"]["url"])


async def ready(port: int) -> bool:
    """Whether the pipeline's ``/readyz`` on ``port`` says ready (False while it starts)."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/readyz") as response,
        ):
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def _ready(port: int, task: asyncio.Task[None]) -> bool:
    if task.done():
        task.result()  # raises what stopped it
        raise AssertionError("the pipeline stopped before it was ready")
    return await ready(port)


@asynccontextmanager
async def running_pipeline(
    settings: Settings, tmp_path: Path, *, subscribers: tuple[str, ...] = ("alpha", "beta")
) -> AsyncIterator[Flow]:
    """Poller, classifier and notifier on ``settings.redis_url``, one feed polled every
    second, each subscriber a signed webhook on loopback."""
    wire, receiver = Wire(), Receiver()
    app = web.Application()
    app.router.add_get("/feed.xml", wire.handle)
    app.add_routes(receiver.routes())
    async with local_server(app) as base:
        receiver.url = f"{base}/hook"
        (tmp_path / "sources.yaml").write_text(
            f"sources:\n  - {{id: wire, url: '{base}/feed.xml', interval: 1}}\n"
        )
        (tmp_path / "subscriptions.yaml").write_text("subscriptions:\n" + "".join(
            f"  - {{id: {s}, channel: webhook, url: '{receiver.url_for(s)}', secret: {SECRET}}}\n"
            for s in subscribers))  # fmt: skip
        config = settings.model_copy(update={
            "sources_file": tmp_path / "sources.yaml",
            "subscriptions_file": tmp_path / "subscriptions.yaml",
        })  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(run_services(config, ALL_SERVICES, stop=stop))
        flow = Flow(wire, receiver, subscribers, task)
        try:
            # Loading the lexicon takes seconds, more on a loaded machine: the tests' deadlines
            # count from a pipeline that is ready, not from one still starting.
            await wait_for(lambda: _ready(config.http.port, task), timeout=120,
                           message="the pipeline to be ready")  # fmt: skip
            yield flow
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)
