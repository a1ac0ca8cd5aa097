"""Running a prepared response: whole, or as the Responses event sequence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from service.engine.base import Engine
from service.schemas.responses import Response
from service.services.openai import chat
from service.services.openai.responses.events import ResponseEvents
from service.services.openai.responses.output import finish, output_items, usage_of
from service.services.openai.responses.request import PreparedResponse
from service.services.openai.responses.store import ResponseStore


async def complete(prepared: PreparedResponse, engine: Engine, store: ResponseStore) -> Response:
    answer = await chat.complete(prepared.chat, engine)
    choice = answer.choices[0]
    usage = usage_of(answer.usage.prompt_tokens, answer.usage.completion_tokens)
    return finish(prepared, output_items(choice.message), choice.finish_reason, usage, store)


async def stream(
    prepared: PreparedResponse, engine: Engine, store: ResponseStore
) -> AsyncIterator[str]:
    """The Responses event sequence as SSE payloads."""
    chunks = chat.chunks(prepared.chat, engine)
    events = ResponseEvents(prepared, store).of(chunks)
    # Leaving early closes both now, which aborts the engine request.
    async with aclosing(chunks), aclosing(events):
        async for event in events:
            yield event
