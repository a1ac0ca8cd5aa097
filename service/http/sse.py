"""Streaming answers: server-sent events in OpenAI's framing, `data: {json}` ... `data: [DONE]`,
or in Anthropic's, `event: {type}` + `data: {json}` with `ping` events and no end marker.

`event_stream` is the one way a route answers with a stream (sse-starlette, with keep-alive
pings and no proxy buffering); `framed_events` frames the payloads, and a `Framing` (`OPENAI`
or `ANTHROPIC`) is what differs between the two surfaces.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sse_starlette import EventSourceResponse, ServerSentEvent

from service.config import Settings
from service.errors import DeadlineExceededError, EngineFailureError, GatewayError
from service.http.encode import anthropic_sse_event, sse_event
from service.runtime.admission import Permit

logger = logging.getLogger(__name__)

DONE = "[DONE]"
# A payload: OpenAI's are JSON text (sent as `data:`); Anthropic's are {"event", "data"} dicts.
P = TypeVar("P")


def _anthropic_ping() -> ServerSentEvent:
    return ServerSentEvent(data='{"type": "ping"}', event="ping")


@dataclass(frozen=True, slots=True)
class Framing:
    """What a surface's streams differ in."""

    error_event: Callable[[GatewayError], Any]  # an in-band error, in the surface's shape
    last: str | None  # sent after everything else (OpenAI's [DONE]); None: nothing
    ping: Callable[[], ServerSentEvent] | None  # the keep-alive (None: a `: ping` comment)


OPENAI = Framing(sse_event, DONE, None)
# Anthropic's: `event: <type>` on every payload, `event: ping` keep-alives, `event: error`.
ANTHROPIC = Framing(anthropic_sse_event, None, _anthropic_ping)


def event_stream(
    payloads: AsyncIterator[Any],
    settings: Settings,
    *,
    deadline: float | None = None,
    permit: Permit | None = None,
    framing: Framing = OPENAI,
) -> EventSourceResponse:
    return EventSourceResponse(
        framed_events(payloads, deadline=deadline, permit=permit, framing=framing),
        ping=settings.sse_keepalive_seconds,
        ping_message_factory=framing.ping,
        headers={"X-Accel-Buffering": "no", "Cache-Control": "no-cache"},
    )


async def framed_events(
    payloads: AsyncIterator[P],
    *,
    deadline: float | None = None,
    permit: Permit | None = None,
    framing: Framing = OPENAI,
) -> AsyncIterator[P]:
    """Pass payloads through, then [DONE]; an error after the stream started becomes an event.

    The HTTP status is already 200 by then, so the error goes in-band, in the same shape as a
    non-streaming error body, and the stream still ends with [DONE] so clients stop cleanly
    (Anthropic's framing: an `error` event, and nothing after it).
    Past `deadline` (loop time) the stream ends with a 504 `timeout` event. Whatever ends it,
    the payload generator is closed at once (which aborts its engine requests) and `permit`
    is released.
    """
    bounded = _until(payloads, deadline) if deadline is not None else None
    error_event = framing.error_event
    try:
        async for payload in bounded or payloads:
            yield payload
    except TimeoutError:
        timeout = DeadlineExceededError("The stream did not finish before its deadline.")
        yield error_event(timeout)
    except GatewayError as err:
        yield error_event(err)
    except Exception as err:  # never leak a stack trace into the stream
        logger.exception("stream failed", exc_info=err)
        yield error_event(EngineFailureError("The server had an error while streaming."))
    finally:
        if bounded is not None:
            await bounded.aclose()  # its timer goes now, not when the generator is collected
        close = getattr(payloads, "aclose", None)
        if close is not None:
            await close()
        if permit is not None:
            permit.release()
    if framing.last is not None:
        yield framing.last  # type: ignore[misc]


class _StreamDeadline:
    """One timer for a whole stream. It cancels the stream's task only while the task waits for
    the next payload; a deadline that passes while a payload is being sent ends the stream at
    its next wait. (An `asyncio.timeout_at` around each payload scheduled and cancelled a timer
    per event: a tenth of the API process's CPU under streaming load, docs/benchmarks.md.)"""

    __slots__ = ("expired", "fired", "handle", "task", "waiting")

    def __init__(self, deadline: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self.waiting = False
        self.expired = False
        self.fired = False  # this timer cancelled the task
        self.handle = asyncio.get_running_loop().call_at(deadline, self._expire)

    def _expire(self) -> None:
        self.expired = True
        if self.waiting:
            self.fired = True
            self.task.cancel()

    def cancelled_by_me(self) -> bool:
        """Whether the task's cancellation was this timer's alone (then it is a timeout)."""
        return self.fired and self.task.uncancel() == 0


async def _until(payloads: AsyncIterator[P], deadline: float) -> AsyncGenerator[P, None]:
    """The payloads, until `deadline` (loop time): then TimeoutError."""
    timer = _StreamDeadline(deadline)
    try:
        while not timer.expired:
            timer.waiting = True
            try:
                payload = await anext(payloads)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if timer.cancelled_by_me():
                    raise TimeoutError from None
                raise
            finally:
                timer.waiting = False
            yield payload
        raise TimeoutError
    finally:
        timer.handle.cancel()
