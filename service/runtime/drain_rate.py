"""The admission queue's drain rate: engine sequences finished per second while requests wait.

Measured only while the queue is not empty. Then the engine is as full as admission lets it be,
so the rate is what the engine can do; measured at any time it would be the rate clients
happened to send, and a quiet minute would make the next queue look far slower than it is.

The rate comes from Little's law: sequences in flight over the time a sequence stays in
flight, `L / W`. Each finished sequence brings both (how many were in flight when it finished,
how long it was held), and the rate is the ratio of their sums, decayed alike over the time
spent with a queue (time constant `time_constant` seconds).

Why not count finishes per second: the engine finishes sequences in bursts (a batch started
together ends together), so a count taken just after the first finish of a burst sees one
sequence over a whole batch's time and reads the rate several times too low. A request that
arrives then (a closed-loop client sending its next request as soon as one finished) was
refused for a wait many times its real one: one A/B run at 64 concurrent streams refused 58 of
128 requests under the 30 s bound while the measured waits stayed below it. Every sequence of a
burst has about the same time in flight, so `L / W` reads the same before, during and after
the burst. Its one bias is early on: sequences that finish first waited less than those behind
them, so a queue's first estimates are low (fewer refusals, never more).

The estimate is kept across quiet periods (decay runs on queued time only): the next queue
starts from the last rate seen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

Clock = Callable[[], float]

# Long enough to average over many engine steps, short enough to follow a change in the mix of
# requests (longer replies, a bigger model) within a minute of queueing.
DEFAULT_TIME_CONSTANT = 20.0


class DrainRate:
    """Sequences finished per second while the queue is not empty; `None` until some have."""

    __slots__ = ("_held", "_in_flight", "_since", "clock", "time_constant")

    def __init__(
        self, *, time_constant: float = DEFAULT_TIME_CONSTANT, clock: Clock = time.monotonic
    ) -> None:
        self.time_constant = time_constant
        self.clock = clock  # admission reads it too: when a permit was admitted
        self._in_flight = 0.0  # decayed sum, per finished sequence, of the sequences in flight
        self._held = 0.0  # decayed sum, per finished sequence, of its seconds in flight
        self._since: float | None = None  # decay accounted up to here; None: no queue

    def queue_started(self) -> None:
        if self._since is None:
            self._since = self.clock()

    def queue_emptied(self) -> None:
        self._since = None

    @property
    def measuring(self) -> bool:
        """Whether requests wait (only then do finishes count)."""
        return self._since is not None

    def finished(self, sequences: int, *, held: float, in_flight: int) -> None:
        """`sequences` released their admission after `held` seconds, with `in_flight`
        sequences admitted just before; counted only while requests wait."""
        if self._since is None or held <= 0.0:
            return
        now = self.clock()
        decay = math.exp(-max(0.0, now - self._since) / self.time_constant)
        self._in_flight = self._in_flight * decay + sequences * in_flight
        self._held = self._held * decay + sequences * held
        self._since = now

    @property
    def per_second(self) -> float | None:
        if self._in_flight <= 0.0 or self._held <= 0.0:
            return None  # nothing finished yet while requests waited
        return self._in_flight / self._held

    def wait_for(self, sequences: int) -> float | None:
        """Seconds until `sequences` more have drained at the current rate; None: unknown."""
        rate = self.per_second
        return None if rate is None else sequences / rate
