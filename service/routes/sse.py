"""The one way routes answer with a stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse

from service.admission import Permit
from service.config import Settings
from service.services.streaming import openai_events


def event_stream(
    payloads: AsyncIterator[str],
    settings: Settings,
    *,
    deadline: float | None = None,
    permit: Permit | None = None,
) -> EventSourceResponse:
    return EventSourceResponse(
        openai_events(payloads, deadline=deadline, permit=permit),
        ping=settings.sse_keepalive_seconds,
        headers={"X-Accel-Buffering": "no", "Cache-Control": "no-cache"},
    )
