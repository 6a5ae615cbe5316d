"""JSON documents read into pydantic models, with errors that name the field at fault."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from services.poller.adapters.base import ParseError

M = TypeVar("M", bound=BaseModel)


def load_json(body: bytes) -> Any:
    """The JSON value of ``body``; :class:`ParseError` when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ParseError(f"invalid JSON: {error}") from error


def validated(model: type[M], data: Any, what: str) -> M:
    """``data`` (a JSON object) as ``model``; :class:`ParseError` naming ``what`` and the field."""
    if not isinstance(data, dict):
        raise ParseError(f"{what}: expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ParseError(f"invalid {what}: {where}: {first['msg']}") from error
