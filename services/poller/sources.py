"""Source configuration: the ``sources:`` list of a YAML file, validated at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.poller.adapters.registry import ADAPTERS
from shared.yamlfile import read_yaml

DEFAULT_SOURCES_FILE = Path(__file__).resolve().parent.parent / "defaults" / "sources.yaml"


class Source(BaseModel):
    """One place to poll for news."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    url: str
    interval: float | None = Field(
        default=None, gt=0, description="seconds; unset: adaptive between the poller's bounds"
    )
    type: str = Field(default="auto", description="its adapter (adapters/registry.py)")
    enabled: bool = True
    name: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    full_text: bool = Field(
        default=False, description="fetch each new article's page and extract its full text"
    )

    @model_validator(mode="before")
    @classmethod
    def _adapter_fields(cls, data: Any) -> Any:
        """The adapter's own fields (a GDELT ``query``) become the source's (its ``url``)."""
        kind = data.get("type", "auto") if isinstance(data, dict) else None
        spec = ADAPTERS.get(kind) if isinstance(kind, str) else None
        return spec.prepare(data) if spec is not None else data

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in ADAPTERS:
            raise ValueError(f"unknown type {value!r}: one of {', '.join(ADAPTERS)}")
        return value

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.hostname:
            return value
        if parts.scheme == "file" and parts.path:
            return value
        raise ValueError("not an http(s) or file URL")

    @property
    def host(self) -> str:
        """The host whose concurrency limit applies ("" for files)."""
        return urlsplit(self.url).hostname or ""


def _resolve_file_url(url: object, base: Path) -> object:
    """``file:name.xml`` and ``file://./x`` forms are made absolute against ``base``."""
    if not isinstance(url, str) or not url.startswith("file:"):
        return url
    path = urlsplit(url).path if url.startswith("file://") else url.removeprefix("file:")
    if url.startswith("file://") and urlsplit(url).netloc not in ("", "localhost"):
        path = urlsplit(url).netloc + path  # file://relative/path written by hand
    target = Path(path)
    if not target.is_absolute():
        target = (base / target).resolve()
    return target.as_uri()


def load_sources(path: Path) -> list[Source]:
    """Read and validate the sources of a YAML file; raise :class:`ConfigError` (a
    :class:`~shared.yamlfile.YamlError`) in one line naming file, line and field."""
    document = read_yaml(path)
    if not isinstance(document.data, dict) or not isinstance(document.data.get("sources"), list):
        raise document.error(["sources"], "expected a list under the top-level key 'sources'")
    sources: list[Source] = []
    seen: set[str] = set()
    for index, raw in enumerate(document.data["sources"]):
        if not isinstance(raw, dict):
            raise document.error(["sources", index], "expected a mapping")
        data = dict(raw)
        if "url" in data:
            data["url"] = _resolve_file_url(data["url"], path.parent.resolve())
        source = document.validate(Source, data, at=["sources", index])
        if source.id in seen:
            raise document.error(["sources", index, "id"], f"duplicate id {source.id!r}")
        seen.add(source.id)
        sources.append(source)
    return sources
