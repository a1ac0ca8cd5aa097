"""A finished chat answer as Responses output items, the response it completes, and what is
kept of it: the response (when `store`), with the conversation a continuation starts from, and
its items in its conversation (with `conversation`)."""

from __future__ import annotations

from typing import Any

from service.schemas.chat import ChatMessage
from service.schemas.responses import (
    IncompleteDetails,
    OutputFunctionCall,
    OutputItem,
    OutputMessage,
    OutputReasoning,
    OutputText,
    ReasoningText,
    Response,
    ResponseUsage,
)
from service.services.openai.responses.items import new_id, output_conversation_items
from service.services.openai.responses.request import FINISHED, PreparedResponse
from service.store import Store


def output_items(message: ChatMessage) -> list[OutputItem]:
    items: list[OutputItem] = []
    if message.reasoning:
        items.append(
            OutputReasoning(id=new_id("rs"), content=[ReasoningText(text=message.reasoning)])
        )
    if message.content:
        items.append(OutputMessage(id=new_id("msg"), content=[OutputText(text=message.content)]))
    items.extend(
        OutputFunctionCall(
            id=new_id("fc"),
            call_id=call.id,
            name=call.function.name,
            arguments=call.function.arguments,
        )
        for call in message.tool_calls
    )
    return items


def finish(
    prepared: PreparedResponse,
    output: list[OutputItem],
    finish_reason: str | None,
    usage: ResponseUsage,
) -> Response:
    """The completed (or incomplete) response."""
    return prepared.shell.model_copy(
        update={
            "output": output,
            "usage": usage,
            "status": "incomplete" if finish_reason == "length" else "completed",
            "incomplete_details": IncompleteDetails(reason="max_output_tokens")
            if finish_reason == "length"
            else None,
        }
    )


def conversation_after(prepared: PreparedResponse, response: Response) -> list[dict[str, Any]]:
    """The conversation a continuation of `response` starts from."""
    return [*prepared.messages, *_as_messages(response.output)]


async def keep(prepared: PreparedResponse, response: Response, store: Store) -> None:
    """A response that ran in its request: stored when asked, its items added to its
    conversation."""
    if prepared.store:
        await store.responses.put(
            prepared.owner,
            response.model_dump(mode="json"),
            conversation_after(prepared, response),
            input_items=prepared.input_items,
            conversation_id=prepared.conversation_id,
        )
    await add_to_conversation(prepared, response, store)


async def add_to_conversation(prepared: PreparedResponse, response: Response, store: Store) -> None:
    """The input and output items of a finished response, at the end of its conversation (one
    deleted meanwhile is left deleted)."""
    if prepared.conversation_id is None or response.status not in FINISHED:
        return
    items = [*prepared.input_items, *output_conversation_items(response.output)]
    await store.conversations.append(prepared.owner, prepared.conversation_id, items)


def _as_messages(output: list[OutputItem]) -> list[dict[str, Any]]:
    text = "".join(
        part.text for item in output if isinstance(item, OutputMessage) for part in item.content
    )
    calls = [
        {
            "id": item.call_id,
            "type": "function",
            "function": {"name": item.name, "arguments": item.arguments},
        }
        for item in output
        if isinstance(item, OutputFunctionCall)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def usage_of(prompt: int, completion: int) -> ResponseUsage:
    return ResponseUsage(
        input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion
    )
