"""Fair share in admission: weighted fair queuing between tenants within a class, the estimate
for a tenant's own position, and the tighter in-flight bound while tenants share (no engine)."""

from __future__ import annotations

import asyncio

import pytest

from service.errors import OverloadedError
from service.runtime.admission import Admission, Permit
from service.runtime.drain_rate import DrainRate
from tests.fakes import Clock


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class Recorder:
    """Requests queued behind a held admission, and the order they are admitted in."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.order: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []

    def send(self, name: str, *, tenant: str, weight: float = 1.0, priority: int = 0) -> None:
        async def one() -> None:
            permit = await self.admission.acquire(
                1, tenant=tenant, weight=weight, priority=priority
            )
            self.order.append(name)
            permit.release()

        self.tasks.append(asyncio.create_task(one()))

    async def drain(self, held: Permit) -> list[str]:
        await settle()
        held.release()
        await asyncio.gather(*self.tasks)
        return self.order


async def test_a_second_tenant_is_not_queued_behind_the_first_ones_flood() -> None:
    a = Admission(max_inflight=1, max_queued=100)
    held = await a.acquire(1, tenant="key:a")
    queue = Recorder(a)
    for i in range(1, 7):
        queue.send(f"a{i}", tenant="key:a")
    await settle()
    for i in range(1, 4):
        queue.send(f"b{i}", tenant="key:b")
    order = await queue.drain(held)
    assert order == ["a1", "b1", "a2", "b2", "a3", "b3", "a4", "a5", "a6"]


async def test_twice_the_weight_gets_twice_the_turns() -> None:
    a = Admission(max_inflight=1, max_queued=100)
    held = await a.acquire(1, tenant="key:a")
    queue = Recorder(a)
    for i in range(1, 7):
        queue.send(f"a{i}", tenant="key:a")
    for i in range(1, 7):
        queue.send(f"b{i}", tenant="key:b", weight=2.0)
    order = await queue.drain(held)
    # Finish tags: a 1, 2, 3, ...; b 0.5, 1, 1.5, ...; ties go to the earlier arrival.
    assert order[:9] == ["b1", "a1", "b2", "b3", "a2", "b4", "b5", "a3", "b6"]


async def test_a_tenant_that_was_quiet_earns_no_credit() -> None:
    a = Admission(max_inflight=1, max_queued=100)
    held = await a.acquire(1, tenant="key:a")
    queue = Recorder(a)
    for i in range(1, 5):
        queue.send(f"a{i}", tenant="key:a")
        queue.send(f"b{i}", tenant="key:b")
    await settle()
    held.release()
    await asyncio.gather(*queue.tasks)  # a and b took turns; the virtual time moved on
    held = await a.acquire(1, tenant="key:a")
    queue = Recorder(a)
    for i in range(5, 8):
        queue.send(f"b{i}", tenant="key:b")
    queue.send("c1", tenant="key:c")  # new: starts at the virtual time, not at zero
    assert await queue.drain(held) == ["b5", "c1", "b6", "b7"]


async def test_the_priority_class_still_comes_first() -> None:
    a = Admission(max_inflight=1, max_queued=100)
    held = await a.acquire(1, tenant="key:a")
    queue = Recorder(a)
    queue.send("low-b", tenant="key:b", priority=10)
    for i in range(1, 3):
        queue.send(f"normal-a{i}", tenant="key:a")
    queue.send("high-a", tenant="key:a", priority=-10)
    assert await queue.drain(held) == ["high-a", "normal-a1", "normal-a2", "low-b"]


async def test_with_fair_share_off_tenants_are_first_come_first_served() -> None:
    a = Admission(max_inflight=1, max_queued=100, fair_share=False)
    held = await a.acquire(1, tenant="key:a")
    queue = Recorder(a)
    for i in range(1, 4):
        queue.send(f"a{i}", tenant="key:a")
    queue.send("b1", tenant="key:b")
    assert await queue.drain(held) == ["a1", "a2", "a3", "b1"]


async def test_nothing_is_kept_for_tenants_once_the_queue_is_empty() -> None:
    a = Admission(max_inflight=1, max_queued=100)
    held = await a.acquire(1, tenant="key:a")
    queue = Recorder(a)
    for i in range(50):
        queue.send(f"t{i}", tenant=f"ip:10.0.0.{i}")
    await settle()
    cancelled = queue.tasks.pop()
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    await queue.drain(held)
    assert a._fair.tenants_waiting == 0


async def test_the_estimate_is_for_the_tenants_own_position() -> None:
    clock = Clock()
    a = Admission(
        max_inflight=2, max_queued=200, max_queue_wait=None, drain_rate=DrainRate(clock=clock)
    )
    # A rate of 1 sequence a second: two held 2 s while a request waited.
    held = [await a.acquire(1, tenant="key:a") for _ in range(2)]
    waiting = [asyncio.create_task(a.acquire(1, tenant="key:a")) for _ in range(2)]
    await settle()
    clock.now += 2.0
    for permit in held:
        permit.release()
    held = [await task for task in waiting]
    flood = [asyncio.create_task(a.acquire(1, tenant="key:a")) for _ in range(40)]
    await settle()
    deadline = asyncio.get_running_loop().time() + 5.0
    with pytest.raises(OverloadedError):  # behind 40 s of its own queue
        await a.acquire(1, tenant="key:a", deadline=deadline)
    assert a.estimated_wait(1, 0) == pytest.approx(41.0)  # every request of the class
    other = asyncio.create_task(a.acquire(1, tenant="key:b", deadline=deadline))
    await settle()  # behind one of a's: queued, not refused
    assert not other.done() and a.queued == 41
    for task in [*flood, other]:
        task.cancel()
    await asyncio.gather(*flood, other, return_exceptions=True)
    for permit in held:
        permit.release()


async def test_while_tenants_share_only_the_running_slots_are_admitted() -> None:
    clock = Clock()
    a = Admission(
        max_inflight=4,
        max_queued=100,
        running_slots=2,
        mixed_window=30.0,
        drain_rate=DrainRate(clock=clock),
    )
    alone = [await a.acquire(1, tenant="key:a") for _ in range(4)]  # one tenant: the full bound
    assert a.in_flight == 4 and a.bound == 4
    for permit in alone:
        permit.release()
    first = await a.acquire(1, tenant="key:b")  # a second tenant: the engine's slots only
    assert a.bound == 2
    second = await a.acquire(1, tenant="key:a")
    third = asyncio.create_task(a.acquire(1, tenant="key:a"))
    await settle()
    assert not third.done() and a.queued == 1  # waits here, in fair order, not in vLLM
    clock.now += 31.0  # no second tenant for the window: back to the full bound
    assert a.bound == 4
    first.release()
    (await third).release()
    second.release()


async def test_without_fair_share_the_bound_never_tightens() -> None:
    a = Admission(max_inflight=4, max_queued=100, running_slots=2, fair_share=False)
    permits = [await a.acquire(1, tenant=f"key:{name}") for name in "abab"]
    assert a.in_flight == 4 and a.bound == 4
    for permit in permits:
        permit.release()
