"""What every source adapter promises: ``poll(source, state)`` gives entries, validators, hub.

An adapter reads one kind of source. The poller service publishes the entries it returns,
keeps the validators for the next poll's conditional request and subscribes to the WebSub
hub it names. A source that cannot be read raises :class:`~services.poller.fetch.FetchError`;
one that gives something the adapter does not read raises :class:`ParseError`; anything else
is a bug.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from services.poller.entries import Entry
from services.poller.fetch import Fetcher, Validators
from services.poller.pool import ParsePool
from services.poller.settings import PollerSettings
from shared.models import utcnow

if TYPE_CHECKING:
    from services.poller.sources import Source
    from services.poller.state import SourceState

_LEADING = b"\xef\xbb\xbf \t\r\n"


class ParseError(Exception):
    """A document that is not what the adapter reads."""


@dataclass(frozen=True)
class Hub:
    """A WebSub hub the source advertises, and the topic to subscribe to there."""

    url: str
    topic: str


@dataclass(frozen=True)
class Polled:
    """What one poll of a source came to.

    ``modified`` is False when the source has not changed since the validators sent (and
    ``entries`` is empty); ``url`` is where the entries were read, after redirects, which
    relative links resolve against; ``kind`` is the document's format and ``warning`` what
    an ill-formed one was recovered from.
    """

    entries: Sequence[Entry]
    validators: Validators
    hub: Hub | None = None
    url: str = ""
    modified: bool = True
    kind: str = ""
    warning: str | None = None
    fetched_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class Tools:
    """What adapters share: the process's HTTP fetcher, the parse pool and the settings."""

    fetcher: Fetcher
    pool: ParsePool
    settings: PollerSettings


class Adapter(Protocol):
    """Reads one kind of source."""

    async def poll(self, source: Source, state: SourceState) -> Polled: ...


def content(body: bytes) -> bytes:
    """``body`` from its first character (no byte-order mark or leading blanks); raise
    :class:`ParseError` when nothing is left."""
    start = body.lstrip(_LEADING)
    if not start:
        raise ParseError("empty body")
    return start
