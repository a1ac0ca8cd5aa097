"""Streaming answers: server-sent events in OpenAI's framings, and Anthropic's.

Chat and completions: `data: {json}` ... `data: [DONE]`. The Responses API: named events, an
`event: <type>` line before each `data:` line, ending with the last event (no [DONE]), as OpenAI
and vLLM send them. Anthropic's Messages API: named events too, with its own error body and
`event: ping` keep-alives (`NamedFraming`). `event_stream` and `named_event_stream` are the ways
a route answers with a stream (sse-starlette, with keep-alive pings and no proxy buffering);
`openai_events` is the framing around the payloads.

Per event, the frame is written here (`data_frame`, the bytes sse-starlette's `ServerSentEvent`
would write) and sent without anyio's cancel scope, which sse-starlette opens around each send
for a send timeout the gateway does not set: the two were a fifth of a plain chat stream's CPU
per event in the gateway's app (docs/benchmarks.md, "What a stream event costs").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Message, Send

from service.config import Settings
from service.errors import DeadlineExceededError, EngineFailureError, GatewayError
from service.http.encode import anthropic_sse_event, sse_event
from service.runtime.admission import Permit

logger = logging.getLogger(__name__)

DONE = "[DONE]"
# sse-starlette's line separator (its keep-alive pings use it too).
SEPARATOR = EventSourceResponse.DEFAULT_SEPARATOR
_DATA = "data: "
_END = SEPARATOR + SEPARATOR

Item = str | ServerSentEvent


class NamedEvent(Protocol):
    """An event of a named stream: its type (the `event:` line) and its JSON (the `data:`)."""

    @property
    def type(self) -> str: ...

    @property
    def data(self) -> str: ...


def _anthropic_ping() -> ServerSentEvent:
    return ServerSentEvent('{"type": "ping"}', event="ping")


@dataclass(frozen=True, slots=True)
class NamedFraming:
    """What a named stream's surface decides: the JSON of its `error` event, and its keep-alive
    (None: sse-starlette's `: ping` comment)."""

    error_data: Callable[[GatewayError], str]
    ping: Callable[[], ServerSentEvent] | None = None


RESPONSES = NamedFraming(sse_event)
ANTHROPIC = NamedFraming(anthropic_sse_event, _anthropic_ping)


def event_stream(
    payloads: AsyncIterator[str],
    settings: Settings,
    *,
    deadline: float | None = None,
    permit: Permit | None = None,
) -> EventSourceResponse:
    return _EventStream(
        _frames(openai_events(payloads, deadline=deadline, permit=permit)),
        ping=settings.sse_keepalive_seconds,
        sep=SEPARATOR,
        headers={"X-Accel-Buffering": "no", "Cache-Control": "no-cache"},
    )


def named_event_stream(
    events: AsyncIterator[NamedEvent],
    settings: Settings,
    *,
    deadline: float | None = None,
    permit: Permit | None = None,
    framing: NamedFraming = RESPONSES,
) -> EventSourceResponse:
    """A stream of named events (the Responses API's, or Anthropic's with `ANTHROPIC`)."""
    return _EventStream(
        _frames(openai_events(_named(events), deadline=deadline, permit=permit, named=framing)),
        ping=settings.sse_keepalive_seconds,
        ping_message_factory=framing.ping,
        sep=SEPARATOR,
        headers={"X-Accel-Buffering": "no", "Cache-Control": "no-cache"},
    )


async def _named(events: AsyncIterator[NamedEvent]) -> AsyncIterator[ServerSentEvent]:
    try:
        async for event in events:
            yield ServerSentEvent(event.data, event=event.type)
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()  # now, not when collected: closing aborts the engine request


def _error_event(error: GatewayError, named: NamedFraming | None) -> Item:
    if named is None:
        return sse_event(error)
    return ServerSentEvent(named.error_data(error), event="error")


class _EventStream(EventSourceResponse):
    """sse-starlette's response, sending without a cancel scope when there is no send timeout."""

    async def _send_with_timeout(self, send: Send, message: Message) -> None:
        if self.send_timeout is None:
            await send(message)
        else:
            await super()._send_with_timeout(send, message)


def data_frame(payload: str) -> bytes:
    """The event of one payload, as sse-starlette writes it (`ServerSentEvent(payload)`): in one
    step for a payload of one line, as every JSON payload is."""
    if "\n" in payload or "\r" in payload:
        return ServerSentEvent(payload, sep=SEPARATOR).encode()
    return (_DATA + payload + _END).encode()


async def _frames(events: AsyncIterator[Item]) -> AsyncGenerator[bytes, None]:
    try:
        async for payload in events:
            yield data_frame(payload) if isinstance(payload, str) else payload.encode()
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()  # now: it closes the payloads (aborting their engine work)


async def openai_events(
    payloads: AsyncIterator[Item],
    *,
    deadline: float | None = None,
    permit: Permit | None = None,
    named: NamedFraming | None = None,
) -> AsyncIterator[Item]:
    """Pass payloads through, then [DONE]; an error after the stream started becomes an event.

    The HTTP status is already 200 by then, so the error goes in-band, in the same shape as a
    non-streaming error body, and the stream still ends with [DONE] so clients stop cleanly.
    Past `deadline` (loop time) the stream ends with a 504 `timeout` event. Whatever ends it,
    the payload generator is closed at once (which aborts its engine requests) and `permit`
    is released. A `named` stream's error is an `error` event, and it ends without [DONE].
    """
    bounded = _until(payloads, deadline) if deadline is not None else None
    try:
        async for payload in bounded or payloads:
            yield payload
    except TimeoutError:
        deadline_passed = DeadlineExceededError("The stream did not finish before its deadline.")
        yield _error_event(deadline_passed, named)
    except GatewayError as err:
        yield _error_event(err, named)
    except Exception as err:  # never leak a stack trace into the stream
        logger.exception("stream failed", exc_info=err)
        yield _error_event(EngineFailureError("The server had an error while streaming."), named)
    finally:
        await _end(payloads, permit, bounded)
    if named is None:
        yield DONE


async def _end(
    payloads: AsyncIterator[Item], permit: Permit | None, bounded: AsyncGenerator[Item, None] | None
) -> None:
    if bounded is not None:
        await bounded.aclose()  # its timer goes now, not when the generator is collected
    close = getattr(payloads, "aclose", None)
    if close is not None:
        await close()
    if permit is not None:
        permit.release()


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


async def _until(payloads: AsyncIterator[Item], deadline: float) -> AsyncGenerator[Item, None]:
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
