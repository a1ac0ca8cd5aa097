"""Hand-driven stand-ins shared by the unit and API suites."""

from __future__ import annotations


class Clock:
    """A monotonic clock that moves only when the test moves it (`clock.now += 30`)."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
