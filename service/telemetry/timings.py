"""The engine's own timings of a request, as the engine reports them (spans, logs)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EngineTimings:
    """When the engine queued, scheduled and last served a request, in `time.monotonic()` seconds
    (the clock vLLM's engine core stamps with; the same clock in every process of one host)."""

    queued: float
    scheduled: float
    first_token: float
    last_token: float
