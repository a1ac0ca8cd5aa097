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
        sharing_window=30.0,
        drain_rate=DrainRate(clock=clock),
    )
    alone = [await a.acquire(1, tenant="key:a") for _ in range(4)]  # one tenant: the full bound
    assert a.in_flight == 4 and a.bound == 4
    other = asyncio.create_task(a.acquire(1, tenant="key:b"))  # a second: the engine's slots
    await settle()
    assert a.bound == 2 and not other.done()
    for permit in alone[:3]:
        permit.release()
    b_permit = await other  # in flight 2: one of a's, b's
    queued = asyncio.create_task(a.acquire(1, tenant="key:a"))
    await settle()
    assert not queued.done() and a.queued == 1  # waits here, in fair order, not in vLLM
    clock.now += 3600.0  # however long b's request runs, the engine is shared while it does
    assert a.bound == 2
    b_permit.release()  # b out of work, a still busy: shared for the window after
    a_permit = await queued
    clock.now += 29.0
    assert a.bound == 2
    clock.now += 2.0  # no second tenant for the window: back to the full bound
    assert a.bound == 4
    for permit in (alone[3], a_permit):
        permit.release()
    assert a._sharing.tenants_busy == 0


async def test_a_tenant_sending_one_request_at_a_time_keeps_the_bound_tight() -> None:
    clock = Clock()
    a = Admission(
        max_inflight=4, max_queued=100, running_slots=2, drain_rate=DrainRate(clock=clock)
    )
    running = [await a.acquire(1, tenant="key:a") for _ in range(4)]  # alone: the full bound
    flood = [asyncio.create_task(a.acquire(1, tenant="key:a")) for _ in range(8)]
    taken: set[asyncio.Task[Permit]] = set()

    async def release_one_of_as() -> None:
        running.pop(0).release()
        await settle()
        for task in flood:
            if task.done() and task not in taken:
                taken.add(task)
                running.append(task.result())

    for turn in range(3):  # b: one request, answered after a long while, then the next
        b_request = asyncio.create_task(a.acquire(1, tenant="key:b"))
        await settle()
        a_finished = 0
        while not b_request.done():
            await release_one_of_as()
            a_finished += 1
        # The first time b waits for what a had in the engine beyond its slots, and for a's
        # request with the same tag (it came first); then b is next in the fair order.
        assert a_finished == (4 if turn == 0 else 1)
        assert a.in_flight == 2
        clock.now += 40.0  # b's request runs longer than the window
        (await b_request).release()
        assert a.bound == 2  # a still has work: the engine is still shared
        await settle()
        for task in flood:  # b's slot went to a
            if task.done() and task not in taken:
                taken.add(task)
                running.append(task.result())
    for task in flood:
        task.cancel()
    await asyncio.gather(*flood, return_exceptions=True)
    for permit in running:
        permit.release()


async def test_without_fair_share_the_bound_never_tightens() -> None:
    a = Admission(max_inflight=4, max_queued=100, running_slots=2, fair_share=False)
    permits = [await a.acquire(1, tenant=f"key:{name}") for name in "abab"]
    assert a.in_flight == 4 and a.bound == 4
    for permit in permits:
        permit.release()


@pytest.mark.parametrize("reserved", [1, 0])
async def test_a_slot_is_kept_for_the_tenant_that_ran_out_of_work(reserved: int) -> None:
    clock = Clock()
    a = Admission(
        max_inflight=4,
        max_queued=100,
        running_slots=2,
        reserved_slots=reserved,
        drain_rate=DrainRate(clock=clock),
    )
    running = [await a.acquire(1, tenant="key:a") for _ in range(2)]
    flood = [asyncio.create_task(a.acquire(1, tenant="key:a")) for _ in range(6)]
    b_first = asyncio.create_task(a.acquire(1, tenant="key:b"))
    await settle()
    while not b_first.done():  # the engine is shared: b waits for a running one to finish
        running.pop(0).release()
        await settle()
        running += [t.result() for t in flood if t.done() and t.result() not in running]
    (await b_first).release()  # b is out of work; a still has some
    await settle()
    running += [t.result() for t in flood if t.done() and t.result() not in running]
    clock.now += 5.0  # b thinks, then sends its next request
    b_next = asyncio.create_task(a.acquire(1, tenant="key:b"))
    await settle()
    # With a slot kept, b starts at once; without, its slot went to a and it waits again.
    assert b_next.done() is bool(reserved)
    assert a.in_flight == 2
    for task in [*flood, b_next]:
        task.cancel()
    await asyncio.gather(*flood, b_next, return_exceptions=True)
    if b_next.done() and not b_next.cancelled():
        b_next.result().release()
    for permit in running:
        permit.release()


async def test_the_kept_slot_goes_back_to_work_when_the_window_ends() -> None:
    clock = Clock()
    a = Admission(
        max_inflight=2,
        max_queued=100,
        running_slots=2,
        reserved_slots=1,
        sharing_window=30.0,
        drain_rate=DrainRate(clock=clock),
    )
    held_a = await a.acquire(1, tenant="key:a")
    held_b = await a.acquire(1, tenant="key:b")
    waiting = [asyncio.create_task(a.acquire(1, tenant="key:a")) for _ in range(3)]
    held_b.release()  # b leaves: its slot is kept for it
    await settle()
    assert a.in_flight == 1 and not any(t.done() for t in waiting)
    clock.now += 31.0  # b did not come back: the next finish gives a both slots
    held_a.release()
    await settle()
    assert a.in_flight == 2 and sum(t.done() for t in waiting) == 2
    for task in waiting:
        task.cancel()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    for result in results:
        if isinstance(result, Permit):
            result.release()
