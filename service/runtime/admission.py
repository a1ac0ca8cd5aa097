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

Within a priority class the queue is fair between tenants (API keys; client addresses when
authentication is off): weighted fair queuing (`service/runtime/fair_share.py`), so one tenant's
flood does not put another's requests behind its queue, and a request's estimated wait counts
only what is ahead of it in that order. For the order to matter, the waiting must happen here,
not in vLLM's first-come queue: while tenants share the engine (more than one has requests
admitted or waiting, or had within `sharing_window` seconds), at most `running_slots` (the
engine's `max_num_seqs`) are admitted, none waiting in vLLM. With a single tenant nothing is
gained by that, and the bound stays `max_inflight`.

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
from service.runtime.fair_share import FairShare, Sharing, Tags

# How long a client refused with `overloaded` should wait: about one batch's turnaround.
OVERLOADED_RETRY_AFTER = 1


# The tenant of requests that name none (work outside a request, tests): one tenant.
NO_TENANT = ""


@dataclass(order=True, slots=True)
class _Waiter:
    priority: int
    finish: float  # its virtual finish tag: the fair order within the class
    arrival: int
    cost: int = field(compare=False)
    tenant: str = field(compare=False)
    tags: Tags = field(compare=False)
    admitted: asyncio.Future[None] = field(compare=False)
    dequeued: bool = field(default=False, compare=False)


class Permit:
    """Admission for `cost` sequences until `release()` (idempotent)."""

    __slots__ = ("_admission", "admitted_at", "cost", "tenant", "waited")

    def __init__(
        self,
        admission: Admission,
        cost: int,
        admitted_at: float,
        *,
        waited: float = 0.0,
        tenant: str = NO_TENANT,
    ) -> None:
        self._admission: Admission | None = admission
        self.cost = cost
        self.admitted_at = admitted_at  # the drain rate's clock: its time in flight
        self.waited = waited  # seconds it waited in the queue (0: admitted at once)
        self.tenant = tenant

    def release(self) -> None:
        admission, self._admission = self._admission, None
        if admission is not None:
            admission._release(self.cost, self.admitted_at, self.tenant)

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
        fair_share: bool = True,
        running_slots: int | None = None,
        sharing_window: float = 30.0,
        reserved_slots: int = 0,
    ) -> None:
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self.max_queue_wait = max_queue_wait  # seconds; None: only deadlines bound the wait
        self.drain_rate = drain_rate if drain_rate is not None else DrainRate()
        # Fair share: tenants in fair order (off: one tenant, first come first served), and
        # while they share the engine, no more in flight than it runs (None: no such bound).
        self.fair_share = fair_share
        self.running_slots = running_slots
        self._fair = FairShare()
        self._sharing = Sharing(sharing_window, self.drain_rate.clock, reserved=reserved_slots)
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

    def resize(
        self, *, max_inflight: int, max_queued: int, running_slots: int | None = None
    ) -> None:
        """Set the bounds once the engine's batch size is known (at start-up)."""
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        if running_slots is not None:
            self.running_slots = running_slots
        self._wake()

    @property
    def bound(self) -> int:
        """Sequences that may be in flight now: `max_inflight`, or the engine's running slots
        while tenants share it (with fair share: `Sharing`)."""
        if self.running_slots is not None and self._sharing.shared:
            return max(1, min(self.max_inflight, self.running_slots))
        return self.max_inflight

    def _fits(self, cost: int, tenant: str, bound: int) -> bool:
        """Whether a request of `tenant` costing `cost` may be admitted under `bound`: less
        the slots it leaves to a tenant that ran out of work (`Sharing.held_back`); a request
        bigger than that is admitted alone."""
        limit = bound - self._sharing.held_back(tenant)
        return self.in_flight + cost <= limit or (self.in_flight == 0 and cost <= bound)

    def drain(self) -> None:
        """Refuse new requests from now on; admitted and queued ones go on."""
        self.draining = True

    def estimated_wait(
        self, cost: int = 1, priority: int | None = None, finish: float | None = None
    ) -> float | None:
        """Seconds a request of `cost` would wait for admission now (0: none); None: unknown.

        The sequences that must finish first: those in flight and queued ahead of it (its own
        priority class and better, `None`: every one; within its class, with fair share, those
        whose finish tag is not after its `finish`), plus its own, less the bound.
        """
        ahead = self.queued if priority is None else self._queued_ahead(priority, finish)
        must_finish = self.in_flight + ahead + cost - self.bound
        if must_finish <= 0 and not self._waiters:
            return 0.0  # it fits now
        return self.drain_rate.wait_for(max(1, must_finish))

    def _queued_ahead(self, priority: int, finish: float | None) -> int:
        if finish is None:
            return sum(n for p, n in self._queued_by_priority.items() if p <= priority)
        return sum(
            w.cost
            for w in self._waiters
            if w.priority < priority or (w.priority == priority and w.finish <= finish)
        )

    async def acquire(
        self,
        cost: int,
        *,
        priority: int = 0,
        deadline: float | None = None,
        tenant: str = NO_TENANT,
        weight: float = 1.0,
    ) -> Permit:
        """Admit `cost` sequences now, or wait in the queue, or raise 503 at once.

        `deadline` (loop time) is when the request must be done: a request whose estimated
        wait passes it, or `max_queue_wait`, is refused instead of queued. `tenant` and
        `weight` place it in its class's fair order (`Caller.tenant`, `Caller.weight`).
        Cancelling the wait (deadline, client gone) leaves the queue with nothing held.
        """
        if self.draining:
            raise DrainingError()
        cost = max(1, min(cost, self.max_inflight))
        if not self.fair_share:
            tenant, weight = NO_TENANT, 1.0
        self._sharing.enter(tenant)  # before the bound: a second tenant tightens it now
        try:
            if not self._waiters and self._fits(cost, tenant, self.bound):
                self._admit(cost, tenant)
                return Permit(self, cost, self.drain_rate.clock(), tenant=tenant)
            if self.queued + cost > self.max_queued:
                raise OverloadedError(
                    "The server is at capacity; retry shortly.",
                    retry_after=OVERLOADED_RETRY_AFTER,
                )
            return await self._wait(cost, priority, deadline, tenant, weight)
        except BaseException:
            self._sharing.leave(tenant)  # refused, or its wait cancelled: nothing held
            raise

    async def _wait(
        self, cost: int, priority: int, deadline: float | None, tenant: str, weight: float
    ) -> Permit:
        tags = self._fair.enqueue(priority, tenant, cost, weight)
        try:
            self._refuse_a_long_wait(cost, priority, deadline, tags.finish)
        except OverloadedError:
            self._fair.dequeued(priority, tenant, tags, admitted=False)
            raise
        future = asyncio.get_running_loop().create_future()
        waiter = _Waiter(priority, tags.finish, next(self._arrivals), cost, tenant, tags, future)
        queued_at = self.drain_rate.clock()
        heapq.heappush(self._waiters, waiter)
        self._count_queued(priority, cost)
        self.drain_rate.queue_started()
        self.idle.clear()
        self._wake()  # ahead of a head held back for it (a reserved slot), it may start now
        try:
            await waiter.admitted
        except BaseException:
            if waiter.admitted.done() and not waiter.admitted.cancelled():
                # Admitted as it was cancelled: give the slot back (acquire's caller leaves).
                self._release(cost, self.drain_rate.clock(), tenant, leave=False)
            elif not waiter.dequeued:
                self._waiters.remove(waiter)
                heapq.heapify(self._waiters)
                self._count_queued(priority, -cost)
                self._fair.dequeued(priority, tenant, tags, admitted=False)
                self._wake()  # the waiters behind this one may fit now
            raise
        now = self.drain_rate.clock()
        return Permit(self, cost, now, waited=now - queued_at, tenant=tenant)

    def _refuse_a_long_wait(
        self, cost: int, priority: int, deadline: float | None, finish: float
    ) -> None:
        wait = self.estimated_wait(cost, priority, finish)
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

    def _admit(self, cost: int, tenant: str) -> None:
        self.in_flight += cost
        self._sharing.started(tenant)
        self.idle.clear()
        self._update_gauges()

    def _release(self, cost: int, admitted_at: float, tenant: str, *, leave: bool = True) -> None:
        """`cost` sequences of `tenant` finished (`leave`: and its request is done here)."""
        if self.drain_rate.measuring:
            held = self.drain_rate.clock() - admitted_at
            self.drain_rate.finished(cost, held=held, in_flight=self.in_flight)
        self.in_flight -= cost
        self._sharing.stopped(tenant)
        if leave:
            self._sharing.leave(tenant)
        self._wake()

    def _wake(self) -> None:
        # Strictly in order: a large request at the head is not overtaken forever by small ones.
        bound = self.bound
        while self._waiters and self._fits(self._waiters[0].cost, self._waiters[0].tenant, bound):
            waiter = heapq.heappop(self._waiters)
            waiter.dequeued = True
            self._count_queued(waiter.priority, -waiter.cost)
            cancelled = waiter.admitted.cancelled()
            self._fair.dequeued(waiter.priority, waiter.tenant, waiter.tags, admitted=not cancelled)
            if cancelled:  # its task was cancelled; its handler cleans up
                continue
            self.in_flight += waiter.cost
            self._sharing.started(waiter.tenant)
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
