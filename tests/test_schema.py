"""The rules of ``SCHEMA_VERSION`` (shared/models.py, docs/schema.md), each tested: old
consumers read new payloads, a newer major version is dead-lettered saying so, additive
changes need no bump, and writers write only what their models declare."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

from shared.bus import Receipt, StreamBus
from shared.models import SCHEMA_VERSION, Alert, Article
from shared.streams import DEAD, DecodeError, decode, encode
from tests.factories import make_alert
from tests.helpers import background, wait_for

# The payloads as they were when this major version was first published (see _shape).
PUBLISHED = Path(__file__).with_name("schema") / f"v{SCHEMA_VERSION}.json"
WIRE_MODELS: dict[str, type[BaseModel]] = {"Article": Article, "Alert": Alert}


def _newer(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` as a later writer might send it: a field added at every level, and a
    theater and a stance that today's lexicon does not know."""
    grown = {**payload, "priority": "high"}
    grown["article"] = {**payload["article"], "paywalled": True}
    verdict = payload["classification"]
    claim = {**verdict["claims"][0], "theater": "red-sea", "stance": "retraction", "confidence": 1}
    grown["classification"] = {**verdict, "theaters": ["red-sea"], "stances": ["retraction"],
                               "claims": [claim], "model": "v9"}  # fmt: skip
    return grown


def test_old_consumers_read_new_payloads() -> None:
    fields = encode(make_alert("a1"))
    fields["data"] = orjson.dumps(_newer(orjson.loads(fields["data"]))).decode()
    alert = decode(Alert, fields)
    assert alert.classification.theaters == ["red-sea"]
    assert alert.classification.claims[0].stance == "retraction"
    assert "priority" not in alert.model_dump()


async def test_a_newer_major_version_is_dead_lettered_with_its_reason(redis: Redis) -> None:
    stream = f"test:{uuid.uuid4().hex[:8]}"
    bus = StreamBus(redis)
    newer: dict[Any, Any] = {**encode(make_alert("a1")), "v": str(SCHEMA_VERSION + 1)}
    await redis.xadd(stream, newer)
    await bus.publish(stream, make_alert("a2"))
    seen: list[str] = []

    async def handle(alert: Alert, _: Receipt) -> None:
        seen.append(alert.alert_id)

    consumer = bus.consumer(stream=stream, group="g", name="c", model=Alert, handler=handle)
    async with background(consumer):
        await wait_for(lambda: seen == ["alert_a2"], message="the current entry handled")
        await wait_for(lambda: redis.xlen(DEAD), message="the newer one dead-lettered")
    [(_, letter)] = await bus.dead_letters()
    assert letter.reason == (
        f"decode: schema version {SCHEMA_VERSION + 1} is newer than this consumer's "
        f"({SCHEMA_VERSION}): upgrade it, then replay this entry"
    )
    assert letter.fields == newer, "kept as written, for a replay after the upgrade"


def test_an_unknown_version_is_refused_as_such() -> None:
    fields = {**encode(make_alert("a1")), "v": "one"}
    with pytest.raises(DecodeError, match="unsupported schema version 'one'"):
        decode(Alert, fields)


def _strip(schema: Any) -> Any:
    """A JSON schema without what does not change the wire (titles, descriptions, defaults)."""
    if isinstance(schema, dict):
        return {k: _strip(v) for k, v in schema.items() if k not in ("title", "description",
                                                                     "default")}  # fmt: skip
    return [_strip(item) for item in schema] if isinstance(schema, list) else schema


def _shape(model: type[BaseModel]) -> dict[str, Any]:
    """Each model of a payload: its fields' types and its required fields."""
    schema = model.model_json_schema()
    parts = {**schema.get("$defs", {}), model.__name__: schema}
    return {
        name: {"required": sorted(part.get("required", [])),
               "properties": _strip(part["properties"])}
        for name, part in sorted(parts.items())
    }  # fmt: skip


@pytest.mark.parametrize("name", WIRE_MODELS)
def test_additive_changes_do_not_need_a_new_version(name: str) -> None:
    """Fields may be added (with a default) without a bump; removing, retyping or requiring a
    field is breaking: bump SCHEMA_VERSION and publish tests/schema/vN.json for it."""
    published = json.loads(PUBLISHED.read_text(encoding="utf-8"))[name]
    current = _shape(WIRE_MODELS[name])
    for part, was in published.items():
        assert part in current, f"{part} removed: bump SCHEMA_VERSION"
        now = current[part]
        for field, kind in was["properties"].items():
            assert now["properties"].get(field) == kind, f"{part}.{field} changed: bump"
        required = set(now["required"]) - set(was["required"])
        assert not required, f"{part}: {sorted(required)} became required: bump"


def test_writers_write_only_what_their_models_declare() -> None:
    """Readers ignore unknown fields, so writers are held strict here: every payload the
    factories and the bus write validates with ``extra="forbid"``."""
    alert = make_alert("a1", claims=(("Baku", "denial", "karabakh"),))
    for message in (alert, alert.article):
        data = encode(message)["data"]
        assert type(message).model_validate_json(data, extra="forbid") == message
    newer = orjson.dumps(_newer(alert.model_dump(mode="json")))
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Alert.model_validate_json(newer, extra="forbid")
