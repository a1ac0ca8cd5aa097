"""The queue-wait estimate under the A/B benchmark's closed loop, on a simulated engine and a
hand-driven clock: time-aware admission refuses no more requests than those whose wait, in the
same run without a bound, passed the bound.

The engine runs `SLOTS` sequences a step, first come first served, each `TOKENS` steps long (the
benchmark's fixed output length); the gateway admits `2 x SLOTS` and queues the rest. Every
client sends its next request as soon as its last one is answered, so it arrives between the
finishes of one batch: where an estimate that counted finishes per second read the rate several
times too low (one A/B run at 64 streams refused 58 of 128 requests under the 30 s bound while no
measured wait reached it).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

import pytest

from service.errors import OverloadedError
from service.runtime.admission import Admission, Permit
from service.runtime.drain_rate import DrainRate
from tests.fakes import Clock

SLOTS = 8  # the engine's max_num_seqs
TOKENS = 64  # steps a sequence runs
STEP = 0.042  # seconds an engine step takes at a full batch (the default model on 2 cores)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@dataclass
class Sequence:
    permit: Permit
    done: asyncio.Future[None]
    left: int = TOKENS


@dataclass
class Run:
    waits: list[float] = field(default_factory=list)  # seconds from sending to admission
    refused: int = 0


class SimulatedEngine:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.waiting: deque[Sequence] = deque()  # vLLM's own first-come queue
        self.running: list[Sequence] = []

    def submit(self, permit: Permit) -> asyncio.Future[None]:
        done = asyncio.get_running_loop().create_future()
        self.waiting.append(Sequence(permit, done))
        return done

    async def step(self) -> None:
        while self.waiting and len(self.running) < SLOTS:
            self.running.append(self.waiting.popleft())
        self.clock.now += STEP
        for sequence in self.running:
            sequence.left -= 1
        finished = [s for s in self.running if s.left == 0]
        self.running = [s for s in self.running if s.left > 0]
        for sequence in finished:  # one at a time: a client resends before the next finish
            sequence.permit.release()
            sequence.done.set_result(None)
            await settle()


async def closed_loop(*, clients: int, requests_each: int, max_queue_wait: float | None) -> Run:
    clock = Clock()
    admission = Admission(
        max_inflight=2 * SLOTS,
        max_queued=clients,
        max_queue_wait=max_queue_wait,
        drain_rate=DrainRate(clock=clock),
    )
    engine = SimulatedEngine(clock)
    run = Run()

    async def client() -> None:
        for _ in range(requests_each):
            sent = clock.now
            try:
                permit = await admission.acquire(1)
            except OverloadedError:
                run.refused += 1
                continue
            run.waits.append(clock.now - sent)
            await engine.submit(permit)

    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    await settle()
    while not all(task.done() for task in tasks):
        await engine.step()
    await asyncio.gather(*tasks)
    return run


@pytest.mark.parametrize(
    "requests_each", [pytest.param(2, id="c=64 x2 (the A/B run)"), pytest.param(8, id="c=64 x8")]
)
async def test_the_default_bound_refuses_none_when_no_wait_reached_it(requests_each: int) -> None:
    unbounded = await closed_loop(clients=64, requests_each=requests_each, max_queue_wait=None)
    assert unbounded.refused == 0 and len(unbounded.waits) == 64 * requests_each
    assert max(unbounded.waits) < 30.0  # about 16 s: 48 queued, 3 finishing a second
    bounded = await closed_loop(clients=64, requests_each=requests_each, max_queue_wait=30.0)
    assert bounded.refused == 0  # counting finishes per second refused 4 and 28 here


async def test_a_bound_below_the_waits_still_refuses_but_no_more_than_passed_it() -> None:
    unbounded = await closed_loop(clients=64, requests_each=8, max_queue_wait=None)
    bound = max(unbounded.waits) / 2
    passed_the_bound = sum(1 for wait in unbounded.waits if wait > bound)
    bounded = await closed_loop(clients=64, requests_each=8, max_queue_wait=bound)
    assert 0 < bounded.refused <= passed_the_bound, (bound, bounded.refused, passed_the_bound)
