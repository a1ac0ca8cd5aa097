"""A chat stream as the Responses API's event sequence, in the order the openai SDK's stream
accumulator needs:

    response.created, response.in_progress,
    per output item: response.output_item.added,
        text:  response.content_part.added, response.output_text.delta...,
               response.output_text.done, response.content_part.done
        call:  response.function_call_arguments.delta..., response.function_call_arguments.done
    response.output_item.done, ..., and last response.completed (with usage)

Every event carries its `sequence_number`. Reasoning text (with a reasoning parser) is not
streamed as events; it is in the completed response's output.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

from service.schemas.chat import ChatCompletionChunk
from service.schemas.responses import OutputFunctionCall, OutputItem, OutputMessage, OutputText
from service.services.openai.response_store import ResponseStore

if TYPE_CHECKING:
    from service.services.openai.responses import PreparedResponse


class _Events:
    def __init__(self) -> None:
        self.sequence = 0

    def __call__(self, kind: str, **fields: Any) -> str:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return json.dumps(event, ensure_ascii=False)


async def response_events(
    prepared: PreparedResponse,
    chunks: AsyncIterator[ChatCompletionChunk],
    store: ResponseStore,
) -> AsyncGenerator[str, None]:
    from service.services.openai.responses import finish, usage_of

    event = _Events()
    shell = prepared.shell.model_dump(mode="json")
    yield event("response.created", response=shell)
    yield event("response.in_progress", response=shell)
    output: list[OutputItem] = []
    text_item: OutputMessage | None = None  # the open message item
    calls: dict[int, OutputFunctionCall] = {}  # by tool-call index, open until the end
    finish_reason: str | None = None
    usage = usage_of(0, 0)

    def close_text() -> list[str]:
        nonlocal text_item
        if text_item is None:
            return []
        index = output.index(text_item)
        part = text_item.content[0]
        text_item.status = "completed"
        events = [
            event(
                "response.output_text.done",
                item_id=text_item.id,
                output_index=index,
                content_index=0,
                text=part.text,
                logprobs=[],
            ),
            event(
                "response.content_part.done",
                item_id=text_item.id,
                output_index=index,
                content_index=0,
                part=part.model_dump(mode="json"),
            ),
            event(
                "response.output_item.done",
                output_index=index,
                item=text_item.model_dump(mode="json"),
            ),
        ]
        text_item = None
        return events

    async for chunk in chunks:
        if chunk.usage is not None:
            usage = usage_of(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        for choice in chunk.choices:
            finish_reason = choice.finish_reason or finish_reason
            delta = choice.delta
            if delta.content:
                if text_item is None:
                    text_item = OutputMessage(
                        id=f"msg_{uuid.uuid4().hex}",
                        status="in_progress",
                        content=[OutputText(text="")],
                    )
                    output.append(text_item)
                    index = len(output) - 1
                    bare = text_item.model_copy(update={"content": []}).model_dump(mode="json")
                    yield event("response.output_item.added", output_index=index, item=bare)
                    yield event(
                        "response.content_part.added",
                        item_id=text_item.id,
                        output_index=index,
                        content_index=0,
                        part=OutputText(text="").model_dump(mode="json"),
                    )
                text_item.content[0].text += delta.content
                yield event(
                    "response.output_text.delta",
                    item_id=text_item.id,
                    output_index=output.index(text_item),
                    content_index=0,
                    delta=delta.content,
                    logprobs=[],
                )
            for piece in delta.tool_calls or []:
                call = calls.get(piece.index)
                if call is None:
                    for done in close_text():
                        yield done
                    call = OutputFunctionCall(
                        id=f"fc_{uuid.uuid4().hex}",
                        call_id=piece.id or "",
                        name=piece.function.name or "",
                        arguments="",
                        status="in_progress",
                    )
                    calls[piece.index] = call
                    output.append(call)
                    yield event(
                        "response.output_item.added",
                        output_index=len(output) - 1,
                        item=call.model_dump(mode="json"),
                    )
                if piece.function.arguments:
                    call.arguments += piece.function.arguments
                    yield event(
                        "response.function_call_arguments.delta",
                        item_id=call.id,
                        output_index=output.index(call),
                        delta=piece.function.arguments,
                    )
    for done in close_text():
        yield done
    for call in calls.values():
        index = output.index(call)
        call.status = "completed"
        yield event(
            "response.function_call_arguments.done",
            item_id=call.id,
            output_index=index,
            name=call.name,
            arguments=call.arguments,
        )
        yield event(
            "response.output_item.done", output_index=index, item=call.model_dump(mode="json")
        )
    response = finish(prepared, output, finish_reason, usage, store)
    kind = "response.completed" if response.status == "completed" else "response.incomplete"
    yield event(kind, response=response.model_dump(mode="json"))
