"""Admission control: a bounded number of engine sequences in flight, and a bounded queue.

vLLM's own server queues without limit: under overload every request waits longer and longer
and then times out at the client, after the engine has spent work on it. The gateway instead
admits at most `max_inflight` engine sequences (enough to keep the engine's batch full with one
batch waiting behind it), lets at most `max_queued` more wait here, in priority then arrival
order, and refuses the rest at once with 503 `overloaded` and Retry-After, before any engine
work starts. The unit is engine sequences, so `n`, beams, a classify batch times its labels and
a summary's chunks count for what they cost; a request costing more than `max_inflight` is
admitted alone (its cost is capped), so nothing is refused for being big.

On SIGTERM `drain()` makes every new request a 503 `draining` while admitted ones finish;
`idle` tells the drain when the last one has.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field

from prometheus_client import Gauge

from service.errors import DrainingError, OverloadedError

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
        queue_gauge: Gauge | None = None,
        inflight_gauge: Gauge | None = None,
    ) -> None:
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self.in_flight = 0  # sequences admitted and not yet released
        self.queued = 0  # sequences waiting here
        self.draining = False
        self.idle = asyncio.Event()  # no request admitted or waiting
        self.idle.set()
        self._waiters: list[_Waiter] = []
        self._arrivals = itertools.count()
        self._queue_gauge = queue_gauge
        self._inflight_gauge = inflight_gauge

    def attach_gauges(self, queue: Gauge, inflight: Gauge) -> None:
        self._queue_gauge, self._inflight_gauge = queue, inflight
        self._update_gauges()

    def resize(self, *, max_inflight: int, max_queued: int) -> None:
        """Set the bounds once the engine's batch size is known (at start-up)."""
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self._wake()

    def drain(self) -> None:
        """Refuse new requests from now on; admitted and queued ones go on."""
        self.draining = True

    async def acquire(self, cost: int, *, priority: int = 0) -> Permit:
        """Admit `cost` sequences now, or wait in the queue, or raise 503 at once.

        Cancelling the wait (deadline, client gone) leaves the queue with nothing held.
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
        waiter = _Waiter(
            priority, next(self._arrivals), cost, asyncio.get_running_loop().create_future()
        )
        heapq.heappush(self._waiters, waiter)
        self.queued += cost
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
                self.queued -= cost
                self._wake()  # the waiters behind this one may fit now
            raise
        return Permit(self, cost)

    def _admit(self, cost: int) -> None:
        self.in_flight += cost
        self.idle.clear()
        self._update_gauges()

    def _release(self, cost: int) -> None:
        self.in_flight -= cost
        self._wake()

    def _wake(self) -> None:
        # Strictly in order: a large request at the head is not overtaken forever by small ones.
        while self._waiters and self.in_flight + self._waiters[0].cost <= self.max_inflight:
            waiter = heapq.heappop(self._waiters)
            waiter.dequeued = True
            self.queued -= waiter.cost
            if waiter.admitted.cancelled():  # its task was cancelled; its handler cleans up
                continue
            self.in_flight += waiter.cost
            waiter.admitted.set_result(None)
        if self.in_flight == 0 and not self._waiters:
            self.idle.set()
        self._update_gauges()

    def _update_gauges(self) -> None:
        if self._queue_gauge is not None:
            self._queue_gauge.set(self.queued)
        if self._inflight_gauge is not None:
            self._inflight_gauge.set(self.in_flight)


def default_bounds(max_num_seqs: int) -> tuple[int, int]:
    """(in flight, queued) from the engine's batch size: see the settings' descriptions."""
    return 2 * max_num_seqs, 8 * max_num_seqs
