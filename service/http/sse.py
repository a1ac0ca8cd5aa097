"""Streaming answers: server-sent events in OpenAI's framing, `data: {json}` ... `data: [DONE]`.

`event_stream` is the one way a route answers with a stream (sse-starlette, with keep-alive
pings and no proxy buffering); `openai_events` is the framing around the payloads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse

from service.config import Settings
from service.errors import DeadlineExceededError, EngineFailureError, GatewayError
from service.http.encode import sse_event
from service.runtime.admission import Permit

logger = logging.getLogger(__name__)

DONE = "[DONE]"


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


async def openai_events(
    payloads: AsyncIterator[str], *, deadline: float | None = None, permit: Permit | None = None
) -> AsyncIterator[str]:
    """Pass payloads through, then [DONE]; an error after the stream started becomes an event.

    The HTTP status is already 200 by then, so the error goes in-band, in the same shape as a
    non-streaming error body, and the stream still ends with [DONE] so clients stop cleanly.
    Past `deadline` (loop time) the stream ends with a 504 `timeout` event. Whatever ends it,
    the payload generator is closed at once (which aborts its engine requests) and `permit`
    is released.
    """
    try:
        if deadline is None:
            async for payload in payloads:
                yield payload
        else:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        payload = await anext(payloads)
                except StopAsyncIteration:
                    break
                yield payload
    except TimeoutError:
        yield sse_event(DeadlineExceededError("The stream did not finish before its deadline."))
    except GatewayError as err:
        yield sse_event(err)
    except Exception as err:  # never leak a stack trace into the stream
        logger.exception("stream failed", exc_info=err)
        yield sse_event(EngineFailureError("The server had an error while streaming."))
    finally:
        close = getattr(payloads, "aclose", None)
        if close is not None:
            await close()
        if permit is not None:
            permit.release()
    yield DONE
