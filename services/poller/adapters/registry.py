"""Every source adapter in one table: the ``type`` values a source may name and what reads each.

A source's ``type`` is checked against :data:`ADAPTERS` and its adapter's own fields turned
into the source's (``prepare``) when the sources are loaded; ``vigil sources test --type``
offers these names; the poller makes one adapter of each. A new kind of source is a module in
this package plus one entry here (and its sample in ``tests/test_adapter_contract.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.poller.adapters import auto, feed, gdelt, jsonfeed, sitemap
from services.poller.adapters.base import Adapter, Tools
from services.poller.adapters.document import DocumentAdapter, Parse

Fields = dict[str, Any]


def _as_given(fields: Fields) -> Fields:
    return fields


@dataclass(frozen=True)
class AdapterSpec:
    """What the poller knows about one kind of source."""

    name: str
    make: Callable[[Tools], Adapter]
    prepare: Callable[[Fields], Fields] = _as_given
    """A source's configured fields with the adapter's own (a GDELT ``query``) turned into
    the source's (``url``, ``headers``); raises ``ValueError`` naming the field at fault."""


def _document(parse: Parse, *, follows_hubs: bool = False) -> Callable[[Tools], Adapter]:
    return lambda tools: DocumentAdapter(tools, parse, follows_hubs=follows_hubs)


# WebSub hubs are followed for the feed types only (a typed ``jsonfeed`` source's hub is not).
ADAPTERS: dict[str, AdapterSpec] = {
    spec.name: spec
    for spec in (
        AdapterSpec("auto", _document(auto.parse, follows_hubs=True)),
        AdapterSpec("rss", _document(feed.parse, follows_hubs=True)),
        AdapterSpec("atom", _document(feed.parse, follows_hubs=True)),
        AdapterSpec("jsonfeed", _document(jsonfeed.parse)),
        AdapterSpec("sitemap", _document(sitemap.parse)),
        AdapterSpec("gdelt", _document(gdelt.parse), prepare=gdelt.prepare),
        AdapterSpec("websub", _document(feed.parse, follows_hubs=True)),
    )
}


def make_adapters(tools: Tools) -> dict[str, Adapter]:
    """One adapter of every kind, sharing ``tools``."""
    return {name: spec.make(tools) for name, spec in ADAPTERS.items()}
