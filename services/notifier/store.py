"""Subscriptions and their delivery state, kept in Redis and shared by every replica.

The YAML file is loaded at start and written over the stored copies of the ids it names;
subscriptions created through the admin API or ``vigil subscriptions`` live only in Redis.
A version counter lets replicas notice a change without re-reading every alert.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from services.notifier.jobs import PREFIX
from services.notifier.subscriptions import Subscription

SUBSCRIPTIONS = PREFIX + "subscriptions"
VERSION = PREFIX + "subscriptions:version"
FILE_DIGESTS = PREFIX + "subscriptions:file"  # id -> digest of the file's entry, last synced


def _state_key(subscription_id: str) -> str:
    return f"{PREFIX}state:{subscription_id}"


@dataclass(frozen=True)
class DeliveryState:
    """How deliveries to one subscriber are going."""

    delivered: int = 0
    failed: int = 0
    dead_lettered: int = 0
    consecutive_failures: int = 0
    last_success_at: float | None = None
    last_error_at: float | None = None
    last_error: str = ""
    circuit_open_until: float = 0.0
    disabled_reason: str = ""

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> DeliveryState:
        def number(name: str) -> float | None:
            return float(raw[name]) if raw.get(name) else None

        return cls(
            delivered=int(raw.get("delivered", 0)),
            failed=int(raw.get("failed", 0)),
            dead_lettered=int(raw.get("dead_lettered", 0)),
            consecutive_failures=int(raw.get("consecutive_failures", 0)),
            last_success_at=number("last_success_at"),
            last_error_at=number("last_error_at"),
            last_error=raw.get("last_error", ""),
            circuit_open_until=number("circuit_open_until") or 0.0,
            disabled_reason=raw.get("disabled_reason", ""),
        )


class SubscriptionStore:
    """CRUD on subscriptions plus per-subscriber counters, circuit and rate limit."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def version(self) -> int:
        return int(await self.redis.get(VERSION) or 0)

    async def sync_file(self, subscriptions: list[Subscription]) -> list[str]:
        """Store the file's subscriptions that are new or changed in the file since last time.

        An entry the file still holds unchanged is left alone, so edits made through the admin
        API or ``vigil subscriptions`` survive a restart; editing the entry in the file wins
        again. Returns the ids written.
        """
        if not subscriptions:
            return []
        digests = {s.id: hashlib.sha256(s.stored().encode()).hexdigest() for s in subscriptions}
        known = await self.redis.hmget(FILE_DIGESTS, list(digests))
        current = await self.redis.hmget(SUBSCRIPTIONS, list(digests))
        changed = [
            s for s, seen, stored in zip(subscriptions, known, current, strict=True)
            if stored is None or seen != digests[s.id]
        ]  # fmt: skip
        if changed:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(SUBSCRIPTIONS, mapping={s.id: s.stored() for s in changed})
                pipe.hset(FILE_DIGESTS, mapping={s.id: digests[s.id] for s in changed})
                pipe.incr(VERSION)
                await pipe.execute()
        return [s.id for s in changed]

    async def all(self) -> list[Subscription]:
        rows = await self.redis.hgetall(SUBSCRIPTIONS)
        subs = [Subscription.model_validate_json(body) for body in rows.values()]
        return sorted(subs, key=lambda s: s.id)

    async def get(self, subscription_id: str) -> Subscription | None:
        body = await self.redis.hget(SUBSCRIPTIONS, subscription_id)
        return None if body is None else Subscription.model_validate_json(body)

    async def put(self, subscription: Subscription) -> bool:
        """Create or replace; returns True when it was created."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(SUBSCRIPTIONS, subscription.id, subscription.stored())
            pipe.incr(VERSION)
            created, _ = await pipe.execute()
        if subscription.enabled:
            await self.redis.hdel(_state_key(subscription.id), "disabled_reason")
        return bool(created)

    async def delete(self, subscription_id: str) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(SUBSCRIPTIONS, subscription_id)
            pipe.delete(_state_key(subscription_id))
            pipe.incr(VERSION)
            deleted, _, _ = await pipe.execute()
        return bool(deleted)

    async def disable(self, subscription_id: str, reason: str) -> Subscription | None:
        """Turn a subscription off (by an operator, or after ``410 Gone``)."""
        current = await self.get(subscription_id)
        if current is None:
            return None
        updated = current.model_copy(update={"enabled": False})
        await self.put(updated)
        await self.redis.hset(_state_key(subscription_id), "disabled_reason", reason)
        return updated

    async def state(self, subscription_id: str) -> DeliveryState:
        raw = cast(dict[str, str], await self.redis.hgetall(_state_key(subscription_id)))
        return DeliveryState.from_hash(raw)

    async def record_success(self, subscription_id: str, at: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            key = _state_key(subscription_id)
            pipe.hincrby(key, "delivered", 1)
            pipe.hset(
                key,
                mapping={"last_success_at": at, "consecutive_failures": 0, "circuit_open_until": 0},
            )
            await pipe.execute()

    async def record_failure(self, subscription_id: str, at: float, detail: str) -> int:
        """Count a failed attempt; returns the consecutive failures so far."""
        async with self.redis.pipeline(transaction=True) as pipe:
            key = _state_key(subscription_id)
            pipe.hincrby(key, "failed", 1)
            pipe.hincrby(key, "consecutive_failures", 1)
            pipe.hset(key, mapping={"last_error_at": at, "last_error": detail[:300]})
            _, consecutive, _ = await pipe.execute()
        return int(consecutive)

    async def record_dead_letter(self, subscription_id: str) -> None:
        await self.redis.hincrby(_state_key(subscription_id), "dead_lettered", 1)

    async def open_circuit(self, subscription_id: str, until: float) -> None:
        await self.redis.hset(_state_key(subscription_id), "circuit_open_until", until)

    async def take_rate_slot(self, subscription_id: str, limit: int, now: float) -> bool:
        """Count one message in the current minute; False when the limit is reached."""
        key = f"{PREFIX}rate:{subscription_id}:{int(now // 60)}"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            count, _ = await pipe.execute()
        return int(count) <= limit

    async def overview(self) -> list[dict[str, Any]]:
        """Every subscription with its delivery state (``vigil status``, the admin API)."""
        rows = []
        for subscription in await self.all():
            state = await self.state(subscription.id)
            rows.append({"subscription": subscription.public(), "state": state.__dict__})
        return rows
