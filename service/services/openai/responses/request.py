"""A Responses request as a chat request: instructions as the system turn, the stored
conversation of `previous_response_id`, then the input items (messages, function calls and
their outputs); the chat request's field names are mapped back in errors (`param`)."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from service.caller import Caller
from service.config import Settings
from service.engine.base import Engine
from service.errors import GatewayError, InvalidRequestError, NotFoundError
from service.schemas.chat import ChatCompletionRequest
from service.schemas.responses import (
    FunctionCallItem,
    FunctionCallOutputItem,
    InputItem,
    Response,
    ResponsesRequest,
)
from service.services.openai import chat
from service.services.openai.responses.store import ResponseStore


@dataclass(slots=True)
class PreparedResponse:
    chat: chat.PreparedChat
    shell: Response  # the response's fields before any output
    messages: list[dict[str, Any]]  # the conversation so far, without instructions
    store: bool
    owner: str
    output_messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cost(self) -> int:
        return self.chat.cost

    @property
    def priority(self) -> int:
        return self.chat.priority


_PARAMS = [
    (re.compile(r"^tools\.(\d+)\.function\."), r"tools.\1."),
    (re.compile(r"^messages(\..*)?$"), "input"),
    (re.compile(r"^max_completion_tokens$"), "max_output_tokens"),
    (re.compile(r"^response_format(\..*)?$"), "text.format"),
]


def _param(param: str | None) -> str | None:
    """A chat field's name as the Responses request calls it."""
    if param is None:
        return None
    for pattern, replacement in _PARAMS:
        param = pattern.sub(replacement, param)
    return param


def input_messages(items: str | list[InputItem]) -> list[dict[str, Any]]:
    """Input items as chat messages; consecutive function calls form one assistant turn."""
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
        else:
            out.append({"role": item.role, "content": item.text()})
    return out


def _chat_request(
    request: ResponsesRequest, messages: list[dict[str, Any]]
) -> ChatCompletionRequest:
    fields: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "max_completion_tokens": request.max_output_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "stream": request.stream,
        "parallel_tool_calls": request.parallel_tool_calls,
    }
    if request.tools:
        fields["tools"] = [
            {"type": "function", "function": t.model_dump(exclude={"type"}, exclude_none=True)}
            for t in request.tools
        ]
    choice = request.tool_choice
    if choice is not None:
        fields["tool_choice"] = (
            {"type": "function", "function": {"name": choice.name}}
            if not isinstance(choice, str)
            else choice
        )
    fmt = request.text.format if request.text is not None else None
    if fmt is not None and fmt.type == "json_schema":
        schema = {"name": fmt.name or "output", "schema": fmt.schema_ or {}, "strict": fmt.strict}
        fields["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif fmt is not None:
        fields["response_format"] = {"type": fmt.type}
    try:
        return ChatCompletionRequest.model_validate(fields)
    except ValidationError as err:
        first = err.errors()[0]
        named = (first.get("ctx") or {}).get("param")
        where = _param(named or ".".join(str(p) for p in first["loc"]) or None)
        raise InvalidRequestError(first["msg"], param=where) from err


def prepare(
    request: ResponsesRequest,
    engine: Engine,
    settings: Settings,
    store: ResponseStore,
    caller: Caller,
) -> PreparedResponse:
    owner = caller.owner
    history: list[dict[str, Any]] = []
    if request.previous_response_id is not None:
        stored = store.get(request.previous_response_id, owner)
        if stored is None:
            raise NotFoundError(
                f"No response with id '{request.previous_response_id}' is stored here.",
                param="previous_response_id",
            )
        history = stored.messages
    conversation = [*history, *input_messages(request.input)]
    system = [{"role": "system", "content": request.instructions}] if request.instructions else []
    try:
        prepared = chat.prepare(
            _chat_request(request, system + conversation), engine, settings, caller
        )
    except GatewayError as err:
        err.param = _param(err.param)
        raise
    if request.stream:  # the completed event carries usage
        prepared = replace(prepared, include_usage=True)
    shell = Response(
        id=f"resp_{uuid.uuid4().hex}",
        created_at=int(time.time()),
        status="in_progress",
        instructions=request.instructions,
        max_output_tokens=request.max_output_tokens,
        model=prepared.model,
        output=[],
        parallel_tool_calls=request.parallel_tool_calls is not False,
        previous_response_id=request.previous_response_id,
        temperature=request.temperature,
        top_p=request.top_p,
        tool_choice=(
            request.tool_choice.model_dump()
            if request.tool_choice is not None and not isinstance(request.tool_choice, str)
            else request.tool_choice or "auto"
        ),
        tools=[t.model_dump(exclude_none=True) for t in request.tools or []],
        text={"format": request.text.format.model_dump(by_alias=True, exclude_none=True)}
        if request.text is not None and request.text.format is not None
        else {"format": {"type": "text"}},
        store=request.store,
        metadata=request.metadata or {},
    )
    return PreparedResponse(prepared, shell, conversation, request.store, owner)
