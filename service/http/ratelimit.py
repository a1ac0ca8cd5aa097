"""Per-caller rate limits: requests and tokens per minute, as token buckets, per replica.

Each limited caller (an API key, or a client IP when authentication is off) has up to two
buckets, each holding at most its per-minute amount and refilled continuously at amount / 60
per second, so a caller may burst up to a minute's allowance and then goes at the steady rate.

- The request bucket is charged 1 when a request is admitted; with less than 1 left it refuses.
- The token bucket is charged after the request, with the tokens it actually used (prompt and
  completion), which are not known earlier. It may go negative (a debt): while it is negative
  the caller's requests are refused, until the refill has paid the debt back. A single request
  can thus use more than the limit, and the caller then waits for as long as that takes.

A refused request is answered at once with the whole seconds after which the bucket would
admit one more request (at least 1). Nothing is shared between replicas: with N replicas behind
a load balancer a caller gets up to N times the limits, unless the buckets live in Redis
(`redis_url`: `service/http/ratelimit_redis.py`, the same buckets behind the same `Limiter`
interface). The clock is injectable (`clock`, a monotonic reading in seconds) so that tests
need not sleep.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from prometheus_client import Counter

Limit = Literal["requests", "tokens"]
Clock = Callable[[], float]


class TokenBucket:
    """`capacity` per minute, refilled continuously; the level may go below 0 (a debt)."""

    __slots__ = ("capacity", "level", "rate", "updated")

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # per second
        self.level = self.capacity  # starts full
        self.updated = now

    def refill(self, now: float) -> float:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now
        return self.level

    def wait(self, need: float, now: float) -> float:
        """Seconds until the level reaches `need` (0 if it already has)."""
        missing = need - self.refill(now)
        return missing / self.rate if missing > 0 else 0.0

    def charge(self, amount: float, now: float) -> None:
        self.refill(now)
        self.level -= amount

    def full(self, now: float) -> bool:
        return self.refill(now) >= self.capacity


@dataclass(slots=True)
class Refusal:
    limit: Limit
    retry_after: int  # whole seconds, >= 1
    per_minute: int


class Ticket(Protocol):
    """An admitted request's charge; `finish` charges the tokens it used when it ends."""

    async def finish(self, tokens: int) -> None: ...


class Limiter(Protocol):
    """Where the buckets live: this process (`LocalLimiter`) or Redis (`RedisLimiter`)."""

    @property
    def scope(self) -> str:
        """Where the limit holds, for the refusal's message ("on this replica")."""
        ...

    async def admit(
        self, name: str, requests_per_minute: int | None, tokens_per_minute: int | None
    ) -> Ticket | Refusal:
        """Charge one request to `name`, or refuse it (a refused request is not charged).

        May raise a `GatewayError` when the limits cannot be checked (Redis fail-closed)."""
        ...

    def count_errors_in(self, counter: Counter) -> None:
        """Count the requests the limits could not be checked for (Redis unreachable)."""
        ...

    async def aclose(self) -> None: ...


class Caller:
    """One caller's buckets and its requests in flight (a caller in flight is never evicted)."""

    __slots__ = ("active", "requests", "tokens")

    def __init__(self, requests: TokenBucket | None, tokens: TokenBucket | None) -> None:
        self.requests = requests
        self.tokens = tokens
        self.active = 0

    def idle(self, now: float) -> bool:
        return (
            self.active == 0
            and (self.requests is None or self.requests.full(now))
            and (self.tokens is None or self.tokens.full(now))
        )


def whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


class RateLimiter:
    """The buckets of every caller seen on this replica.

    A caller whose buckets are full again holds no state worth keeping: such entries are swept
    out when the table has doubled since the last sweep, so memory stays bounded by the callers
    active within about a minute (client IPs included).
    """

    SWEEP_MIN = 1024

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._callers: dict[str, Caller] = {}
        self._sweep_at = self.SWEEP_MIN

    def __len__(self) -> int:
        return len(self._callers)

    def _caller(
        self, name: str, requests_per_minute: int | None, tokens_per_minute: int | None, now: float
    ) -> Caller:
        caller = self._callers.get(name)
        if caller is None:
            if len(self._callers) >= self._sweep_at:
                self.sweep(now)
            caller = Caller(
                TokenBucket(requests_per_minute, now) if requests_per_minute else None,
                TokenBucket(tokens_per_minute, now) if tokens_per_minute else None,
            )
            self._callers[name] = caller
        return caller

    def sweep(self, now: float) -> None:
        """Forget the callers whose buckets are full and who have nothing in flight."""
        for name in [name for name, caller in self._callers.items() if caller.idle(now)]:
            del self._callers[name]
        self._sweep_at = max(self.SWEEP_MIN, 2 * len(self._callers))

    def admit(
        self, name: str, requests_per_minute: int | None, tokens_per_minute: int | None
    ) -> Caller | Refusal:
        """Charge one request to `name`, or say which limit refuses it and for how long.

        The caller returned must be given back to `finish` when the request ends. A refused
        request is not charged.
        """
        now = self.clock()
        caller = self._caller(name, requests_per_minute, tokens_per_minute, now)
        refusal: Refusal | None = None
        if caller.tokens is not None:
            wait = caller.tokens.wait(0.0, now)  # refused while in debt
            if wait > 0:
                refusal = Refusal("tokens", whole_seconds(wait), int(caller.tokens.capacity))
        if caller.requests is not None:
            wait = caller.requests.wait(1.0, now)
            if wait > 0 and (refusal is None or whole_seconds(wait) > refusal.retry_after):
                refusal = Refusal("requests", whole_seconds(wait), int(caller.requests.capacity))
        if refusal is not None:
            return refusal
        if caller.requests is not None:
            caller.requests.charge(1.0, now)
        caller.active += 1
        return caller

    def finish(self, caller: Caller, tokens: int) -> None:
        """The request admitted for `caller` ended, having used `tokens` (prompt + completion)."""
        caller.active -= 1
        if caller.tokens is not None and tokens > 0:
            caller.tokens.charge(float(tokens), self.clock())


@dataclass(slots=True)
class _LocalTicket:
    limiter: RateLimiter
    caller: Caller

    async def finish(self, tokens: int) -> None:
        self.limiter.finish(self.caller, tokens)


class LocalLimiter:
    """The buckets in this process (`RateLimiter`), behind the `Limiter` interface."""

    scope = "on this replica"

    def __init__(self, buckets: RateLimiter | None = None) -> None:
        self.buckets = buckets if buckets is not None else RateLimiter()

    async def admit(
        self, name: str, requests_per_minute: int | None, tokens_per_minute: int | None
    ) -> Ticket | Refusal:
        admitted = self.buckets.admit(name, requests_per_minute, tokens_per_minute)
        if isinstance(admitted, Refusal):
            return admitted
        return _LocalTicket(self.buckets, admitted)

    def count_errors_in(self, counter: Counter) -> None:
        return None  # nothing here can fail

    async def aclose(self) -> None:
        return None
