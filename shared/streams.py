"""Stream names, the keys kept beside them, and the entry encoding every producer and
consumer agrees on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from pydantic import ValidationError

from shared.models import SCHEMA_VERSION, Message

ARTICLES = "vigil:articles"
ALERTS = "vigil:alerts"
DEAD = "vigil:dead"
# Notifier jobs put back by `vigil dlq replay`; the stream keeps the name it had when it was
# called DELIVERIES, so that existing deployments find their entries.
REPLAYS = "vigil:deliveries"

CLASSIFIER_GROUP = "classifier"
NOTIFIER_GROUP = "notifier"
ARCHIVE_GROUP = "archive"  # the console's history of vigil:alerts (services/archive)

M = TypeVar("M", bound=Message)


def companion(stream: str, suffix: str) -> str:
    """A key kept beside ``stream``: on a Redis Cluster it lives in the stream's slot.

    The hash tag (``{vigil:articles}``) is the stream's whole name, whose slot is the
    stream's own, so one transaction or script may touch both, as on a single server. The
    streams keep their names: existing deployments find their entries where they were.
    """
    return f"{{{stream}}}:{suffix}"


class DecodeError(Exception):
    """A stream entry that is not a valid message of the expected type and version."""


def encode(message: Message) -> dict[str, str]:
    """The stream fields of a message: its type, schema version and JSON body."""
    return {"type": type(message).__name__, "v": str(message.v), "data": message.model_dump_json()}


def decode(model: type[M], fields: Mapping[str, str]) -> M:
    """Validate stream fields as ``model``; raise :class:`DecodeError` saying what is wrong."""
    kind = fields.get("type")
    if kind is None:
        raise DecodeError(f"entry has no 'type' field (expected {model.__name__!r})")
    if kind != model.__name__:
        raise DecodeError(f"expected type {model.__name__!r}, got {kind!r}")
    _check_version(fields.get("v"))
    data = fields.get("data")
    if data is None:
        raise DecodeError("entry has no 'data' field")
    try:
        return model.model_validate_json(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise DecodeError(f"invalid {model.__name__}: {where}: {first['msg']}") from error


def _check_version(version: str | None) -> None:
    """Entries of this consumer's major version pass; a newer one is named as such (the rules
    are in :mod:`shared.models`)."""
    if version == str(SCHEMA_VERSION):
        return
    if version is not None and version.isdigit() and int(version) > SCHEMA_VERSION:
        raise DecodeError(
            f"schema version {version} is newer than this consumer's ({SCHEMA_VERSION}): "
            "upgrade it, then replay this entry"
        )
    raise DecodeError(
        f"unsupported schema version {version!r} (this consumer reads {SCHEMA_VERSION})"
    )
