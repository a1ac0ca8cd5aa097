"""Running a prepared response: whole, or as the Responses event sequence. In its request here;
in the background, the same steps under `background.py`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from functools import partial

from service.engine.base import Engine
from service.schemas.responses import Response
from service.services.openai import chat
from service.services.openai.responses.events import OnFinish, ResponseEvent, ResponseEvents
from service.services.openai.responses.output import finish, keep, output_items, usage_of
from service.services.openai.responses.request import PreparedResponse
from service.store import Store


async def answer(prepared: PreparedResponse, engine: Engine) -> Response:
    """The response, generated whole (nothing kept)."""
    completion = await chat.complete(prepared.chat, engine)
    choice = completion.choices[0]
    usage = usage_of(completion.usage.prompt_tokens, completion.usage.completion_tokens)
    return finish(prepared, output_items(choice.message), choice.finish_reason, usage)


async def complete(prepared: PreparedResponse, engine: Engine, store: Store) -> Response:
    response = await answer(prepared, engine)
    await keep(prepared, response, store)
    return response


async def output_events(
    events: ResponseEvents, engine: Engine, on_finish: OnFinish
) -> AsyncIterator[ResponseEvent]:
    """The output's events and the final one (after `on_finish`)."""
    chunks = chat.chunks(events.prepared.chat, engine)
    output = events.of(chunks, on_finish)
    # Leaving early closes both now, which aborts the engine request.
    async with aclosing(chunks), aclosing(output):
        async for event in output:
            yield event


async def stream(
    prepared: PreparedResponse, engine: Engine, store: Store
) -> AsyncIterator[ResponseEvent]:
    """The Responses event sequence of a response that runs in its request."""
    events = ResponseEvents(prepared)
    for event in events.opening():
        yield event
    async for event in output_events(events, engine, partial(keep, prepared, store=store)):
        yield event
