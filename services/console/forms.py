"""The subscription form: its fields to the subscription's data, and validation errors back
to the fields they concern."""

from __future__ import annotations

import re
from typing import Any

from multidict import MultiDictProxy
from pydantic import ValidationError

from services.notifier.subscriptions import MASK, Subscription, keep_masked

LIST_FILTERS = ("claimants", "languages", "sources", "keywords")
_SEPARATORS = re.compile(r"[,\n]")
_FIELD_IN_MESSAGE = re.compile(r"^(?:Value error, )?(\w+): (.*)$", re.DOTALL)


def split(text: str) -> list[str]:
    """``"a, b\\nc"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in _SEPARATORS.split(text) if part.strip()]


def subscription_data(
    form: MultiDictProxy[Any], subscription_id: str, stored: Subscription | None
) -> dict[str, Any]:
    """What the form says, as subscription data; a secret or chat URL left as shown (masked or
    blank) keeps the stored one."""
    channel = stored.channel if stored else str(form.get("channel", ""))
    data: dict[str, Any] = {
        "id": subscription_id,
        "channel": channel,
        "description": str(form.get("description", "")).strip(),
        "enabled": stored.enabled if stored else "enabled" in form,
        "mode": form.get("mode", "instant"),
        "digest_minutes": form.get("digest_minutes") or 60,
        "rate_limit_per_minute": form.get("rate_limit_per_minute") or None,
        "filters": {
            "min_score": form.get("min_score") or 0,
            "theaters": form.getall("theaters", []),
            "stances": form.getall("stances", []),
            **{name: split(str(form.get(name, ""))) for name in LIST_FILTERS},
        },
    }
    if channel in ("webhook", "chat"):
        data["url"] = str(form.get("url", "")).strip() or None
    if channel == "email":
        data["to"] = split(str(form.get("to", "")))
    if channel == "webhook":
        data["secret"] = str(form.get("secret", "")).strip() or (
            MASK if stored and stored.secret else None
        )
        if stored and stored.previous_secrets:
            data["previous_secrets"] = [MASK] * len(stored.previous_secrets)
    return keep_masked(data, stored)


def field_errors(error: ValidationError) -> dict[str, str]:
    """Each message under the form field it concerns (``filters.min_score`` -> ``min_score``)."""
    errors: dict[str, str] = {}
    for item in error.errors():
        location = [str(part) for part in item["loc"] if not isinstance(part, int)]
        message = item["msg"]
        if not location:  # a rule over several fields names its field first
            match = _FIELD_IN_MESSAGE.match(message)
            location, message = ([match[1]], match[2]) if match else (["form"], message)
        errors.setdefault(location[-1], message.removeprefix("Value error, "))
    return errors
