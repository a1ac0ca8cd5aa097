"""The shared (Redis) rate limiter against a real redis-server: the buckets, their sharing,
their expiry, and what happens when Redis does not answer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Literal

import pytest
from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis

from service.errors import RateLimitUnavailableError
from service.http.ratelimit import Refusal, Ticket
from service.http.ratelimit_redis import BACKOFF_SECONDS, RedisLimiter, bucket_keys
from tests.fakes import Clock
from tests.processes import free_port
from tests.redis_server import RedisServer


def admitted(result: Ticket | Refusal) -> Ticket:
    assert not isinstance(result, Refusal), result
    return result


def refused(result: Ticket | Refusal) -> Refusal:
    assert isinstance(result, Refusal), result
    return result


def errors_counter() -> Counter:
    return Counter("errors", "test", registry=CollectorRegistry())


@pytest.fixture
async def limiters(redis_process: RedisServer) -> AsyncIterator[tuple[RedisLimiter, RedisLimiter]]:
    """Two limiters on one Redis, as two replicas would have."""
    a = RedisLimiter(redis_process.url, failure="open", timeout=1.0)
    b = RedisLimiter(redis_process.url, failure="open", timeout=1.0)
    yield a, b
    await a.aclose()
    await b.aclose()


async def move_back(url: str, key: str, seconds: float) -> None:
    """Pretend the bucket was last charged `seconds` earlier (Redis' clock cannot be moved)."""
    async with Redis.from_url(url) as client:
        updated = await client.hget(key, "updated")
        assert updated is not None
        await client.hset(key, "updated", repr(float(updated) - seconds))


async def test_the_request_bucket_is_shared_by_the_replicas(
    limiters: tuple[RedisLimiter, RedisLimiter],
) -> None:
    a, b = limiters
    for i in range(6):  # 6 a minute, spread over two replicas
        admitted(await (a if i % 2 else b).admit("key:x", 6, None))
    refusal = refused(await a.admit("key:x", 6, None))
    assert (refusal.limit, refusal.retry_after, refusal.per_minute) == ("requests", 10, 6)
    refused(await b.admit("key:x", 6, None))
    admitted(await a.admit("key:other", 6, None))  # callers have their own buckets


async def test_a_bucket_refills_and_a_refusal_is_not_charged(
    limiters: tuple[RedisLimiter, RedisLimiter], redis_process: RedisServer
) -> None:
    a, _ = limiters
    admitted(await a.admit("ip:1", 1, None))
    for _ in range(5):
        refused(await a.admit("ip:1", 1, None))
    await move_back(redis_process.url, bucket_keys("ip:1")[0], 60)
    admitted(await a.admit("ip:1", 1, None))  # one minute later: exactly one more


async def test_tokens_are_charged_at_the_end_and_a_debt_refuses_on_every_replica(
    limiters: tuple[RedisLimiter, RedisLimiter], redis_process: RedisServer
) -> None:
    a, b = limiters
    first = admitted(await a.admit("key:t", None, 600))  # 10 tokens a second
    second = admitted(await b.admit("key:t", None, 600))  # nothing charged yet
    await first.finish(500)
    admitted(await b.admit("key:t", None, 600))  # 100 left
    await second.finish(700)  # -600: a minute's debt
    refusal = refused(await b.admit("key:t", None, 600))
    assert (refusal.limit, refusal.per_minute) == ("tokens", 600)
    assert 59 <= refusal.retry_after <= 60  # Redis' clock moved a little meanwhile
    refused(await a.admit("key:t", None, 600))
    await move_back(redis_process.url, bucket_keys("key:t")[1], 61)
    admitted(await a.admit("key:t", None, 600))


async def test_with_both_limits_the_longer_wait_is_reported(
    limiters: tuple[RedisLimiter, RedisLimiter],
) -> None:
    a, _ = limiters
    await admitted(await a.admit("key:both", 1, 60)).finish(200)  # 60 - 200: a 140 s debt
    refusal = refused(await a.admit("key:both", 1, 60))  # beats the request bucket's 60 s
    assert refusal.limit == "tokens" and 139 <= refusal.retry_after <= 140


async def test_buckets_expire_once_they_would_be_full_again(
    limiters: tuple[RedisLimiter, RedisLimiter], redis_process: RedisServer
) -> None:
    a, _ = limiters
    await admitted(await a.admit("key:e", 60, 120)).finish(60)
    requests_key, tokens_key = bucket_keys("key:e")
    async with Redis.from_url(redis_process.url) as client:
        request_ttl, token_ttl = await client.pttl(requests_key), await client.pttl(tokens_key)
    assert 1000 < request_ttl <= 2000  # 1 of 60 used: full again after 1 s (+ 1 s margin)
    assert 30_000 < token_ttl <= 31_000  # 60 of 120 used: full again after 30 s


@pytest.mark.parametrize("failure", ["open", "closed"])
async def test_when_redis_is_down_the_failure_setting_decides_at_once(
    failure: Literal["open", "closed"], caplog: pytest.LogCaptureFixture
) -> None:
    errors = errors_counter()
    clock = Clock(100.0)
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    limiter = RedisLimiter(nowhere, failure=failure, timeout=1.0, errors=errors, clock=clock)
    try:
        for _ in range(3):  # the first one tries Redis; the next two are in its back-off
            if failure == "open":
                ticket = admitted(await limiter.admit("key:d", 1, 10))
                await ticket.finish(100)
            else:
                with pytest.raises(RateLimitUnavailableError) as info:
                    await limiter.admit("key:d", 1, 10)
                assert info.value.status_code == 503 and info.value.retry_after == 1
        assert errors._value.get() == 3
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and f"failing {failure}" in warnings[0].getMessage()
    finally:
        await limiter.aclose()


async def test_redis_stopping_mid_run_fails_as_configured_then_recovers(
    redis_process: RedisServer,
) -> None:
    errors = errors_counter()
    clock = Clock(100.0)
    limiter = RedisLimiter(
        redis_process.url, failure="closed", timeout=1.0, errors=errors, clock=clock
    )
    try:
        ticket = admitted(await limiter.admit("key:m", 100, 1000))
        redis_process.stop()
        await ticket.finish(10)  # the charge is lost, counted, and does not raise
        assert errors._value.get() == 1
        with pytest.raises(RateLimitUnavailableError):
            await limiter.admit("key:m", 100, 1000)
        assert errors._value.get() == 2
        redis_process.start()  # back, empty
        with pytest.raises(RateLimitUnavailableError):
            await limiter.admit("key:m", 100, 1000)  # still in its back-off: not asked
        clock.now += BACKOFF_SECONDS
        admitted(await limiter.admit("key:m", 100, 1000))
        assert errors._value.get() == 3
    finally:
        await limiter.aclose()
