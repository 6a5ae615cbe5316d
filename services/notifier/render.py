"""Alert messages for people (email, chat) rendered from Jinja2 templates in ``templates/``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from urllib.parse import quote, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from services.notifier.jobs import Job
from shared.models import Alert

# CommonMark punctuation that could open structure (emphasis, code, links, HTML, tables).
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]()<>!#|~])")
# U+2060 WORD JOINER: invisible, but "@\u2060everyone" or "<\u2060!channel>" pings nobody.
_NO_MENTION = "\u2060"
# A message with many alerts shows this many in full, then "…and N more" with a line for
# each of the next ones (up to LISTED), so that it stays readable whatever the burst.
DETAILED = 10
LISTED = 100


def safe_link(url: str) -> str | None:
    """``url`` if it is an http(s) link with a host, else None: a feed's ``javascript:`` or
    ``data:`` link never reaches a message."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if any(c.isspace() or ord(c) < 32 for c in url.strip()):
        return None
    return url.strip()


def no_mentions(text: str) -> str:
    """``text`` with @everyone, @here, <@id>, <!channel> and the like made inert."""
    return text.replace("@", "@" + _NO_MENTION).replace("<", "<" + _NO_MENTION)


def markdown_text(text: str) -> str:
    """Feed text shown literally in Markdown: one line, punctuation escaped, no mentions."""
    return no_mentions(_MARKDOWN_PUNCTUATION.sub(r"\\\1", " ".join(str(text).split())))


def markdown_url(url: str) -> str:
    """A link destination that cannot end the link early or mention anyone.

    (, ), <, >, spaces and @ are percent-encoded (Apprise's Discord plugin reads any "@word"
    in a message, links included, as a mention to allow).
    """
    return quote(url, safe=":/?#[]!$&'*+,;=%~")


@cache
def environment() -> Environment:
    """HTML templates are autoescaped; text and Markdown ones are not."""
    env = Environment(
        loader=PackageLoader("services.notifier", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = markdown_text
    env.filters["md_url"] = markdown_url
    env.filters["link"] = safe_link
    env.filters["when"] = lambda at: at.strftime("%Y-%m-%d %H:%M UTC") if at else "time unknown"
    return env


def subject(job: Job, alerts: Sequence[Alert]) -> str:
    """One line naming what the message carries (newlines in titles cannot break headers)."""
    if job.kind == "test":
        return "[Vigil] test alert: your subscription works"
    if job.kind in ("digest", "overflow"):
        count = f"{len(alerts)} alert" + ("" if len(alerts) == 1 else "s")
        return f"[Vigil] {count} on Turkish military involvement abroad"
    # str.split() also breaks on \x0b, \x1c-\x1e, \x85 and \u2028: nothing can end the line.
    return "[Vigil] " + " ".join(alerts[0].article.title.split())


def render(template: str, job: Job, alerts: Sequence[Alert], **extra: object) -> str:
    """Render ``templates/<template>`` with the job, its alerts and ``extra``.

    Templates get ``alerts`` (shown in full), ``listed`` (one line each) and ``unlisted``
    (how many more are only counted).
    """
    return (
        environment()
        .get_template(template)
        .render(
            job=job,
            alerts=alerts[:DETAILED],
            listed=alerts[DETAILED : DETAILED + LISTED],
            unlisted=max(0, len(alerts) - DETAILED - LISTED),
            title=subject(job, alerts),
            **extra,
        )
    )
