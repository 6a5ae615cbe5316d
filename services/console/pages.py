"""What every console page shares: rendering with the session's CSRF token and the
navigation, notices after an action, and the Jinja2 filters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp_jinja2
from aiohttp import web
from jinja2 import PackageLoader, StrictUndefined

from services.console.session import SESSION
from services.notifier.render import safe_link

STATIC = Path(__file__).parent / "static"
NAV: Final = (
    ("/", "alerts"),
    ("/claims", "Claims"),
    ("/subscriptions", "Subscriptions"),
    ("/sources", "Sources"),
    ("/dead", "Dead letters"),
)
# Messages shown after an action: the redirect names one, so nothing the URL says is echoed.
NOTICES: Final = {
    "created": "Subscription created.",
    "saved": "Subscription saved.",
    "enabled": "Deliveries resumed.",
    "disabled": "Deliveries stopped.",
    "test": "Test event queued: it appears in the delivery log once sent.",
    "rotated": "Secret rotated: deliveries are signed with the new and the old secrets.",
    "rotation_ended": "Old secrets dropped: deliveries are signed with the current one only.",
    "replayed": "Delivery replayed: it is sent again under the same webhook-id.",
    "not_replayed": "That dead letter is gone (replayed or purged already).",
    "hurried": "Retry scheduled now.",
    "not_waiting": "That delivery is not waiting for a retry any more.",
    "purged": "Dead letters purged.",
    "nothing_selected": "Select the dead letters to purge first.",
    "logged_out": "You are logged out.",
}


def when(value: datetime | float | None) -> str:
    """A time as ``2026-11-24 08:00 UTC``."""
    if value is None:
        return "-"
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(value: datetime | float | None) -> str:
    """A machine-readable time for ``<time datetime=…>``."""
    if value is None:
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def ago(epoch: float | None, now: float | None = None) -> str:
    """``3 min ago``, ``in 40 s``: how far a moment is from now."""
    if epoch is None:
        return "never"
    seconds = (now or datetime.now(UTC).timestamp()) - epoch
    later = seconds < 0
    seconds = abs(seconds)
    if seconds < 90:
        text = f"{seconds:.0f} s"
    elif seconds < 5400:
        text = f"{seconds / 60:.0f} min"
    elif seconds < 172_800:
        text = f"{seconds / 3600:.0f} h"
    else:
        text = f"{seconds / 86_400:.0f} days"
    return f"in {text}" if later else f"{text} ago"


def setup_templates(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=PackageLoader("services.console", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, iso=iso, ago=ago, link=safe_link)


def render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """A page with the navigation, the session's CSRF token and the notice, never cached."""
    session = request.get(SESSION)
    page = {
        "nav": NAV,
        "here": request.path,
        "csrf": session.csrf if session else "",
        "logged_in": session is not None,
        "notice": NOTICES.get(request.query.get("notice", "")),
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, page, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def fragment(request: web.Request, template: str, context: dict[str, Any]) -> str:
    """A piece of a page (an alert for the live view, the delivery log)."""
    session = request.get(SESSION)
    return aiohttp_jinja2.render_string(
        template, request, {"csrf": session.csrf if session else "", **context}
    )


def see_other(location: str, notice: str | None = None) -> web.HTTPSeeOther:
    """Where to go after a form: the page, with a notice named in ``NOTICES``."""
    if notice is not None:
        location += ("&" if "?" in location else "?") + f"notice={notice}"
    return web.HTTPSeeOther(location)
