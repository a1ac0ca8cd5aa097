"""Rate limits shared by every replica: the token buckets of `ratelimit.py`, kept in Redis.

The same buckets and rules as the in-process limiter (a request charged when admitted, its
tokens when it ends, a token debt refusing until refilled), each bucket a Redis hash
(`level`, `updated`) read, refilled and charged by one Lua script, atomically, on Redis' own
clock (`TIME`), so replicas with skewed clocks agree. A bucket expires once it would be full
again (a missing bucket is a full one), so Redis holds only the callers active within about a
minute. The two buckets of a caller share a hash tag (`{name}`), so the scripts work on a Redis
Cluster too.

When Redis does not answer within `redis_timeout_seconds` (no retries: the request is waiting),
`redis_failure` decides: `open` admits the request unlimited, `closed` refuses it with 503
`rate_limit_unavailable`. Either way the request is counted
(`gateway_ratelimit_backend_errors_total`) and the failure logged; Redis is then left alone for
`BACKOFF_SECONDS`, during which the same decision applies without waiting on it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Literal

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from service.errors import RateLimitUnavailableError
from service.http.ratelimit import Clock, Refusal, Ticket, whole_seconds

logger = logging.getLogger(__name__)

KEY_PREFIX = "llm-gateway:ratelimit:"
BACKOFF_SECONDS = 1.0

# KEYS[1] the request bucket, KEYS[2] the token bucket; ARGV[1] requests and ARGV[2] tokens per
# minute (0: no such limit). Returns {1} (charged one request) or {0, seconds until the request
# bucket admits one, seconds until the token debt is paid} (nothing charged).
_LEVEL = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local function level(key, capacity)
  local stored = redis.call('HMGET', key, 'level', 'updated')
  local value, updated = tonumber(stored[1]), tonumber(stored[2])
  if value == nil or updated == nil then return capacity end
  if now > updated then value = math.min(capacity, value + (now - updated) * capacity / 60) end
  return value
end
local function store(key, capacity, value)
  redis.call('HSET', key, 'level', string.format('%.17g', value),
             'updated', string.format('%.17g', now))
  redis.call('PEXPIRE', key, math.ceil((capacity - value) * 60000 / capacity) + 1000)
end
"""
ADMIT_SCRIPT = (
    _LEVEL
    + """
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local wait_requests, wait_tokens = 0, 0
if tpm > 0 then
  local tokens = level(KEYS[2], tpm)
  if tokens < 0 then wait_tokens = -tokens * 60 / tpm end
end
local requests = 0
if rpm > 0 then
  requests = level(KEYS[1], rpm)
  if requests < 1 then wait_requests = (1 - requests) * 60 / rpm end
end
if wait_requests > 0 or wait_tokens > 0 then
  return {0, string.format('%.6f', wait_requests), string.format('%.6f', wait_tokens)}
end
if rpm > 0 then store(KEYS[1], rpm, requests - 1) end
return {1}
"""
)
# KEYS[1] the token bucket; ARGV[1] tokens per minute, ARGV[2] the tokens the request used.
FINISH_SCRIPT = (
    _LEVEL
    + """
local tpm = tonumber(ARGV[1])
store(KEYS[1], tpm, level(KEYS[1], tpm) - tonumber(ARGV[2]))
return 1
"""
)


def bucket_keys(name: str) -> tuple[str, str]:
    """(request bucket, token bucket) of caller `name`, in one Cluster slot."""
    return f"{KEY_PREFIX}{{{name}}}:requests", f"{KEY_PREFIX}{{{name}}}:tokens"


class _Unlimited:
    """Admitted without a token charge to make (no token limit, or Redis failed open)."""

    async def finish(self, tokens: int) -> None:
        return None


UNLIMITED = _Unlimited()


@dataclass(slots=True)
class _TokenCharge:
    limiter: RedisLimiter
    key: str
    per_minute: int

    async def finish(self, tokens: int) -> None:
        if tokens > 0:
            await self.limiter.charge_tokens(self.key, self.per_minute, tokens)


class RedisLimiter:
    """The `Limiter` on a Redis shared by the replicas; one per app."""

    scope = "shared by all replicas"

    def __init__(
        self,
        url: str,
        *,
        failure: Literal["open", "closed"],
        timeout: float,
        errors: Counter | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.client = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # the request is waiting: no second try
        )
        self.failure = failure
        self.timeout = timeout
        self.errors = errors
        self.clock = clock
        self._admit_script = self.client.register_script(ADMIT_SCRIPT)
        self._finish_script = self.client.register_script(FINISH_SCRIPT)
        self._retry_at = 0.0  # Redis is left alone until then, after a failure

    async def admit(
        self, name: str, requests_per_minute: int | None, tokens_per_minute: int | None
    ) -> Ticket | Refusal:
        requests_key, tokens_key = bucket_keys(name)
        if self.clock() < self._retry_at:
            return self._failed()
        try:
            async with asyncio.timeout(2 * self.timeout):  # connect + reply, at most
                reply = await self._admit_script(
                    keys=[requests_key, tokens_key],
                    args=[requests_per_minute or 0, tokens_per_minute or 0],
                )
        except (RedisError, OSError, TimeoutError) as err:
            self._back_off("admit", err)
            return self._failed()
        if int(reply[0]) != 1:
            wait_requests, wait_tokens = float(reply[1]), float(reply[2])
            if wait_tokens > 0 and whole_seconds(wait_tokens) >= whole_seconds(wait_requests):
                return Refusal("tokens", whole_seconds(wait_tokens), tokens_per_minute or 0)
            return Refusal("requests", whole_seconds(wait_requests), requests_per_minute or 0)
        if tokens_per_minute:
            return _TokenCharge(self, tokens_key, tokens_per_minute)
        return UNLIMITED

    async def charge_tokens(self, key: str, per_minute: int, tokens: int) -> None:
        """Charge what a request used; on failure the charge is lost (logged, counted)."""
        if self.clock() < self._retry_at:
            self._count()
            return
        try:
            async with asyncio.timeout(2 * self.timeout):
                await self._finish_script(keys=[key], args=[per_minute, tokens])
        except (RedisError, OSError, TimeoutError) as err:
            self._back_off("charge tokens", err)
            self._count()

    def count_errors_in(self, counter: Counter) -> None:
        self.errors = counter

    async def aclose(self) -> None:
        await self.client.aclose()

    def _back_off(self, what: str, err: BaseException) -> None:
        self._retry_at = self.clock() + BACKOFF_SECONDS
        logger.warning(
            "rate limit backend (Redis) failed to %s: %s: %s; failing %s for %.0fs",
            what,
            type(err).__name__,
            err,
            self.failure,
            BACKOFF_SECONDS,
        )

    def _count(self) -> None:
        if self.errors is not None:
            self.errors.inc()

    def _failed(self) -> Ticket:
        self._count()
        if self.failure == "closed":
            raise RateLimitUnavailableError(
                "Rate limits cannot be checked right now; retry shortly.",
                retry_after=whole_seconds(BACKOFF_SECONDS),
            )
        return UNLIMITED
