"""Subscriptions and their delivery state, kept in Redis and shared by every replica.

The YAML file is loaded at start and written over the stored copies of the ids it names;
subscriptions created through the admin API or ``vigil subscriptions`` live only in Redis.
A version counter lets replicas notice a change without re-reading every alert.

Per subscriber: ``state:{id}`` (counters, circuit, pause: :class:`EndpointState`),
``window:{id}`` (successes and failures per period of the breaker's window),
``rate:{id}:{minute}`` (messages sent in a minute) and ``log:{id}`` (the delivery log).
"""

from __future__ import annotations

import hashlib
from typing import Any, cast

from pydantic import ValidationError
from redis.asyncio import Redis

from services.notifier import metrics
from services.notifier.deliverylog import log_key
from services.notifier.jobs import PREFIX
from services.notifier.state import EndpointState, Window
from services.notifier.subscriptions import Subscription
from shared.hashes import from_hash
from shared.logging import get_logger
from shared.settings import ConfigError, describe_validation_error

SUBSCRIPTIONS = PREFIX + "subscriptions"
VERSION = PREFIX + "subscriptions:version"
FILE_DIGESTS = PREFIX + "subscriptions:file"  # id -> digest of the file's entry, last synced

log = get_logger("notifier")


def _state_key(subscription_id: str) -> str:
    return f"{PREFIX}state:{subscription_id}"


def _window_key(subscription_id: str) -> str:
    return f"{PREFIX}window:{subscription_id}"


class UnreadableSubscriptionError(ConfigError):
    """A stored subscription this version cannot use (an unknown channel, a changed rule);
    the message names the problem as a dead-letter reason."""


# Count one attempt in the current period and drop periods that left the window.
# KEYS: window; ARGV: field to increment, current period, periods kept, TTL (ms).
_RECORD_ATTEMPT = """
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
local oldest = tonumber(ARGV[2]) - tonumber(ARGV[3])
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if tonumber(string.match(name, '^(-?%d+)')) <= oldest then redis.call('HDEL', KEYS[1], name) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return redis.call('HGETALL', KEYS[1])
"""

# Make ``ARGV[1]`` the probe of a half-open circuit unless a live probe exists.
_CLAIM_PROBE = """
local open_until = tonumber(redis.call('HGET', KEYS[1], 'circuit_open_until') or '0')
local probe_until = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
local now = tonumber(ARGV[2])
if open_until > 0 and open_until <= now and probe_until <= now then
  redis.call('HSET', KEYS[1], 'probe_job', ARGV[1], 'probe_until', now + tonumber(ARGV[3]))
end
return redis.call('HGETALL', KEYS[1])
"""

# Take one of ``ARGV[1]`` messages of this minute if one is left.
_TAKE_RATE_SLOT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], 120)
return 1
"""


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}


class SubscriptionStore:
    """CRUD on subscriptions plus per-subscriber counters, circuit, pause and rate limit."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._record_attempt = redis.register_script(_RECORD_ATTEMPT)
        self._claim_probe = redis.register_script(_CLAIM_PROBE)
        self._take_rate_slot = redis.register_script(_TAKE_RATE_SLOT)

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
        """Every usable subscription; one this version cannot read is logged, counted and left
        out, never fatal: every other subscriber still gets the alert."""
        rows = await self.redis.hgetall(SUBSCRIPTIONS)
        subs = []
        for subscription_id, body in rows.items():
            try:
                subs.append(_parse(str(subscription_id), body))
            except UnreadableSubscriptionError as error:
                log.warning(
                    "notifier.subscription_unreadable",
                    subscription=subscription_id,
                    error=str(error),
                )
        metrics.NOTIFIER_UNREADABLE_SUBSCRIPTIONS.set(len(rows) - len(subs))
        return sorted(subs, key=lambda s: s.id)

    async def get(self, subscription_id: str) -> Subscription | None:
        """The subscription, None if there is none; raises :class:`UnreadableSubscriptionError`
        for one stored that this version cannot use."""
        body = await self.redis.hget(SUBSCRIPTIONS, subscription_id)
        return None if body is None else _parse(subscription_id, body)

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
            pipe.delete(
                _state_key(subscription_id), _window_key(subscription_id), log_key(subscription_id)
            )
            pipe.incr(VERSION)
            deleted, _, _ = await pipe.execute()
        return bool(deleted)

    async def enable(self, subscription_id: str) -> Subscription | None:
        """Turn a subscription back on; None if there is none."""
        current = await self.get(subscription_id)
        if current is None:
            return None
        updated = current.model_copy(update={"enabled": True})
        await self.put(updated)
        return updated

    async def disable(self, subscription_id: str, reason: str) -> Subscription | None:
        """Turn a subscription off (by an operator, after ``410 Gone``, or a dead endpoint)."""
        current = await self.get(subscription_id)
        if current is None:
            return None
        updated = current.model_copy(update={"enabled": False})
        await self.put(updated)
        await self.redis.hset(_state_key(subscription_id), "disabled_reason", reason)
        return updated

    async def state(self, subscription_id: str) -> EndpointState:
        raw = cast(dict[str, str], await self.redis.hgetall(_state_key(subscription_id)))
        return from_hash(EndpointState, raw)

    async def claim_probe(
        self, subscription_id: str, job_id: str, now: float, lease: float
    ) -> EndpointState:
        """Make ``job_id`` the one probe of a half-open circuit, unless another is in flight;
        returns the state after the attempt."""
        raw = await self._claim_probe(keys=[_state_key(subscription_id)], args=[job_id, now, lease])
        return from_hash(EndpointState, _pairs(raw))

    async def record_attempt(
        self, subscription_id: str, *, failed: bool, period: int, periods: int, ttl: float
    ) -> Window:
        """Count an attempt in ``period`` of the breaker's window; returns the window."""
        field = f"{period}:{'f' if failed else 's'}"
        raw = await self._record_attempt(
            keys=[_window_key(subscription_id)], args=[field, period, periods, int(ttl * 1000)]
        )
        window: dict[int, tuple[int, int]] = {}
        for name, count in _pairs(raw).items():
            number, _, kind = name.partition(":")
            successes, failures = window.get(int(number), (0, 0))
            if kind == "f":
                failures += int(count)
            else:
                successes += int(count)
            window[int(number)] = (successes, failures)
        return window

    async def record_success(self, subscription_id: str, at: float, *, close: bool) -> None:
        """Delivered: reset the failure run; ``close`` the circuit after a good probe."""
        key = _state_key(subscription_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "delivered", 1)
            pipe.hset(key, mapping={"last_success_at": at, "consecutive_failures": 0})
            if close:
                pipe.hset(key, mapping={"circuit_open_until": 0, "circuit_opened_at": 0,
                                        "probe_job": "", "probe_until": 0})  # fmt: skip
                pipe.delete(_window_key(subscription_id))
            await pipe.execute()

    async def record_failure(self, subscription_id: str, at: float, detail: str) -> None:
        """Count a failed attempt and keep its detail."""
        async with self.redis.pipeline(transaction=True) as pipe:
            key = _state_key(subscription_id)
            pipe.hincrby(key, "failed", 1)
            pipe.hincrby(key, "consecutive_failures", 1)
            pipe.hset(key, mapping={"last_error_at": at, "last_error": detail[:300]})
            await pipe.execute()

    async def record_dead_letter(self, subscription_id: str) -> None:
        await self.redis.hincrby(_state_key(subscription_id), "dead_lettered", 1)

    async def open_circuit(self, subscription_id: str, until: float, at: float) -> None:
        """Open (or re-open, after a failed probe) the circuit until ``until``."""
        key = _state_key(subscription_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"circuit_open_until": until, "probe_job": "", "probe_until": 0})
            pipe.hsetnx(key, "circuit_opened_at", at)
            await pipe.execute()

    async def pause(self, subscription_id: str, until: float) -> None:
        """Hold every job of the endpoint until ``until`` (it asked us to wait)."""
        await self.redis.hset(_state_key(subscription_id), "paused_until", until)

    async def take_rate_slot(self, subscription_id: str, limit: int, now: float) -> bool:
        """Take one of the ``limit`` messages of the current minute; False if none is left."""
        key = f"{PREFIX}rate:{subscription_id}:{int(now // 60)}"
        return bool(await self._take_rate_slot(keys=[key], args=[limit]))

    async def overview(self) -> list[dict[str, Any]]:
        """Every subscription with its delivery state (``vigil status``, the admin API)."""
        rows = []
        for subscription in await self.all():
            state = await self.state(subscription.id)
            rows.append({"subscription": subscription.public(), "state": state.__dict__})
        return rows


def _parse(subscription_id: str, body: str | bytes) -> Subscription:
    try:
        return Subscription.model_validate_json(body)
    except ValidationError as error:
        problem = describe_validation_error(error, prefix="")
        kind = "unknown_channel" if "unknown channel" in problem else "invalid_subscription"
        raise UnreadableSubscriptionError(f"{kind}: {subscription_id}: {problem}") from error
