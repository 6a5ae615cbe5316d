"""Records kept as Redis hashes, and the one way to read them back as typed models.

A hash holds every value as text and drops nothing: a field never written is missing, one
cleared is often written as ``""``. :func:`from_hash` validates such a hash as a dataclass or
pydantic model: each value is converted to its field's type, and a missing or empty field
takes the field's default. Fields the model does not name are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import TypeAdapter
from redis.asyncio import Redis

T = TypeVar("T")
_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}  # one per model, built on first use


async def read_hash(redis: Redis, key: str) -> dict[str, str]:
    """A hash as text (the client decodes responses)."""
    raw = await redis.hgetall(key)
    return {str(k): str(v) for k, v in raw.items()}


def from_hash(model: type[T], raw: Mapping[str, str]) -> T:
    """``model`` read from the fields of a hash (see the module)."""
    adapter: TypeAdapter[T] | None = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(model)
    return adapter.validate_python({name: value for name, value in raw.items() if value != ""})
