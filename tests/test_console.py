"""The console over real HTTP: login and sessions, CSRF, headers, secrets, and each view."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.notifier.deliverylog import DeliveryLog
from services.notifier.store import SubscriptionStore
from services.poller.fetch import Validators
from services.poller.state import StateStore
from services.settings import Settings
from shared.bus import StreamBus
from shared.streams import ALERTS, DEAD
from tests.console_support import (
    TOKEN,
    browser_like,
    console_settings,
    csrf_of,
    logged_in,
    page_csrf,
    running_console,
)
from tests.factories import make_alert
from tests.helpers import wait_for
from tests.receivers import SECRET, Receiver

CHAT_TOKEN = "T0SECRET/B0SECRET/XXSECRETXXSECRETXX"
SUBSCRIPTIONS = f"""
subscriptions:
  - {{id: ops-chat, channel: chat, url: "slack://{CHAT_TOKEN}"}}
"""


async def _archived(redis: Redis, count: int) -> bool:
    return bool(await redis.zcard("vigil:{archive}:stored") >= count)


async def test_without_a_session_there_is_only_the_login_page(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    settings = console_settings(settings, tmp_path)
    await StreamBus(redis).publish(ALERTS, make_alert("a1", title="Drones over Tripoli"))
    async with running_console(settings, redis) as console:
        await wait_for(lambda: _archived(redis, 1), message="alert archived")
        async with aiohttp.ClientSession(base_url=console.url) as anonymous:
            async with anonymous.get("/") as page:
                html = await page.text()
                assert page.status == 200
            assert 'type="password"' in html
            assert '<label for="token">Admin token</label>' in html
            assert "Drones over Tripoli" not in html
            for path in ("/claims", "/subscriptions", "/sources", "/dead", "/alerts/x"):
                async with anonymous.get(path, allow_redirects=False) as reply:
                    assert reply.status == 303, path
                    assert reply.headers["Location"] == "/"
            async with anonymous.get("/events", headers={"Accept": "text/event-stream"}) as reply:
                assert reply.status == 401
            async with anonymous.post("/dead/purge", data={"confirm": "yes", "all": "1"}) as reply:
                assert reply.status == 401
            # The operational endpoints stay open, the admin API keeps its bearer token.
            async with anonymous.get("/metrics") as reply:
                assert reply.status == 200
            async with anonymous.get("/api/v1/subscriptions") as reply:
                assert reply.status == 401


async def test_a_wrong_token_gets_a_message_and_no_session_and_attempts_are_limited(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    settings = console_settings(settings, tmp_path)
    before = REGISTRY.get_sample_value("vigil_console_logins_total", {"outcome": "wrong_token"})
    assert before is not None
    async with running_console(settings, redis) as console, browser_like(console.url) as client:
        jar = client.cookie_jar
        for _ in range(settings.console.login_attempts):
            csrf = await page_csrf(client, "/")
            async with client.post("/login", data={"token": "guess", "csrf": csrf}) as reply:
                assert reply.status == 401
                assert "That is not the admin token." in await reply.text()
            assert "vigil_session" not in {c.key for c in jar}
        assert (
            REGISTRY.get_sample_value("vigil_console_logins_total", {"outcome": "wrong_token"})
            == before + settings.console.login_attempts
        )
        async with client.get("/claims", allow_redirects=False) as reply:
            assert reply.status == 303
        # Past the limit even the right token waits.
        csrf = await page_csrf(client, "/")
        async with client.post("/login", data={"token": TOKEN, "csrf": csrf}) as reply:
            assert reply.status == 429
            assert "Too many failed attempts" in await reply.text()
        assert "vigil_session" not in {c.key for c in jar}


async def test_a_session_is_an_httponly_strict_expiring_cookie_ended_by_logout(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    settings = console_settings(settings, tmp_path)
    async with running_console(settings, redis) as console:
        async with browser_like(console.url) as client:
            jar = client.cookie_jar
            csrf = await page_csrf(client, "/")
            async with client.post(
                "/login", data={"token": TOKEN, "csrf": csrf}, allow_redirects=False
            ) as reply:
                assert reply.status == 303
                cookie = reply.headers["Set-Cookie"]
            assert re.search(r"vigil_session=[\w-]{40,};", cookie)
            assert "HttpOnly" in cookie
            assert "SameSite=Strict" in cookie
            assert "Max-Age=43200" in cookie  # VIGIL_CONSOLE__SESSION_HOURS, 12 by default
            assert "Path=/" in cookie
            value = next(c.value for c in jar if c.key == "vigil_session")
            async with client.get("/claims") as reply:
                assert reply.status == 200
            csrf = await page_csrf(client, "/claims")
            async with client.post("/logout", data={"csrf": csrf}) as reply:
                assert "You are logged out." in await reply.text()
        # The old cookie is worth nothing now, wherever it was copied.
        async with (
            aiohttp.ClientSession(base_url=console.url, cookies={"vigil_session": value}) as stolen,
            stolen.get("/claims", allow_redirects=False) as reply,
        ):
            assert reply.status == 303


async def test_forms_without_the_csrf_token_or_from_another_site_are_refused(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    settings = console_settings(settings, tmp_path, SUBSCRIPTIONS)
    async with running_console(settings, redis) as console, logged_in(console.url) as client:
        csrf = await page_csrf(client, "/subscriptions/ops-chat")
        async with client.post("/subscriptions/ops-chat/disable", data={"csrf": "x"}) as reply:
            assert reply.status == 403
        async with client.post(
            "/subscriptions/ops-chat/disable",
            data={"csrf": csrf},
            headers={"Origin": "https://evil.example"},
        ) as reply:
            assert reply.status == 403
        subscription = await SubscriptionStore(redis).get("ops-chat")
        assert subscription is not None
        assert subscription.enabled
        async with client.post("/subscriptions/ops-chat/disable", data={"csrf": csrf}) as reply:
            assert reply.status == 200
            assert "Deliveries stopped." in await reply.text()
        subscription = await SubscriptionStore(redis).get("ops-chat")
        assert subscription is not None
        assert not subscription.enabled


async def test_pages_carry_a_csp_and_load_nothing_from_another_host(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    settings = console_settings(settings, tmp_path)
    async with running_console(settings, redis) as console, logged_in(console.url) as client:
        for path in ("/", "/claims", "/subscriptions", "/subscriptions/new", "/sources", "/dead"):
            async with client.get(path) as reply:
                assert reply.status == 200, path
                csp = reply.headers["Content-Security-Policy"]
                assert "default-src 'none'" in csp
                assert "script-src 'self'" in csp
                assert reply.headers["X-Frame-Options"] == "DENY"
                assert reply.headers["Cache-Control"] == "no-store"
                html = await reply.text()
            assets = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="([^"]+)"', html)
            assert assets
            assert all(asset.startswith("/static/") for asset in assets), assets
            assert "<script>" not in html  # no inline script (the CSP would block it anyway)
            for asset in assets:
                async with client.get(asset) as reply:
                    assert reply.status == 200


async def test_secrets_are_never_shown(
    settings: Settings, redis: Redis, tmp_path: Path, receiver: Receiver
) -> None:
    hook = f"""
  - {{id: newsroom, channel: webhook, url: "{receiver.url}", secret: "{SECRET}"}}
"""
    settings = console_settings(settings, tmp_path, SUBSCRIPTIONS + hook)
    async with running_console(settings, redis) as console, logged_in(console.url) as client:
        pages = []
        for path in ("/subscriptions", "/subscriptions/ops-chat", "/subscriptions/ops-chat/edit",
                     "/subscriptions/newsroom", "/subscriptions/newsroom/edit"):  # fmt: skip
            async with client.get(path) as reply:
                assert reply.status == 200
                pages.append(await reply.text())
        # A failed save shows the form again, still without the stored chat URL.
        csrf = csrf_of(pages[2])
        async with client.post(
            "/subscriptions/ops-chat", data={"csrf": csrf, "url": "slack://**********",
                                             "min_score": "7"}
        ) as reply:  # fmt: skip
            assert reply.status == 422
            pages.append(await reply.text())
        assert "less than or equal to 1" in pages[-1]
        for html in pages:
            assert "SECRET" not in html
            assert SECRET not in html
            assert SECRET.removeprefix("whsec_") not in html
        assert "slack://**********" in pages[1]
        # Saving the masked URL keeps the stored one.
        async with client.post(
            "/subscriptions/ops-chat", data={"csrf": csrf, "url": "slack://**********",
                                             "theaters": "libya"}
        ) as reply:  # fmt: skip
            assert reply.status == 200
    stored = await SubscriptionStore(redis).get("ops-chat")
    assert stored is not None
    assert stored.url == f"slack://{CHAT_TOKEN}"
    assert stored.filters.theaters == ["libya"]


async def test_the_alerts_view_filters_pages_and_counts_sources(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    settings = console_settings(settings, tmp_path)
    bus = StreamBus(redis)
    await bus.publish(ALERTS, make_alert("k1", story_id="s1", title="Drones over Karabakh",
                                         theaters=("karabakh",),
                                         claims=(("Armenia's defence ministry", "assertion",
                                                  "karabakh"),)))  # fmt: skip
    await bus.publish(ALERTS, make_alert("k2", story_id="s1", source="apa",
                                         title="Drones over Karabakh denied",
                                         theaters=("karabakh",),
                                         claims=(("Baku", "denial", "karabakh"),)))  # fmt: skip
    for n in range(30):
        await bus.publish(ALERTS, make_alert(f"l{n}", title=f"Libya item {n}"))
    async with running_console(settings, redis) as console, logged_in(console.url) as client:
        await wait_for(lambda: _archived(redis, 32), message="alerts archived")
        async with client.get("/?theater=karabakh") as reply:
            html = await reply.text()
        assert "Drones over Karabakh" in html
        assert "reported by 2 sources" in html
        assert "contested" in html
        assert "Libya item" not in html
        async with client.get("/?claimant=baku") as reply:
            assert "Drones over Karabakh" in await reply.text()
        async with client.get("/") as reply:
            html = await reply.text()
        assert "Libya item 29" in html
        assert "Libya item 5<" in html
        assert "Libya item 4<" not in html  # 25 a page
        older = re.search(r'href="/\?before=(\d+)"', html)
        assert older
        async with client.get(f"/?before={older[1]}") as reply:
            html = await reply.text()
        assert "Libya item 4" in html
        assert "Drones over Karabakh" in html
        assert "Libya item 29" not in html
        short = re.search(r'href="/alerts/(\w+)">Drones over Karabakh', html)
        assert short
        async with client.get(f"/alerts/{short[1]}") as reply:
            story = await reply.text()
        assert "Reported by 2 sources" in story
        assert "Drones over Karabakh denied" in story
        async with client.get("/claims?theater=karabakh") as reply:
            ledger = await reply.text()
        assert "Baku" in ledger
        assert "Armenia&#39;s defence ministry" in ledger
        async with client.get("/claims/claimant?name=baku") as reply:
            claimant = await reply.text()
        assert "denial" in claimant
        assert "Drones over Karabakh denied" in claimant


async def test_new_alerts_stream_live_to_the_alerts_view(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    settings = console_settings(settings, tmp_path)
    async with running_console(settings, redis) as console, logged_in(console.url) as client:
        async with client.get("/events?theater=syria") as stream:
            assert stream.headers["Content-Type"] == "text/event-stream"
            bus = StreamBus(redis)
            await bus.publish(ALERTS, make_alert("x1", title="Not Syria"))
            await bus.publish(ALERTS, make_alert("x2", title="Raid near Idlib",
                                                 theaters=("syria",)))  # fmt: skip
            received = ""
            async with asyncio.timeout(10):
                while "Raid near Idlib" not in received:
                    received += (await stream.content.readline()).decode()
            # Stopping the service ends the open stream at once (no wait for the grace).
            console.stop.set()
            async with asyncio.timeout(5):
                while not stream.content.at_eof():
                    await stream.content.readany()
        assert "event: alert" in received
        assert "Not Syria" not in received


async def test_subscriptions_are_managed_and_their_deliveries_logged(
    settings: Settings, redis: Redis, tmp_path: Path, receiver: Receiver
) -> None:
    settings = console_settings(settings, tmp_path)
    async with running_console(settings, redis) as console, logged_in(console.url) as client:
        csrf = await page_csrf(client, "/subscriptions/new")
        form = {"csrf": csrf, "id": "desk", "channel": "webhook", "url": receiver.url,
                "secret": SECRET, "theaters": ["libya", "syria"], "min_score": "0.5",
                "claimants": "ministry, Baku", "mode": "instant", "enabled": "1"}  # fmt: skip
        async with client.post("/subscriptions", data=form) as reply:
            assert reply.status == 200
            html = await reply.text()
        assert "Subscription created." in html
        stored = await SubscriptionStore(redis).get("desk")
        assert stored is not None
        assert stored.filters.theaters == ["libya", "syria"]
        assert stored.filters.claimants == ["ministry", "Baku"]
        # The same id twice is refused, with the field named.
        async with client.post("/subscriptions", data={**form, "csrf": csrf}) as reply:
            assert reply.status == 422
            assert "exists already" in await reply.text()
        async with client.post("/subscriptions/desk/test", data={"csrf": csrf}) as reply:
            assert "Test event queued" in await reply.text()
        await wait_for(lambda: receiver.requests, message="test delivery")

        async def logged() -> str | None:
            async with client.get("/subscriptions/desk/log") as reply:
                html = await reply.text()
            return html if "delivered" in html else None

        log = await wait_for(logged, message="the test delivery in the log")
        assert "Vigil test event" in log
        assert re.search(r"<td>\d+ ms</td>", log)
        assert "<td>200</td>" in log
        # Rotation: the new secret signs, the old one too until the rotation ends.
        new_secret = "whsec_" + "A" * 32
        async with client.post("/subscriptions/desk/rotate",
                               data={"csrf": csrf, "secret": new_secret}) as reply:  # fmt: skip
            assert "Secret rotated" in await reply.text()
        rotated = await SubscriptionStore(redis).get("desk")
        assert rotated is not None
        assert rotated.signing_secrets() == [new_secret, SECRET]


async def test_dead_letters_are_listed_replayed_and_purged_after_confirmation(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    settings = console_settings(settings, tmp_path)
    bus = StreamBus(redis)
    for n in range(3):
        await bus.dead_letter(stream=ALERTS, group="notifier", entry_id=f"1-{n}",
                              fields={"type": "Alert", "v": "1",
                                      "data": make_alert(f"d{n}", title=f"Dead {n}")
                                      .model_dump_json()},
                              reason=f"decode: broken {n}", deliveries=1, ack=False)  # fmt: skip
    async with running_console(settings, redis) as console, logged_in(console.url) as client:
        async with client.get("/dead") as reply:
            html = await reply.text()
        assert all(f"decode: broken {n}" in html for n in range(3))
        ids = re.findall(r'name="id" value="([\d-]+)"', html)
        assert len(ids) == 3
        csrf = csrf_of(html)
        async with client.post(f"/dead/{ids[0]}/replay", data={"csrf": csrf}) as reply:
            assert "Delivery replayed" in await reply.text()
        assert await redis.xlen(DEAD) == 2
        async with client.get("/dead/purge", params=[("id", ids[1])]) as reply:
            confirm = await reply.text()
        assert "will be deleted for good" in confirm
        assert await redis.xlen(DEAD) == 2  # asking is not purging
        async with client.post("/dead/purge",
                               data={"csrf": csrf, "id": ids[1]}) as reply:  # fmt: skip
            assert reply.status == 200
        assert await redis.xlen(DEAD) == 2  # not confirmed
        confirmed = {"csrf": csrf, "id": ids[1], "confirm": "yes"}
        async with client.post("/dead/purge", data=confirmed) as reply:
            assert "Dead letters purged." in await reply.text()
        assert await redis.xlen(DEAD) == 1


async def test_the_sources_view_shows_health_and_hides_credentials(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    settings = console_settings(settings, tmp_path)
    await StateStore(redis).failure("post", outcome="network_error", error="connection refused")
    await StateStore(redis).success("wire", outcome="ok", validators=Validators(None, None),
                                    new_items=12, interval=300)  # fmt: skip
    async with (
        running_console(settings, redis) as console,
        logged_in(console.url) as client,
        client.get("/sources") as reply,
    ):
        html = await reply.text()
    assert "1 ok · 1 failing" in html
    assert "connection refused" in html
    assert "12.0" in html
    assert "abc123" not in html
    assert "api_key=…" in html


async def test_the_delivery_log_helper_reads_what_the_console_shows(redis: Redis) -> None:
    assert await DeliveryLog(redis, 10).lines("nobody") == []


async def test_without_an_admin_token_the_console_is_closed(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    settings = console_settings(settings, tmp_path).model_copy(update={"admin_token": None})
    async with running_console(settings, redis) as console, browser_like(console.url) as client:
        csrf = await page_csrf(client, "/")
        async with client.get("/") as page:
            assert "The console is closed" in await page.text()
        async with client.post("/login", data={"token": "", "csrf": csrf}) as reply:
            assert reply.status == 403
        async with client.get("/claims", allow_redirects=False) as reply:
            assert reply.status == 303
