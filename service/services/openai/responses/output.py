"""A finished chat answer as Responses output items, and the response it completes (stored
when asked, with the conversation a continuation starts from)."""

from __future__ import annotations

import uuid
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
from service.services.openai.responses.request import PreparedResponse
from service.services.openai.responses.store import ResponseStore


def output_items(message: ChatMessage) -> list[OutputItem]:
    items: list[OutputItem] = []
    if message.reasoning:
        items.append(
            OutputReasoning(
                id=f"rs_{uuid.uuid4().hex}", content=[ReasoningText(text=message.reasoning)]
            )
        )
    if message.content:
        items.append(
            OutputMessage(id=f"msg_{uuid.uuid4().hex}", content=[OutputText(text=message.content)])
        )
    items.extend(
        OutputFunctionCall(
            id=f"fc_{uuid.uuid4().hex}",
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
    store: ResponseStore,
) -> Response:
    """The completed response, stored when asked, with the conversation it continues."""
    response = prepared.shell.model_copy(
        update={
            "output": output,
            "usage": usage,
            "status": "incomplete" if finish_reason == "length" else "completed",
            "incomplete_details": IncompleteDetails(reason="max_output_tokens")
            if finish_reason == "length"
            else None,
        }
    )
    if prepared.store:
        store.put(response, [*prepared.messages, *_as_messages(output)], prepared.owner)
    return response


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
