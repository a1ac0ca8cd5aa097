"""Admission control: bounds, queue order, refusals, cancellation and drain (no engine)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, Gauge

from service.errors import DrainingError, OverloadedError
from service.runtime.admission import Admission, default_bounds


def admission(inflight: int = 4, queued: int = 4) -> Admission:
    return Admission(max_inflight=inflight, max_queued=queued)


async def settle() -> None:
    """Let woken waiters run (a few loop turns; no wall-clock time involved)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_admits_up_to_the_bound_at_once() -> None:
    a = admission(inflight=4)
    permits = [await a.acquire(2), await a.acquire(2)]
    assert a.in_flight == 4 and a.queued == 0
    for p in permits:
        p.release()
    assert a.in_flight == 0 and a.idle.is_set()


async def test_beyond_the_bound_requests_wait_and_are_admitted_on_release() -> None:
    a = admission(inflight=2, queued=4)
    first = await a.acquire(2)
    waiting = asyncio.create_task(a.acquire(1))
    await settle()
    assert not waiting.done() and a.queued == 1
    first.release()
    permit = await waiting
    assert a.in_flight == 1 and a.queued == 0
    permit.release()


async def test_a_full_queue_refuses_at_once_with_retry_after() -> None:
    a = admission(inflight=1, queued=2)
    held = await a.acquire(1)
    waiters = [asyncio.create_task(a.acquire(1)) for _ in range(2)]
    await settle()
    with pytest.raises(OverloadedError) as info:
        await a.acquire(1)
    assert info.value.status_code == 503 and info.value.code == "overloaded"
    assert info.value.retry_after is not None and info.value.retry_after >= 1
    assert a.queued == 2  # the refusal took nothing
    held.release()
    for task in waiters:
        (await task).release()


async def test_cost_counts_sequences_and_is_capped_at_the_bound() -> None:
    a = admission(inflight=4, queued=0)
    big = await a.acquire(100)  # admitted alone, as if it cost the whole bound
    assert big.cost == 4 and a.in_flight == 4
    with pytest.raises(OverloadedError):
        await a.acquire(1)
    big.release()


async def test_queue_is_served_by_priority_then_arrival() -> None:
    a = admission(inflight=1, queued=10)
    held = await a.acquire(1)
    order: list[str] = []

    async def wait(name: str, priority: int) -> None:
        permit = await a.acquire(1, priority=priority)
        order.append(name)
        permit.release()

    tasks = [
        asyncio.create_task(wait("low-1", 10)),
        asyncio.create_task(wait("normal-1", 0)),
        asyncio.create_task(wait("high", -10)),
        asyncio.create_task(wait("normal-2", 0)),
    ]
    await settle()
    held.release()
    await asyncio.gather(*tasks)
    assert order == ["high", "normal-1", "normal-2", "low-1"]


async def test_a_big_request_at_the_head_is_not_overtaken() -> None:
    a = admission(inflight=4, queued=10)
    held = await a.acquire(3)
    big = asyncio.create_task(a.acquire(4))
    await settle()
    small = asyncio.create_task(a.acquire(1))  # would fit now, but the big one came first
    await settle()
    assert not small.done()
    held.release()
    (await big).release()
    (await small).release()


async def test_a_cancelled_wait_leaves_nothing_behind() -> None:
    a = admission(inflight=2, queued=4)
    held = await a.acquire(2)
    waiting = asyncio.create_task(a.acquire(2))
    behind = asyncio.create_task(a.acquire(1))
    await settle()
    assert a.queued == 3
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert a.queued == 1
    held.release()
    (await behind).release()
    assert a.in_flight == 0 and a.queued == 0 and a.idle.is_set()


async def test_a_wait_cancelled_while_being_admitted_releases_its_permit() -> None:
    a = admission(inflight=1, queued=4)
    held = await a.acquire(1)
    waiting = asyncio.create_task(a.acquire(1))
    await settle()
    held.release()  # admits the waiter: its future has a result, the task has not run yet
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert a.in_flight == 0 and a.idle.is_set()


async def test_release_is_idempotent() -> None:
    a = admission()
    permit = await a.acquire(1)
    permit.release()
    permit.release()
    assert a.in_flight == 0 and permit.released


async def test_drain_refuses_new_requests_and_lets_admitted_ones_finish() -> None:
    a = admission(inflight=1, queued=4)
    held = await a.acquire(1)
    queued = asyncio.create_task(a.acquire(1))
    await settle()
    a.drain()
    with pytest.raises(DrainingError) as info:
        await a.acquire(1)
    assert info.value.code == "draining" and info.value.retry_after
    assert not a.idle.is_set()
    held.release()
    (await queued).release()
    assert a.idle.is_set()


async def test_gauges_follow_queue_and_in_flight() -> None:
    registry = CollectorRegistry()
    queue, inflight = Gauge("q", "q", registry=registry), Gauge("i", "i", registry=registry)
    a = admission(inflight=2, queued=4)
    a.attach_gauges(queue, inflight)
    held = await a.acquire(2)
    waiting = asyncio.create_task(a.acquire(2))
    await settle()
    assert registry.get_sample_value("q") == 2 and registry.get_sample_value("i") == 2
    held.release()
    (await waiting).release()
    assert registry.get_sample_value("q") == 0 and registry.get_sample_value("i") == 0


def test_default_bounds_derive_from_the_engine_batch() -> None:
    assert default_bounds(8) == (16, 64)
