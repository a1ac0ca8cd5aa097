"""Token buckets and the per-caller rate limiter, on a hand-driven clock (no sleeps)."""

from __future__ import annotations

import pytest

from service.http.ratelimit import Caller, RateLimiter, Refusal, TokenBucket
from tests.fakes import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock(1000.0)


@pytest.fixture
def limiter(clock: Clock) -> RateLimiter:
    return RateLimiter(clock=clock)


def admitted(result: Caller | Refusal) -> Caller:
    assert isinstance(result, Caller), result
    return result


def refused(result: Caller | Refusal) -> Refusal:
    assert isinstance(result, Refusal), result
    return result


def test_a_bucket_starts_full_and_refills_continuously_up_to_its_capacity() -> None:
    bucket = TokenBucket(60, now=0.0)  # one per second
    assert bucket.refill(0.0) == 60
    bucket.charge(60, 0.0)
    assert bucket.refill(0.5) == pytest.approx(0.5)
    assert bucket.wait(1.0, 0.5) == pytest.approx(0.5)
    assert bucket.refill(1000.0) == 60  # capped
    assert bucket.full(1000.0)


def test_a_bucket_may_go_into_debt_and_refills_out_of_it() -> None:
    bucket = TokenBucket(600, now=0.0)  # 10 per second
    bucket.charge(1200, 0.0)
    assert bucket.level == -600
    assert bucket.wait(0.0, 0.0) == pytest.approx(60.0)
    assert bucket.wait(0.0, 30.0) == pytest.approx(30.0)
    assert bucket.wait(0.0, 60.0) == 0.0


def test_requests_burst_up_to_the_per_minute_amount_then_go_at_its_rate(
    limiter: RateLimiter, clock: Clock
) -> None:
    for _ in range(3):
        limiter.finish(admitted(limiter.admit("a", 3, None)), 0)
    refusal = refused(limiter.admit("a", 3, None))
    assert (refusal.limit, refusal.per_minute) == ("requests", 3)
    assert refusal.retry_after == 20  # one request every 20 s
    clock.now += 19.5
    assert refused(limiter.admit("a", 3, None)).retry_after == 1  # 0.5 s, rounded up to 1
    clock.now += 0.5
    admitted(limiter.admit("a", 3, None))
    refused(limiter.admit("a", 3, None))


def test_callers_have_their_own_buckets(limiter: RateLimiter) -> None:
    admitted(limiter.admit("a", 1, None))
    refused(limiter.admit("a", 1, None))
    admitted(limiter.admit("b", 1, None))


def test_a_refused_request_is_not_charged(limiter: RateLimiter, clock: Clock) -> None:
    admitted(limiter.admit("a", 60, None))  # 1 per second, 59 left
    for _ in range(59):
        admitted(limiter.admit("a", 60, None))
    for _ in range(10):
        refused(limiter.admit("a", 60, None))
    clock.now += 1.0
    admitted(limiter.admit("a", 60, None))  # the refusals did not dig a hole


def test_tokens_are_charged_when_the_request_ends_and_a_debt_refuses_until_repaid(
    limiter: RateLimiter, clock: Clock
) -> None:
    first = admitted(limiter.admit("a", None, 600))  # 10 tokens per second
    second = admitted(limiter.admit("a", None, 600))  # admitted: nothing charged yet
    limiter.finish(first, 500)
    admitted(limiter.admit("a", None, 600))  # 100 left: still not in debt
    limiter.finish(second, 700)  # -600: a debt of a minute
    refusal = refused(limiter.admit("a", None, 600))
    assert (refusal.limit, refusal.retry_after, refusal.per_minute) == ("tokens", 60, 600)
    clock.now += 59.9
    assert refused(limiter.admit("a", None, 600)).retry_after == 1
    clock.now += 0.1
    admitted(limiter.admit("a", None, 600))


def test_with_both_limits_the_longer_wait_is_reported(limiter: RateLimiter, clock: Clock) -> None:
    caller = admitted(limiter.admit("a", 1, 60))  # 1 request a minute, 1 token a second
    limiter.finish(caller, 90)  # a 30 s debt; the request bucket needs 60 s
    refusal = refused(limiter.admit("a", 1, 60))
    assert (refusal.limit, refusal.retry_after) == ("requests", 60)
    clock.now += 60
    caller = admitted(limiter.admit("a", 1, 60))
    limiter.finish(caller, 200)  # 30 left (the debt was repaid) - 200: a 170 s debt
    refusal = refused(limiter.admit("a", 1, 60))  # beats the request bucket's 60 s
    assert (refusal.limit, refusal.retry_after) == ("tokens", 170)


def test_idle_callers_are_swept_but_not_those_in_flight(limiter: RateLimiter, clock: Clock) -> None:
    busy = admitted(limiter.admit("busy", 10, None))
    limiter.finish(admitted(limiter.admit("recent", 10, None)), 0)
    limiter.finish(admitted(limiter.admit("old", 10, None)), 0)
    clock.now += 120  # the buckets are all full again
    limiter.finish(admitted(limiter.admit("recent", 10, None)), 0)
    limiter.sweep(clock())
    assert len(limiter) == 2  # "old" forgotten; "busy" is in flight, "recent" not yet full
    limiter.finish(busy, 0)
    clock.now += 120
    limiter.sweep(clock())
    assert len(limiter) == 0


def test_the_table_sweeps_itself_as_it_grows(limiter: RateLimiter, clock: Clock) -> None:
    for i in range(RateLimiter.SWEEP_MIN):
        limiter.finish(admitted(limiter.admit(f"ip{i}", 10, None)), 0)
    assert len(limiter) == RateLimiter.SWEEP_MIN
    clock.now += 60
    admitted(limiter.admit("newcomer", 10, None))
    assert len(limiter) == 1
