"""The share of an engine batch lines may use on this replica, behind interactive traffic.

A line starts only when all of these hold, checked in one step of the event loop with the
admission it then takes (so nothing comes between):
- no interactive request waits in the gateway's admission queue, and it is not draining;
- the lines running here stay within `batch_max_inflight_fraction` of the engine's running
  slots (`max_num_seqs`; at least one);
- the engine has a free running slot: the sequences admitted (interactive and lines) stay
  within `max_num_seqs` (and admission's own bound), so a line never waits in vLLM's queue ahead
  of, or beside, an interactive request.
A running line keeps its slot until it ends (vLLM does not preempt a running sequence for a
new one), so an interactive request arriving when the engine is full may wait for one line to
finish. Lines take admission permits at `BATCH_PRIORITY`, so they count in `in_flight` like
requests, and a drain (SIGTERM) waits for them.

Admission's state is read, never changed here (`queued`, `in_flight`, `max_inflight`,
`draining`); it tells nothing when it changes, so a waiting line looks again every
`RECHECK_SECONDS`, and at once when a line of this room ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

from service.batches.accounts import BATCH_PRIORITY
from service.runtime.admission import Admission
from service.runtime.deadlines import admit_and_run

T = TypeVar("T")

RECHECK_SECONDS = 0.05


class Room:
    """One engine's share: the generation engine's, or the embedding engine's."""

    def __init__(
        self, admission: Admission, engine_slots: Callable[[], int], fraction: float
    ) -> None:
        self.admission = admission
        self._engine_slots = engine_slots  # max_num_seqs, once the engine has started
        self._fraction = fraction
        self.running = 0  # sequences of this replica's lines on the engine now
        self._changed = asyncio.Event()

    @property
    def slots(self) -> int:
        """Sequences lines may run at once here."""
        return max(1, math.floor(self._fraction * self._engine_slots()))

    def interactive_idle(self) -> bool:
        """No interactive request waits for admission, and none will be refused for a line."""
        return self.admission.queued == 0 and not self.admission.draining

    def fits(self, cost: int) -> bool:
        admission = self.admission
        engine = min(self._engine_slots(), admission.max_inflight)
        return (
            self.interactive_idle()
            and self.running + cost <= self.slots
            and admission.in_flight + cost <= engine
        )

    def cost_of(self, sequences: int) -> int:
        """A line's cost here: a line bigger than the share runs alone within it."""
        return max(1, min(sequences, self.slots))

    async def run(self, sequences: int, work: Callable[[], Awaitable[T]], *, seconds: float) -> T:
        """Wait for room, then run `work()` under an admission permit at the batch class,
        within `seconds` from its start (the wait for room is not counted)."""
        cost = self.cost_of(sequences)
        while not self.fits(cost):
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RECHECK_SECONDS):
                    await self._changed.wait()
        self.running += cost
        try:
            deadline = asyncio.get_running_loop().time() + seconds
            return await admit_and_run(
                self.admission, cost, work, priority=BATCH_PRIORITY, deadline=deadline
            )
        finally:
            self.running -= cost
            self._changed.set()
