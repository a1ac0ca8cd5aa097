"""A Responses request as a chat request: instructions as the system turn, the conversation it
continues (`previous_response_id`'s, or a conversation's items; with `truncation: auto` less its
oldest messages when the context would overflow), then the input items (messages, function
calls and their outputs); the chat request's field names are mapped back in errors (`param`)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from service.caller import Caller
from service.config import Settings
from service.engine.base import Engine
from service.errors import ContextLengthError, GatewayError, InvalidRequestError, NotFoundError
from service.schemas.chat import ChatCompletionRequest
from service.schemas.responses import ConversationOfResponse, Response, ResponsesRequest
from service.services.openai import chat
from service.services.openai.responses.items import (
    conversation_items,
    input_messages,
    known_id,
    new_id,
    stored_messages,
)
from service.store import Store

FINISHED = ("completed", "incomplete")  # the statuses a continuation may start from


@dataclass(slots=True)
class PreparedResponse:
    chat: chat.PreparedChat
    shell: Response  # the response's fields before any output
    messages: list[dict[str, Any]]  # the conversation so far, without instructions
    store: bool
    owner: str
    conversation_id: str | None = None
    # The input as the conversation keeps it (only with a conversation).
    input_items: list[dict[str, Any]] = field(default_factory=list)
    background: bool = False
    stream: bool = False

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


async def _history(request: ResponsesRequest, store: Store, owner: str) -> list[dict[str, Any]]:
    """The conversation a response continues: its previous response's, its conversation's
    items, or none."""
    previous = request.previous_response_id
    if previous is not None:
        stored = await store.responses.get(owner, previous) if known_id(previous) else None
        if stored is None:
            raise NotFoundError(
                f"No response with id '{previous}' is stored here.", param="previous_response_id"
            )
        if stored.status not in FINISHED:
            raise InvalidRequestError(
                f"Response '{previous}' is {stored.status}: only a completed or incomplete "
                "response can be continued.",
                param="previous_response_id",
            )
        return stored.messages
    conversation = request.conversation_id
    if conversation is None:
        return []
    if not known_id(conversation) or await store.conversations.get(owner, conversation) is None:
        raise NotFoundError(f"No conversation with id '{conversation}'.", param="conversation")
    return stored_messages(await store.conversations.all_items(owner, conversation))


def _without_oldest(history: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """`history` less its `count` oldest messages, and less the tool results whose call went
    with them (a result without its call is refused)."""
    kept = history[count:]
    while kept and kept[0]["role"] == "tool":
        kept = kept[1:]
    return kept


def _fit(
    attempt: Callable[[list[dict[str, Any]]], chat.PreparedChat],
    history: list[dict[str, Any]],
    *,
    truncate: bool,
) -> tuple[chat.PreparedChat, list[dict[str, Any]]]:
    """The prepared chat, and the history it kept. With `truncate` (`truncation: auto`) a
    history too long for the context loses its oldest messages, as few as fit (a binary search:
    each try renders and tokenizes the prompt)."""
    try:
        return attempt(history), history
    except ContextLengthError:
        if not truncate or not history:
            raise
    low, high = 1, len(history)  # dropping `high` fits, or nothing does
    last = _without_oldest(history, high)
    best = attempt(last)  # raises when even the input alone does not fit
    while low < high:
        middle = (low + high) // 2
        kept = _without_oldest(history, middle)
        try:
            best, last, high = attempt(kept), kept, middle
        except ContextLengthError:
            low = middle + 1
    return best, last


async def prepare(
    request: ResponsesRequest,
    engine: Engine,
    settings: Settings,
    store: Store,
    caller: Caller,
) -> PreparedResponse:
    if request.background and store.responses.entries < 1:
        raise InvalidRequestError(
            "This server keeps no responses (response_store_entries is 0), so it cannot run "
            "them in the background.",
            param="background",
        )
    owner = caller.owner
    history = await _history(request, store, owner)
    new = input_messages(request.input)
    system = [{"role": "system", "content": request.instructions}] if request.instructions else []

    def attempt(kept: list[dict[str, Any]]) -> chat.PreparedChat:
        return chat.prepare(_chat_request(request, system + kept + new), engine, settings, caller)

    try:
        prepared, history = _fit(attempt, history, truncate=request.truncation == "auto")
    except GatewayError as err:
        err.param = _param(err.param)
        raise
    if request.stream:  # the completed event carries usage
        prepared = replace(prepared, include_usage=True)
    conversation = request.conversation_id
    return PreparedResponse(
        prepared,
        _shell(request, prepared.model),
        [*history, *new],
        request.store,
        owner,
        conversation_id=conversation,
        # ids of their own: listed by GET .../input_items, appended to the conversation
        input_items=conversation_items(request.input)
        if request.store or conversation is not None
        else [],
        background=request.background,
        stream=request.stream,
    )


def _shell(request: ResponsesRequest, model: str) -> Response:
    """The response's fields before any output."""
    conversation = request.conversation_id
    return Response(
        id=new_id("resp"),
        created_at=int(time.time()),
        status="queued" if request.background else "in_progress",
        background=request.background,
        conversation=ConversationOfResponse(id=conversation) if conversation else None,
        instructions=request.instructions,
        max_output_tokens=request.max_output_tokens,
        model=model,
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
        truncation=request.truncation or "disabled",
        store=request.store,
        metadata=request.metadata or {},
    )
