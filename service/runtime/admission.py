"""Admission control: a bounded number of engine sequences in flight, and a bounded queue.

vLLM's own server queues without limit: under overload every request waits longer and longer
and then times out at the client, after the engine has spent work on it. The gateway instead
admits at most `max_inflight` engine sequences (enough to keep the engine's batch full with one
batch waiting behind it), lets at most `max_queued` more wait here, in priority then arrival
order, and refuses the rest at once with 503 `overloaded` and Retry-After, before any engine
work starts. The unit is engine sequences, so `n`, beams, a classify batch times its labels and
a summary's chunks count for what they cost; a request costing more than `max_inflight` is
admitted alone (its cost is capped), so nothing is refused for being big.

Time bounds the queue too: once its drain rate is known (`service/runtime/drain_rate.py`:
sequences finished per second while requests wait), a request that would have to queue gets an
estimated wait, the sequences ahead of it over that rate. When the estimate passes the request's
deadline or `max_queue_wait_seconds`, it is refused at once (503 `overloaded`, Retry-After = the
estimate) instead of waiting to time out. Until a rate is known only the count bounds apply;
they stay the hard cap either way.

On SIGTERM `drain()` makes every new request a 503 `draining` while admitted ones finish;
`idle` tells the drain when the last one has.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from dataclasses import dataclass, field

from prometheus_client import Gauge

from service.errors import DrainingError, OverloadedError
from service.runtime.drain_rate import DrainRate

# How long a client refused with `overloaded` should wait: about one batch's turnaround.
OVERLOADED_RETRY_AFTER = 1


@dataclass(order=True, slots=True)
class _Waiter:
    priority: int
    arrival: int
    cost: int = field(compare=False)
    admitted: asyncio.Future[None] = field(compare=False)
    dequeued: bool = field(default=False, compare=False)


class Permit:
    """Admission for `cost` sequences until `release()` (idempotent)."""

    __slots__ = ("_admission", "cost")

    def __init__(self, admission: Admission, cost: int) -> None:
        self._admission: Admission | None = admission
        self.cost = cost

    def release(self) -> None:
        admission, self._admission = self._admission, None
        if admission is not None:
            admission._release(self.cost)

    @property
    def released(self) -> bool:
        return self._admission is None


class Admission:
    """One per app (`GatewayState.admission`); the event loop is its only lock."""

    def __init__(
        self,
        *,
        max_inflight: int,
        max_queued: int,
        max_queue_wait: float | None = None,
        drain_rate: DrainRate | None = None,
        queue_gauge: Gauge | None = None,
        inflight_gauge: Gauge | None = None,
        wait_gauge: Gauge | None = None,
    ) -> None:
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self.max_queue_wait = max_queue_wait  # seconds; None: only deadlines bound the wait
        self.drain_rate = drain_rate if drain_rate is not None else DrainRate()
        self.in_flight = 0  # sequences admitted and not yet released
        self.queued = 0  # sequences waiting here
        self.draining = False
        self.idle = asyncio.Event()  # no request admitted or waiting
        self.idle.set()
        self._waiters: list[_Waiter] = []
        self._queued_by_priority: dict[int, int] = {}  # sequences waiting, per priority class
        self._arrivals = itertools.count()
        self._queue_gauge = queue_gauge
        self._inflight_gauge = inflight_gauge
        self._wait_gauge = wait_gauge

    def attach_gauges(self, queue: Gauge, inflight: Gauge, wait: Gauge | None = None) -> None:
        self._queue_gauge, self._inflight_gauge, self._wait_gauge = queue, inflight, wait
        self._update_gauges()

    def resize(self, *, max_inflight: int, max_queued: int) -> None:
        """Set the bounds once the engine's batch size is known (at start-up)."""
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self._wake()

    def drain(self) -> None:
        """Refuse new requests from now on; admitted and queued ones go on."""
        self.draining = True

    def estimated_wait(self, cost: int = 1, priority: int | None = None) -> float | None:
        """Seconds a request of `cost` would wait for admission now (0: none); None: unknown.

        The sequences that must finish first: those in flight and queued ahead of it (its own
        priority class and better, `None`: every one), plus its own, less the bound.
        """
        ahead = self.queued if priority is None else self._queued_ahead(priority)
        must_finish = self.in_flight + ahead + cost - self.max_inflight
        if must_finish <= 0 and not self._waiters:
            return 0.0  # it fits now
        return self.drain_rate.wait_for(max(1, must_finish))

    def _queued_ahead(self, priority: int) -> int:
        return sum(n for p, n in self._queued_by_priority.items() if p <= priority)

    async def acquire(
        self, cost: int, *, priority: int = 0, deadline: float | None = None
    ) -> Permit:
        """Admit `cost` sequences now, or wait in the queue, or raise 503 at once.

        `deadline` (loop time) is when the request must be done: a request whose estimated
        wait passes it, or `max_queue_wait`, is refused instead of queued. Cancelling the wait
        (deadline, client gone) leaves the queue with nothing held.
        """
        if self.draining:
            raise DrainingError()
        cost = max(1, min(cost, self.max_inflight))
        if not self._waiters and self.in_flight + cost <= self.max_inflight:
            self._admit(cost)
            return Permit(self, cost)
        if self.queued + cost > self.max_queued:
            raise OverloadedError(
                "The server is at capacity; retry shortly.", retry_after=OVERLOADED_RETRY_AFTER
            )
        self._refuse_a_long_wait(cost, priority, deadline)
        waiter = _Waiter(
            priority, next(self._arrivals), cost, asyncio.get_running_loop().create_future()
        )
        heapq.heappush(self._waiters, waiter)
        self._count_queued(priority, cost)
        self.drain_rate.queue_started()
        self.idle.clear()
        self._update_gauges()
        try:
            await waiter.admitted
        except BaseException:
            if waiter.admitted.done() and not waiter.admitted.cancelled():
                self._release(cost)  # admitted just as the wait was cancelled
            elif not waiter.dequeued:
                self._waiters.remove(waiter)
                heapq.heapify(self._waiters)
                self._count_queued(priority, -cost)
                self._wake()  # the waiters behind this one may fit now
            raise
        return Permit(self, cost)

    def _refuse_a_long_wait(self, cost: int, priority: int, deadline: float | None) -> None:
        wait = self.estimated_wait(cost, priority)
        if wait is None:
            return  # no rate measured yet: only the count bounds apply
        left = None if deadline is None else deadline - asyncio.get_running_loop().time()
        if left is not None and wait > left:
            bound = f"the request's deadline ({left:.1f}s left)"
        elif self.max_queue_wait is not None and wait > self.max_queue_wait:
            bound = f"the longest allowed queue wait ({self.max_queue_wait:g}s)"
        else:
            return
        raise OverloadedError(
            f"The server is busy: the estimated wait for admission ({wait:.1f}s) exceeds "
            f"{bound}; retry later or on another replica.",
            retry_after=max(1, math.ceil(wait)),
        )

    def _count_queued(self, priority: int, cost: int) -> None:
        self.queued += cost
        left = self._queued_by_priority.get(priority, 0) + cost
        if left:
            self._queued_by_priority[priority] = left
        else:
            del self._queued_by_priority[priority]

    def _admit(self, cost: int) -> None:
        self.in_flight += cost
        self.idle.clear()
        self._update_gauges()

    def _release(self, cost: int) -> None:
        self.in_flight -= cost
        self.drain_rate.finished(cost)
        self._wake()

    def _wake(self) -> None:
        # Strictly in order: a large request at the head is not overtaken forever by small ones.
        while self._waiters and self.in_flight + self._waiters[0].cost <= self.max_inflight:
            waiter = heapq.heappop(self._waiters)
            waiter.dequeued = True
            self._count_queued(waiter.priority, -waiter.cost)
            if waiter.admitted.cancelled():  # its task was cancelled; its handler cleans up
                continue
            self.in_flight += waiter.cost
            waiter.admitted.set_result(None)
        if not self._waiters:
            self.drain_rate.queue_emptied()
            if self.in_flight == 0:
                self.idle.set()
        self._update_gauges()

    def _update_gauges(self) -> None:
        if self._queue_gauge is not None:
            self._queue_gauge.set(self.queued)
        if self._inflight_gauge is not None:
            self._inflight_gauge.set(self.in_flight)
        if self._wait_gauge is not None:
            self._wait_gauge.set(self.estimated_wait() or 0.0)


def default_bounds(max_num_seqs: int) -> tuple[int, int]:
    """(in flight, queued) from the engine's batch size: see the settings' descriptions."""
    return 2 * max_num_seqs, 8 * max_num_seqs
