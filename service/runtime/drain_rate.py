"""The admission queue's drain rate: engine sequences finished per second while requests wait.

Measured only while the queue is not empty. Then the engine is as full as admission lets it be,
so the rate is what the engine can do; measured at any time it would be the rate clients
happened to send, and a quiet minute would make the next queue look far slower than it is.

The rate is smoothed as the ratio of two sums decayed alike over the time spent with a queue
(time constant `time_constant` seconds): sequences finished, and the seconds between those
finishes. A batch finishing at one instant adds its sequences and no time, so bursty
completions do not make the rate jump the way an average of per-completion rates would; both
sums weigh an interval the same, so a steady pace is measured without bias. The estimate is
kept across quiet periods (decay runs on queued time only): the next queue starts from the
last rate seen.
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

    __slots__ = ("_clock", "_elapsed", "_finished", "_since", "time_constant")

    def __init__(
        self, *, time_constant: float = DEFAULT_TIME_CONSTANT, clock: Clock = time.monotonic
    ) -> None:
        self.time_constant = time_constant
        self._clock = clock
        self._finished = 0.0  # decayed sum of sequences finished while queued
        self._elapsed = 0.0  # decayed sum of the seconds spent queued, up to the last finish
        self._since: float | None = None  # queued time accounted up to here; None: no queue

    def queue_started(self) -> None:
        if self._since is None:
            self._since = self._clock()

    def queue_emptied(self) -> None:
        # The queued time since the last finish is dropped: nothing is known to have drained
        # in it, and counting it would make a queue that emptied by cancellations look slow.
        self._since = None

    def finished(self, sequences: int) -> None:
        """`sequences` released their admission; counted only while requests wait."""
        if self._since is None:
            return
        now = self._clock()
        seconds = max(0.0, now - self._since)
        decay = math.exp(-seconds / self.time_constant)
        self._finished = self._finished * decay + sequences
        self._elapsed = self._elapsed * decay + seconds
        self._since = now

    @property
    def per_second(self) -> float | None:
        if self._finished <= 0.0 or self._elapsed <= 0.0:
            return None  # nothing finished yet, or only at the instant the queue formed
        return self._finished / self._elapsed

    def wait_for(self, sequences: int) -> float | None:
        """Seconds until `sequences` more have drained at the current rate; None: unknown."""
        rate = self.per_second
        return None if rate is None else sequences / rate
