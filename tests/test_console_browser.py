"""The console in a real browser: Debian's Chromium driven by Playwright.

The tests log in with the keyboard, watch a new alert arrive without a reload, open a claim's
evidence, create a subscription and see its test delivery in the log, replay a dead letter,
and check every view at phone width for sideways scrolling, unlabelled fields and contrast.
Any JavaScript error, console error (a CSP violation is one) or request to another host fails
them. ``VIGIL_SCREENSHOTS=docs/console`` also saves a screenshot of each view.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import (
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    Route,
    ViewportSize,
    async_playwright,
    expect,
)
from redis.asyncio import Redis

from services.poller.fetch import Validators
from services.poller.schedule import Schedule
from services.poller.state import StateStore
from services.settings import Settings
from shared.bus import StreamBus
from shared.models import Alert
from shared.streams import ALERTS, DEAD
from tests.console_support import TOKEN, console_settings, running_console
from tests.factories import make_alert
from tests.helpers import wait_for
from tests.receivers import SECRET, Receiver

CHROMIUM = "/usr/bin/chromium"
# A closed network: nothing of Chromium's own may try to reach the internet.
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = os.environ.get("VIGIL_SCREENSHOTS")
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


@dataclass
class Trouble:
    """Everything that must not happen in a page."""

    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)


@asynccontextmanager
async def browser(
    base_url: str, profile: Path, viewport: ViewportSize
) -> AsyncIterator[tuple[BrowserContext, Page, Trouble]]:
    """A fresh Chromium profile; requests to any other host are blocked and recorded."""
    trouble = Trouble()
    home = urlsplit(base_url).netloc

    async def only_home(route: Route) -> None:
        if urlsplit(route.request.url).netloc == home:
            await route.continue_()
        else:
            trouble.foreign.append(route.request.url)
            await route.abort()

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport=viewport, base_url=base_url,
        )  # fmt: skip
        try:
            await context.route("**/*", only_home)
            page = context.pages[0] if context.pages else await context.new_page()

            def page_error(error: Error) -> None:
                trouble.errors.append(f"page: {error}")

            def console_error(message: ConsoleMessage) -> None:
                if message.type == "error":  # a CSP violation is one
                    trouble.errors.append(f"console: {message.text}")

            page.on("pageerror", page_error)
            page.on("console", console_error)
            yield context, page, trouble
        finally:
            await context.close()
    assert trouble.errors == []
    assert trouble.foreign == []


async def log_in(page: Page) -> None:
    """With the keyboard only: the token field has the focus, Enter submits."""
    await page.goto("/")
    await expect(page.get_by_label("Admin token")).to_be_focused()
    await page.keyboard.type(TOKEN)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Alerts")).to_be_visible()


async def shot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        await asyncio.to_thread(Path(SCREENSHOTS).mkdir, parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def _alert(article_id: str, title: str, **extra: object) -> Alert:
    return make_alert(article_id, title=title, **extra)  # type: ignore[arg-type]


async def _history(redis: Redis) -> None:
    """Alerts (one story from two sources, contested) and a dead letter."""
    bus = StreamBus(redis)
    await bus.publish(
        ALERTS,
        _alert(
            "k1",
            "Armenia says Turkish F-16s flew over Karabakh",
            story_id="k",
            source="asbarez",
            theaters=("karabakh",),
            stances=("assertion",),
            claims=(("Armenia's defence ministry", "assertion", "karabakh"),),
            evidence="Armenia's defence ministry said Turkish F-16 jets had flown over the "
            "line of contact in support of Azerbaijani forces.",
        ),
    )
    await bus.publish(
        ALERTS,
        _alert(
            "k2",
            "Baku: Turkey's assistance is exclusively political",
            story_id="k",
            source="apa",
            theaters=("karabakh",),
            stances=("denial",),
            claims=(("Baku", "denial", "karabakh"),),
            evidence="Turkey's assistance is exclusively political, the Azerbaijani "
            "presidential aide told reporters in Baku.",
        ),
    )
    await bus.publish(
        ALERTS,
        _alert(
            "l1",
            "Turkish troops arrive in Tripoli, defence ministry says",
            claims=(("Turkish defence ministry", "acknowledgment", "libya"),),
        ),
    )
    await bus.publish(
        ALERTS,
        _alert(
            "s1",
            "Erdoğan threatens a new operation in northern Syria",
            source="daily-sabah",
            theaters=("syria",),
            stances=("threat",),
            claims=(("Erdoğan", "threat", "syria"),),
            evidence="We may come suddenly one night, Erdoğan said of the Kurdish-held towns "
            "in northern Syria.",
        ),
    )
    states = StateStore(redis)
    await states.success(
        "wire", outcome="ok", validators=Validators(None, None), new_items=14, interval=300
    )
    await states.failure(
        "post", outcome="network_error", error="Cannot connect to host post.example.org:443"
    )
    await Schedule(redis).register(["wire", "post"])
    await bus.dead_letter(
        stream=ALERTS, group="notifier", entry_id="1-1",
        fields={"type": "Alert", "v": "1",
                "data": _alert("d1", "Turkish drones over Somalia").model_dump_json()},
        reason="max_deliveries: the handler failed 5 times", deliveries=5, ack=False,
    )  # fmt: skip


async def _archived(redis: Redis, count: int) -> bool:
    return bool(await redis.zcard("vigil:{archive}:stored") >= count)


async def test_a_browser_session_from_login_to_replay(
    settings: Settings, redis: Redis, tmp_path: Path, receiver: Receiver
) -> None:
    settings = console_settings(settings, tmp_path)
    await _history(redis)
    async with (
        running_console(settings, redis) as console,
        browser(console.url, tmp_path / "profile", DESKTOP) as (_, page, _trouble),
    ):
        await wait_for(lambda: _archived(redis, 4), message="history archived")
        await log_in(page)
        await expect(page.get_by_text("reported by 2 sources")).to_be_visible()
        await expect(page.get_by_text("contested").first).to_be_visible()
        await shot(page, "alerts")

        # Live: a new alert appears at the top, the page is not reloaded.
        await page.evaluate("window.sameDocument = true")
        await expect(page.locator("#live-status")).to_contain_text("Live")
        frigate = _alert("live1", "Turkish frigate deployed off the Libyan coast")
        await StreamBus(redis).publish(ALERTS, frigate)
        first = page.locator("#stories > article").first
        await expect(first).to_contain_text("Turkish frigate deployed off the Libyan coast")
        await expect(page.locator("#live-status")).to_have_text("1 new alert arrived.")
        assert await page.evaluate("window.sameDocument") is True

        # The claims ledger: open a claim's evidence.
        await page.get_by_role("link", name="Claims", exact=True).click()
        theaters = page.get_by_role("navigation", name="Theaters")
        await theaters.get_by_role("link", name=re.compile(r"^karabakh")).click()
        row = page.locator(".ledger-row", has_text="Baku")
        quote = row.locator("blockquote")
        await expect(quote).to_be_hidden()
        await row.locator("summary").click()
        await expect(quote).to_be_visible()
        await expect(quote).to_contain_text("exclusively political")
        await expect(row.get_by_text("contested")).to_be_visible()
        await shot(page, "claims")
        await page.get_by_role("link", name="Baku", exact=True).first.click()
        await expect(page.get_by_role("heading", name="Baku")).to_be_visible()
        await shot(page, "claimant")

        # A subscription, its test delivery in its log.
        await page.get_by_role("link", name="Subscriptions", exact=True).click()
        await page.get_by_role("link", name="New subscription").click()
        await page.get_by_label("Id", exact=True).fill("newsroom")
        await page.get_by_role("radio", name="webhook").check()
        await page.get_by_role("textbox", name="URL").fill(receiver.url)
        await page.get_by_label("Signing secret").fill(SECRET)
        await page.get_by_role("checkbox", name="libya").check()
        await page.get_by_label("Claimants (part of the name").fill("ministry")
        await shot(page, "subscription-form")
        await page.get_by_role("button", name="Create").click()
        await expect(page.get_by_role("status")).to_have_text("Subscription created.")
        await page.get_by_role("button", name="Send test").click()
        log = page.locator("#delivery-log")
        await expect(log.locator("tr.outcome-delivered")).to_be_visible(timeout=15_000)
        await expect(log.locator("tr.outcome-delivered")).to_contain_text("200")
        await expect(log.locator("tr.outcome-delivered")).to_contain_text(" ms")
        assert receiver.requests[0].payload["type"] == "alert.test"
        assert SECRET not in await page.content()
        await page.reload()
        await expect(page.locator(".facts")).to_contain_text("Delivered1 (last")
        await shot(page, "subscription")
        await page.get_by_role("link", name="Subscriptions", exact=True).click()
        await expect(page.get_by_role("link", name="newsroom")).to_be_visible()
        await shot(page, "subscriptions")

        await page.get_by_role("link", name="Sources", exact=True).click()
        await expect(page.get_by_role("heading", name="Sources")).to_be_visible()
        await shot(page, "sources")

        # Dead letters: replay one, back where it came from.
        await page.get_by_role("link", name="Dead letters", exact=True).click()
        await expect(page.get_by_text("max_deliveries: the handler failed 5 times")).to_be_visible()
        await shot(page, "dead-letters")
        await page.get_by_role("button", name="Replay Turkish drones over Somalia").click()
        await expect(page.get_by_role("status")).to_contain_text("replayed")
        await expect(page.get_by_text("No dead letters.")).to_be_visible()
        assert await redis.xlen(DEAD) == 0
        await wait_for(lambda: _archived(redis, 6), message="the replayed alert archived")

        await page.get_by_role("button", name="Log out").click()
        await expect(page.get_by_label("Admin token")).to_be_visible()
        await page.goto("/claims")
        await expect(page.get_by_label("Admin token")).to_be_visible()  # no session, no data


async def test_every_view_works_at_phone_width_with_labels_and_contrast(
    settings: Settings, redis: Redis, tmp_path: Path, receiver: Receiver
) -> None:
    hook = f'  - {{id: newsroom, channel: webhook, url: "{receiver.url}", secret: "{SECRET}"}}\n'
    settings = console_settings(settings, tmp_path, "subscriptions:\n" + hook)
    await _history(redis)
    async with (
        running_console(settings, redis) as console,
        browser(console.url, tmp_path / "profile", PHONE) as (_, page, _trouble),
    ):
        await wait_for(lambda: _archived(redis, 4), message="history archived")
        await page.goto("/")
        await check_page(page, "/ (login)")
        await log_in(page)
        views = ["/", "/claims?theater=karabakh", "/subscriptions", "/subscriptions/new",
                 "/subscriptions/newsroom", "/sources", "/dead", "/dead/purge?all=1"]  # fmt: skip
        for path in views:
            await page.goto(path)
            await check_page(page, path)
        await page.goto("/")
        await shot(page, "alerts-phone")
        # The audit itself finds what it looks for (on a blank page: no CSP of ours applies).
        await page.goto("about:blank")
        await page.set_content(
            '<p style="color:#999">faint</p><input name="nameless">'
            '<div style="width:2000px">wide</div>'
        )
        problems = await page.evaluate(_AUDIT)
        assert len(problems) == 3, problems


# The page audit (tests/console_audit.js): sideways scrolling, unlabelled fields, contrast.
_AUDIT = (Path(__file__).parent / "console_audit.js").read_text()


async def check_page(page: Page, where: str) -> None:
    problems = await page.evaluate(_AUDIT)
    assert problems == [], f"{where}: {problems}"
