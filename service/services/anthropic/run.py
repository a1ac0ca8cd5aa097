"""Running a prepared Messages request: whole (`complete`) or as Anthropic's event stream
(`stream`), on the shared core (`service/services/core/generation.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from service.engine.base import Engine
from service.errors import InvalidRequestError
from service.schemas.anthropic_response import Message
from service.services.anthropic.events import Event, MessageEvents
from service.services.anthropic.output import message
from service.services.anthropic.prepare import PreparedMessages
from service.services.core.generation import run_to_completion, stream_deltas


def _name_the_constraint(prepared: PreparedMessages, err: InvalidRequestError) -> None:
    """The engine refused the output's constraint (a schema its grammar compiler cannot take):
    the field it came from."""
    if err.param is not None:
        return
    if prepared.tools.constraint is not None:
        err.param = "tools"
    elif prepared.json_format:
        err.param = "output_config.format.schema"


async def complete(prepared: PreparedMessages, engine: Engine) -> Message:
    try:
        (result,) = await run_to_completion(engine, [prepared.engine_request], prepared.id)
    except InvalidRequestError as err:
        _name_the_constraint(prepared, err)
        raise
    return message(prepared, engine, result.sequences[0], result.num_prompt_tokens)


async def stream(prepared: PreparedMessages, engine: Engine) -> AsyncIterator[Event]:
    """The stream's events (the framing sends them; an error ends it with an `error` event)."""
    events = MessageEvents(prepared, engine)
    for opening in events.opening():
        yield opening
    deltas = stream_deltas(engine, [prepared.engine_request], prepared.id)
    try:
        async for _, chunk in deltas:
            for delta in chunk.sequences:
                for step in events.step(delta):
                    yield step
    except InvalidRequestError as err:
        _name_the_constraint(prepared, err)
        raise
    finally:
        close = getattr(deltas, "aclose", None)
        if close is not None:
            await close()  # now, not when collected: closing aborts the engine request
    for closing in events.closing():
        yield closing
