"""JSON Feed 1.0 and 1.1 (jsonfeed.org), read into pydantic models."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from services.poller.adapters.base import content
from services.poller.adapters.jsondoc import load_json, validated
from services.poller.entries import Entry, Feed, aware, parse_date


class _JsonItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    url: str | None = None
    external_url: str | None = None
    title: str | None = None
    content_html: str | None = None
    content_text: str | None = None
    summary: str | None = None
    date_published: datetime | None = None
    date_modified: datetime | None = None
    language: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float) else value

    @field_validator("date_published", "date_modified", mode="before")
    @classmethod
    def _lenient_date(cls, value: object) -> datetime | None:
        """RFC 3339 as the spec says, RFC 822 as some feeds write; unreadable dates are dropped."""
        return parse_date(value) if isinstance(value, str) else None


class _JsonHub(BaseModel):
    type: str = ""
    url: str = ""


class _JsonFeed(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: str
    title: str | None = None
    feed_url: str | None = None
    language: str | None = None
    hubs: list[_JsonHub] = []
    items: list[_JsonItem]


def parse(body: bytes, url: str, headers: Mapping[str, str]) -> Feed:
    """The entries of a JSON Feed document."""
    return from_json(load_json(content(body)))


def is_json_feed(data: dict[str, Any]) -> bool:
    """Whether a JSON object says it is a JSON Feed."""
    return "jsonfeed.org" in str(data.get("version", ""))


def from_json(data: Any) -> Feed:
    """The entries of a JSON Feed already read as JSON."""
    feed = validated(_JsonFeed, data, "JSON Feed")
    entries = [
        Entry(
            link=item.url or item.external_url,
            guid=item.id,
            title=item.title or "",
            summary=item.content_html or item.content_text or item.summary or "",
            published=aware(item.date_published or item.date_modified),
            language=item.language or feed.language,
        )
        for item in feed.items
    ]
    hub = next((h.url for h in feed.hubs if h.type.lower() == "websub" and h.url), None)
    return Feed("jsonfeed", entries, hub, feed.feed_url)
