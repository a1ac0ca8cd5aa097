"""Weighted fair queuing of the admission queue: the order tenants are served in, within a class.

Each waiting request gets a virtual finish tag (start-time fair queuing, Goyal et al. 1996):

    start  = max(the class's virtual time, the finish tag of the tenant's previous request)
    finish = start + cost / weight

and the queue is served by (priority class, finish tag, arrival). The class's virtual time is the
start tag of the request admitted last. So a tenant with 40 requests queued has tags 1, 2, ... 40
ahead of the virtual time, while another tenant's first request gets tag 1: it waits behind at
most one request of each other tenant, not behind their queues. A tenant with twice the weight
advances half as fast, so it gets twice the sequences while both have work. A tenant that was
idle starts at the virtual time: being quiet earns no credit. With one tenant the tags rise in
arrival order, which is first come, first served (as before fair share).

State is kept only for tenants with requests queued: memory is bounded by the queue.

`Sharing` says when the engine is shared: while more than one tenant has requests admitted or
waiting, and for `window` seconds after one of them ran out of work while another still had
some (a tenant sending one request at a time is out of work between them). Admission then keeps
to the engine's running slots, so that the waiting happens in its queue, in the order above.
The engine does not stop a running sequence for another tenant's, so a request that finds every
slot taken waits for one to finish (half a sequence's time when a flood's batches end together):
in that window a tenant with requests running leaves `reserved` slots to the others, and the
next request of the tenant that ran out of work starts at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tags:
    start: float
    finish: float


class FairShare:
    """The virtual clocks of the admission queue; the event loop is its only lock."""

    __slots__ = ("_last_finish", "_queued", "_virtual")

    def __init__(self) -> None:
        self._virtual: dict[int, float] = {}  # per class: the start tag of the last admitted
        self._last_finish: dict[tuple[int, str], float] = {}  # per class and tenant
        self._queued: dict[tuple[int, str], int] = {}  # requests waiting, per class and tenant

    def enqueue(self, priority: int, tenant: str, cost: int, weight: float) -> Tags:
        """The tags of a request that starts waiting now."""
        key = (priority, tenant)
        start = max(self._virtual.get(priority, 0.0), self._last_finish.get(key, 0.0))
        finish = start + cost / weight
        self._last_finish[key] = finish
        self._queued[key] = self._queued.get(key, 0) + 1
        return Tags(start, finish)

    def dequeued(self, priority: int, tenant: str, tags: Tags, *, admitted: bool) -> None:
        """A request left the queue: admitted (the class's clock moves to its start) or gone."""
        if admitted and tags.start > self._virtual.get(priority, 0.0):
            self._virtual[priority] = tags.start
        key = (priority, tenant)
        left = self._queued[key] - 1
        if left:
            self._queued[key] = left
        else:  # nothing of it waits: it starts at the virtual time next time
            del self._queued[key]
            del self._last_finish[key]

    @property
    def tenants_waiting(self) -> int:
        """(Class, tenant) pairs with requests queued."""
        return len(self._queued)


class Sharing:
    """The tenants with work (admitted or waiting) and with requests running, and whether the
    engine is shared now."""

    __slots__ = ("_busy", "_clock", "_running", "_until", "reserved", "window")

    def __init__(self, window: float, clock: Callable[[], float], *, reserved: int = 0) -> None:
        self.window = window
        self.reserved = reserved  # running slots kept for a tenant that ran out of work
        self._clock = clock
        self._busy: dict[str, int] = {}  # requests admitted or waiting, per tenant
        self._running: dict[str, int] = {}  # requests admitted, per tenant
        self._until = 0.0  # the clock's reading until which it stays shared; 0: not so

    def enter(self, tenant: str) -> None:
        self._busy[tenant] = self._busy.get(tenant, 0) + 1

    def leave(self, tenant: str) -> None:
        left = self._busy[tenant] - 1
        if left:
            self._busy[tenant] = left
            return
        del self._busy[tenant]
        if self._busy:  # another tenant still has work: it stays shared a while
            self._until = self._clock() + self.window

    def started(self, tenant: str) -> None:
        """A request of `tenant` was admitted."""
        self._running[tenant] = self._running.get(tenant, 0) + 1

    def stopped(self, tenant: str) -> None:
        left = self._running[tenant] - 1
        if left:
            self._running[tenant] = left
        else:
            del self._running[tenant]

    @property
    def shared(self) -> bool:
        if len(self._busy) > 1:
            return True
        return self._recently_left()

    def held_back(self, tenant: str) -> int:
        """Running slots `tenant`'s next request may not take: `reserved` while the tenant has
        requests running and another ran out of work within the window (its next request
        then finds a slot free, instead of waiting for one of the running to finish)."""
        if self.reserved and tenant in self._running and self._recently_left():
            return self.reserved
        return 0

    def _recently_left(self) -> bool:
        if self._until:
            if self._clock() < self._until:
                return True
            self._until = 0.0
        return False

    @property
    def tenants_busy(self) -> int:
        return len(self._busy)
