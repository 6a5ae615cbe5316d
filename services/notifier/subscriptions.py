"""Subscriptions: who receives which alerts, how, and the YAML file that declares them.

A filter's theaters and stances are plain strings. A new subscription is validated with the
published vocabulary as context (:func:`new_subscription`) and may name only what it holds; a
stored one, or one from the subscriptions file (read before Redis is reached), is read as
written: a name no lexicon declares just matches nothing.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from email.utils import getaddresses
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SerializationInfo,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from services.notifier.channels.registry import CHANNELS, MESSAGES_PER_MINUTE_FOR_PEOPLE
from shared.models import Alert, Stance, Theater
from shared.settings import ConfigError
from shared.vocabulary import Vocabulary
from shared.yamlfile import YamlDocument, read_yaml

Mode = Literal["instant", "digest"]
SUBSCRIPTION_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
T = TypeVar("T")
_WHSEC = re.compile(r"^whsec_[A-Za-z0-9+/=]{16,}$")
MASK = "**********"
_MASKED_URL = re.compile(r"^[A-Za-z0-9+.-]*://" + re.escape(MASK) + "$")


class Filters(BaseModel):
    """Which alerts a subscriber wants; an empty list means "any"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    theaters: list[Theater] = Field(default_factory=list)
    stances: list[Stance] = Field(default_factory=list)
    claimants: list[str] = Field(default_factory=list, description="substring, any case")
    languages: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list, description="in title, text or evidence")

    @field_validator("theaters", "stances")
    @classmethod
    def _in_vocabulary(cls, value: list[str], info: ValidationInfo) -> list[str]:
        vocabulary = Vocabulary.from_context(info)
        if vocabulary is not None:
            vocabulary.check("theaters" if info.field_name == "theaters" else "stances", value)
        return value

    def matches(self, alert: Alert) -> bool:
        """Whether ``alert`` passes every filter."""
        verdict, article = alert.classification, alert.article
        claimants = [claim.claimant.casefold() for claim in verdict.claims]
        text = " ".join([article.title, article.text, *verdict.evidence]).casefold()
        return (
            verdict.score >= self.min_score
            and _any_or_empty(self.theaters, lambda theater: theater in verdict.theaters)
            and _any_or_empty(self.stances, lambda stance: stance in verdict.stances)
            and _any_or_empty(self.languages, lambda language: language == verdict.language)
            and _any_or_empty(self.sources, lambda source: source == article.source)
            and _any_or_empty(
                self.claimants, lambda want: any(want.casefold() in got for got in claimants)
            )
            and _any_or_empty(self.keywords, lambda word: word.casefold() in text)
        )


def _any_or_empty(wanted: Sequence[T], test: Callable[[T], bool]) -> bool:
    """An empty filter lets everything through; otherwise one wanted value must pass."""
    return not wanted or any(test(value) for value in wanted)


class Subscription(BaseModel):
    """One subscriber's channel, target, filters and delivery mode.

    Secrets are ``SecretStr``: they print as stars and are only revealed when the
    subscription is stored (``model_dump(mode="json", context={"reveal": True})``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=SUBSCRIPTION_ID)
    channel: str = Field(json_schema_extra={"enum": list(CHANNELS)})
    url: str | None = Field(
        default=None,
        description="webhook: http(s) URL; chat: an Apprise URL (slack://...), write-only",
    )
    to: list[str] = Field(
        default_factory=list, description="email recipients, one address per entry"
    )
    secret: SecretStr | None = Field(default=None, description="webhook signing secret, whsec_...")
    previous_secrets: list[SecretStr] = Field(
        default_factory=list, description="still signed with during a rotation"
    )
    filters: Filters = Field(default_factory=Filters)
    mode: Mode = "instant"
    digest_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    rate_limit_per_minute: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="unset: webhooks and console are not limited; email and chat send at most "
        f"{MESSAGES_PER_MINUTE_FOR_PEOPLE} a minute, and fold the rest into one message",
    )
    enabled: bool = True
    description: str = ""

    @property
    def rate_limit(self) -> int | None:
        """Messages allowed per minute: the subscriber's own limit, else the channel's."""
        if self.rate_limit_per_minute is not None:
            return self.rate_limit_per_minute
        return CHANNELS[self.channel].default_rate_limit

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"unknown channel {value!r}: one of {', '.join(CHANNELS)}")
        return value

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            check_address(entry)
        return value

    @field_validator("url")
    @classmethod
    def _not_masked(cls, value: str | None) -> str | None:
        if value is not None and _MASKED_URL.match(value):
            raise ValueError("is the masked form shown by Vigil: give the real URL")
        return value

    @field_validator("secret", "previous_secrets")
    @classmethod
    def _whsec(cls, value: SecretStr | list[SecretStr] | None) -> Any:
        for secret in value if isinstance(value, list) else [value]:
            if secret is not None and not _WHSEC.match(secret.get_secret_value()):
                raise ValueError("must be 'whsec_' followed by base64 (at least 16 characters)")
        return value

    @model_validator(mode="after")
    def _channel_needs(self) -> Subscription:
        spec = CHANNELS[self.channel]
        for field, message in spec.required.items():
            if not getattr(self, field):
                raise ValueError(f"{field}: {message}")
        spec.check(self)
        return self

    @field_serializer("secret", "previous_secrets", when_used="json")
    def _secrets(self, value: SecretStr | list[SecretStr] | None, info: SerializationInfo) -> Any:
        reveal = bool(info.context and info.context.get("reveal"))

        def show(secret: SecretStr) -> str:
            return secret.get_secret_value() if reveal else "**********"

        if isinstance(value, list):
            return [show(s) for s in value]
        return None if value is None else show(value)

    def signing_secrets(self) -> list[str]:
        """The current secret first, then those kept during a rotation."""
        secrets = [self.secret, *self.previous_secrets] if self.secret else []
        return [s.get_secret_value() for s in secrets if s is not None]

    def stored(self) -> str:
        """JSON for the subscription store, secrets included."""
        return self.model_dump_json(context={"reveal": True})

    def public(self) -> dict[str, Any]:
        """A view safe to print or return from the API: secrets and chat URLs masked."""
        view = self.model_dump(mode="json")
        if self.channel == "chat" and self.url:
            view["url"] = masked_url(self.url)
        return view


def masked_url(url: str) -> str:
    """How a write-only URL is shown: its scheme only (``slack://**********``)."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    return f"{scheme}://{MASK}"


def keep_masked(data: dict[str, Any], stored: Subscription | None) -> dict[str, Any]:
    """``data`` with the masked values Vigil showed (a chat URL, secrets) replaced by the stored
    ones, so that what ``show`` printed can be sent back as it is."""
    if stored is None:
        return data
    kept = dict(data)
    if isinstance(kept.get("url"), str) and _MASKED_URL.match(kept["url"]):
        kept["url"] = stored.url
    if kept.get("secret") == MASK and stored.secret is not None:
        kept["secret"] = stored.secret.get_secret_value()
    previous = kept.get("previous_secrets")
    if (
        isinstance(previous, list)
        and len(previous) == len(stored.previous_secrets) > 0
        and all(item == MASK for item in previous)
    ):
        kept["previous_secrets"] = [s.get_secret_value() for s in stored.previous_secrets]
    return kept


# Characters no address may hold: controls (CR, LF, U+0085...), format characters and the
# Unicode line and paragraph separators (U+2028, U+2029) that some mailers treat as newlines.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def check_address(entry: str) -> None:
    """Raise ``ValueError`` unless ``entry`` is exactly one email address (a display name is
    allowed: ``Desk <desk@example.org>``) with no control or separator character."""
    bad = next((c for c in entry if unicodedata.category(c) in _FORBIDDEN_CATEGORIES), None)
    if bad is not None:
        raise ValueError(f"{entry!r} holds the control character U+{ord(bad):04X}")
    addresses = getaddresses([entry])
    if len(addresses) != 1:
        raise ValueError(f"{entry!r} holds {len(addresses)} addresses: give one per entry")
    _, address = addresses[0]
    local, _, domain = address.rpartition("@")
    if address.count("@") != 1 or not local or not domain or any(c.isspace() for c in address):
        raise ValueError(f"not an email address: {entry!r}")


class SubscriptionsFile(BaseModel):
    """The YAML document: ``subscriptions: [...]`` with unique ids."""

    model_config = ConfigDict(extra="forbid")

    subscriptions: list[Subscription] = Field(default_factory=list)

    @field_validator("subscriptions")
    @classmethod
    def _unique(cls, value: list[Subscription]) -> list[Subscription]:
        seen: set[str] = set()
        for subscription in value:
            if subscription.id in seen:
                raise ValueError(f"duplicate subscription id {subscription.id!r}")
            seen.add(subscription.id)
        return value


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_environment(value: Any) -> Any:
    """``${NAME}`` in any string of the document, from the environment (secrets stay out of
    the file); a missing variable raises ``KeyError(NAME)``."""
    if isinstance(value, str):
        return _ENV_REFERENCE.sub(lambda match: os.environ[match.group(1)], value)
    if isinstance(value, list):
        return [expand_environment(item) for item in value]
    if isinstance(value, dict):
        return {key: expand_environment(item) for key, item in value.items()}
    return value


def new_subscription(data: Any, vocabulary: Vocabulary) -> Subscription:
    """A subscription being created or replaced: its filters may name only what the published
    ``vocabulary`` holds (raises ``ValidationError``)."""
    return Subscription.model_validate(data, context=vocabulary.as_context())


def expanded(document: YamlDocument, data: Any) -> Any:
    """``data`` of ``document`` with ``${NAME}`` expanded; raise naming a variable not set."""
    try:
        return expand_environment(data)
    except KeyError as error:
        raise ConfigError(f"{document.name}: ${{{error.args[0]}}} is used but not set") from error


def load_subscriptions(path: Path) -> list[Subscription]:
    """Read and validate a subscriptions file; raise :class:`ConfigError` (a
    :class:`~shared.yamlfile.YamlError` for a bad field) naming file, line and field."""
    document = read_yaml(path)
    if not isinstance(document.data, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'subscriptions' list")
    return document.validate(SubscriptionsFile, expanded(document, document.data)).subscriptions
