"""Time-aware admission: the drain rate, the wait it predicts, and the refusals it makes, on a
hand-driven clock (no sleeps, no timing)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, Gauge

from service.errors import OverloadedError
from service.runtime.admission import Admission, Permit
from service.runtime.drain_rate import DrainRate
from tests.fakes import Clock


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_no_rate_until_sequences_have_finished_while_requests_waited() -> None:
    clock = Clock()
    rate = DrainRate(clock=clock)
    rate.finished(4)  # no queue: finishing at the pace clients send says nothing
    assert rate.per_second is None and rate.wait_for(10) is None
    rate.queue_started()
    clock.now += 2.0
    assert rate.per_second is None  # waiting, nothing finished yet
    rate.finished(4)
    assert rate.per_second == pytest.approx(2.0, rel=0.01)
    assert rate.wait_for(10) == pytest.approx(5.0, rel=0.01)


def test_the_rate_follows_the_recent_pace_and_survives_a_quiet_period() -> None:
    clock = Clock()
    rate = DrainRate(time_constant=10.0, clock=clock)
    rate.queue_started()
    for _ in range(100):  # 1 a second for 100 s
        clock.now += 1.0
        rate.finished(1)
    assert rate.per_second == pytest.approx(1.0, rel=0.02)
    for _ in range(100):  # then 4 a second: the estimate moves there within a few tau
        clock.now += 1.0
        rate.finished(4)
    assert rate.per_second == pytest.approx(4.0, rel=0.02)
    rate.queue_emptied()
    clock.now += 3600.0  # an hour without a queue changes nothing
    assert rate.per_second == pytest.approx(4.0, rel=0.02)


def test_a_batch_finishing_at_once_adds_sequences_not_time() -> None:
    clock = Clock()
    rate = DrainRate(time_constant=10.0, clock=clock)
    rate.queue_started()
    for _ in range(10):  # a batch of 8 every 4 s: 2 a second
        clock.now += 4.0
        for _ in range(8):
            rate.finished(1)
    assert rate.per_second == pytest.approx(2.0, rel=0.05)


async def admission_with_rate(
    *, inflight: int, queued: int, per_second: float, max_wait: float | None = 30.0
) -> tuple[Admission, Clock, list[Permit]]:
    """An admission whose queue has drained `inflight` sequences at `per_second`, now full."""
    clock = Clock()
    a = Admission(
        max_inflight=inflight,
        max_queued=queued,
        max_queue_wait=max_wait,
        drain_rate=DrainRate(clock=clock),
    )
    held = [await a.acquire(1) for _ in range(inflight)]
    waiters = [asyncio.create_task(a.acquire(1)) for _ in range(inflight)]
    await settle()
    clock.now += inflight / per_second
    for permit in held:
        permit.release()
    return a, clock, [await w for w in waiters]


async def test_before_any_rate_only_the_count_bounds_apply() -> None:
    a = Admission(max_inflight=1, max_queued=100, max_queue_wait=0.001)
    held = await a.acquire(1)
    waiting = asyncio.create_task(a.acquire(1, deadline=asyncio.get_running_loop().time()))
    await settle()
    assert not waiting.done() and a.queued == 1  # queued, though its deadline is now
    assert a.estimated_wait() is None
    held.release()
    (await waiting).release()


async def test_a_request_whose_estimated_wait_passes_its_deadline_is_refused_at_once() -> None:
    a, _, held = await admission_with_rate(inflight=2, queued=200, per_second=1.0)
    loop = asyncio.get_running_loop()
    queued = [asyncio.create_task(a.acquire(1, deadline=loop.time() + 600)) for _ in range(20)]
    await settle()
    assert a.queued == 20  # 20 s of work, each within the 30 s bound
    assert a.estimated_wait() == pytest.approx(21.0, rel=0.01)
    with pytest.raises(OverloadedError) as info:
        await a.acquire(1, deadline=loop.time() + 2.0)
    assert info.value.code == "overloaded" and info.value.retry_after == 21
    assert "deadline" in str(info.value)
    assert a.queued == 20  # the refusal took nothing
    fits = asyncio.create_task(a.acquire(1, deadline=loop.time() + 60.0))
    await settle()
    assert a.queued == 21 and not fits.done()  # fits its deadline: queued as before
    for task in [*queued, fits]:
        task.cancel()
    await asyncio.gather(*queued, fits, return_exceptions=True)
    for permit in held:
        permit.release()
    assert a.queued == 0 and a.in_flight == 0


async def test_max_queue_wait_bounds_requests_without_a_near_deadline() -> None:
    a, _, held = await admission_with_rate(inflight=2, queued=200, per_second=2.0, max_wait=10.0)
    queued = [asyncio.create_task(a.acquire(1)) for _ in range(20)]  # 10 s of work
    await settle()
    with pytest.raises(OverloadedError) as info:
        await a.acquire(1)  # 21 / 2 = 10.5 s > 10 s
    assert info.value.retry_after == 11 and "longest allowed queue wait" in str(info.value)
    for task in queued:
        task.cancel()
    await asyncio.gather(*queued, return_exceptions=True)
    for permit in held:
        permit.release()


async def test_a_better_priority_class_waits_only_for_its_own_and_better() -> None:
    a, _, held = await admission_with_rate(inflight=2, queued=200, per_second=1.0)
    batch = [asyncio.create_task(a.acquire(1, priority=10)) for _ in range(20)]
    await settle()
    deadline = asyncio.get_running_loop().time() + 5.0
    with pytest.raises(OverloadedError):
        await a.acquire(1, priority=10, deadline=deadline)  # behind 20 s of its own class
    urgent = asyncio.create_task(a.acquire(1, priority=-10, deadline=deadline))  # ahead: 1 s
    await settle()
    assert not urgent.done() and a.queued == 21
    for task in [*batch, urgent]:
        task.cancel()
    await asyncio.gather(*batch, urgent, return_exceptions=True)
    for permit in held:
        permit.release()


async def test_the_wait_gauge_shows_the_estimate() -> None:
    registry = CollectorRegistry()
    gauges = [Gauge(name, name, registry=registry) for name in ("q", "i", "w")]
    a, _, held = await admission_with_rate(inflight=2, queued=200, per_second=4.0)
    a.attach_gauges(*gauges)
    queued = [asyncio.create_task(a.acquire(1)) for _ in range(8)]
    await settle()
    assert registry.get_sample_value("w") == pytest.approx(9 / 4.0, rel=0.01)
    for task in queued:
        task.cancel()
    await asyncio.gather(*queued, return_exceptions=True)
    for permit in held:
        permit.release()
    assert registry.get_sample_value("w") == 0.0  # room again: no wait
