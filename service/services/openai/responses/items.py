"""Items, the Responses API's unit of conversation: input items as chat messages, and input and
output items as the stored items of a conversation (OpenAI's shapes, ids of our own)."""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

from pydantic import TypeAdapter

from service.schemas.responses import (
    FunctionCallItem,
    FunctionCallOutputItem,
    InputItem,
    MessageItem,
    OutputItem,
    ReasoningItem,
)

_INPUT_ITEMS: TypeAdapter[list[InputItem]] = TypeAdapter(list[InputItem])
# The ids the store hands out (`resp_`, `conv_`, `msg_` + hex): anything else names nothing, and
# is not looked up (a NUL or a 10 kB id never reaches the database).
_PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def known_id(value: str) -> bool:
    """Whether `value` could be an id this server made."""
    return _PUBLIC_ID.fullmatch(value) is not None


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def input_messages(items: str | list[InputItem]) -> list[dict[str, Any]]:
    """Input items as chat messages; consecutive function calls form one assistant turn, and
    reasoning is left out (as reasoning models' templates leave earlier thoughts out)."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, FunctionCallItem):
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls"):
                last["tool_calls"].append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutputItem):
            out.append({"role": "tool", "tool_call_id": item.call_id, "content": item.output})
        elif isinstance(item, MessageItem):
            out.append({"role": item.role, "content": item.text()})
    return out


def stored_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A conversation's stored items as chat messages."""
    return input_messages(_INPUT_ITEMS.validate_python(items))


def _message_item(item: MessageItem) -> dict[str, Any]:
    kind = "output_text" if item.role == "assistant" else "input_text"
    parts: list[dict[str, Any]]
    if isinstance(item.content, str):
        parts = [{"type": kind, "text": item.content}]
    else:
        parts = [{"type": part.type, "text": part.text} for part in item.content]
    for part in parts:
        if part["type"] == "output_text":
            part |= {"annotations": [], "logprobs": []}
    return {
        "id": new_id("msg"),
        "type": "message",
        "status": "completed",
        "role": item.role,
        "content": parts,
    }


def conversation_items(items: str | list[InputItem]) -> list[dict[str, Any]]:
    """Input items as a conversation keeps them, each with an id of its own (a client's ids may
    repeat: the same items sent to two conversations)."""
    if isinstance(items, str):
        items = [MessageItem(role="user", content=items)]
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, MessageItem):
            out.append(_message_item(item))
        elif isinstance(item, FunctionCallItem):
            fields = item.model_dump(exclude={"id", "status"})
            out.append({"id": new_id("fc"), **fields, "status": "completed"})
        elif isinstance(item, FunctionCallOutputItem):
            fields = item.model_dump(exclude={"id", "status"})
            out.append({"id": new_id("fco"), **fields, "status": "completed"})
        elif isinstance(item, ReasoningItem):
            fields = item.model_dump(exclude={"id", "status"}, exclude_none=True)
            out.append({"id": new_id("rs"), **fields, "status": "completed"})
    return out


def output_conversation_items(output: list[OutputItem]) -> list[dict[str, Any]]:
    """A response's output items as its conversation keeps them (their ids kept)."""
    return [item.model_dump(mode="json") for item in output]


def item_page(
    items: list[dict[str, Any]], *, after: str | None, limit: int, order: Literal["asc", "desc"]
) -> tuple[list[dict[str, Any]], bool]:
    """A page of `items` (oldest first, each with an `id`) in `order`, after the item `after`
    (an id not among them gives an empty page, as a conversation's items do), and whether more
    follow."""
    ordered = items if order == "asc" else items[::-1]
    if after is not None:
        ids = [item.get("id") for item in ordered]
        if after not in ids:
            return [], False
        ordered = ordered[ids.index(after) + 1 :]
    return ordered[:limit], len(ordered) > limit
