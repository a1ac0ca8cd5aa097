"""A Messages request's conversation as chat templates take it (the shape OpenAI's chat messages
have): the system text first, then one message per turn.

- Consecutive messages of one role are one turn, as Anthropic combines them; a turn's text
  blocks are joined by a blank line.
- An assistant's `tool_use` blocks are its `tool_calls` (the input as JSON arguments); a user's
  `tool_result` blocks are `tool` messages, before the turn's own text. A failed call's result
  (`is_error`) reads "Error: ..." to the model.
- Thinking and redacted thinking blocks are left out of the prompt.
- A conversation ending in an assistant turn with text (and no calls) is a prefill: the answer
  continues it; one ending in an assistant turn with nothing in the prompt (only thinking) ends
  before it.
- Claude Code's `x-anthropic-billing-header` system block changes with every request and says
  nothing to the model: it is left out, so that the prompt's prefix stays cacheable.

Every `tool_result` answers a `tool_use` of an earlier assistant turn, `tool_use` blocks are the
assistant's and `tool_result` blocks the user's: anything else is a 400 naming the block.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from service.config import Settings
from service.errors import InvalidRequestError
from service.schemas.anthropic import ConversationRequest
from service.schemas.anthropic_content import (
    InputMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from service.services.core.limits import check_count, check_text

BILLING_HEADER = "x-anthropic-billing-header"
BLOCK_SEPARATOR = "\n\n"


@dataclass(slots=True)
class _Turn:
    role: str
    texts: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)  # an assistant's tool_calls
    results: list[dict[str, Any]] = field(default_factory=list)  # a user's tool messages


@dataclass(frozen=True, slots=True)
class Conversation:
    messages: list[dict[str, Any]]  # as chat templates take them
    prefill: bool  # the last message is the assistant's, to be continued


def system_text(request: ConversationRequest) -> str:
    """The `system` field's text, Claude Code's billing header left out."""
    if request.system is None or isinstance(request.system, str):
        return request.system or ""
    kept = [block.text for block in request.system if not block.text.startswith(BILLING_HEADER)]
    return BLOCK_SEPARATOR.join(kept)


class _Reader:
    """Reads the messages into turns, checking each block where it stands."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.turns: list[_Turn] = []
        self.called: set[str] = set()  # tool_use ids of the assistant turns read so far

    def read(self, index: int, message: InputMessage) -> None:
        if not self.turns or self.turns[-1].role != message.role:
            self.turns.append(_Turn(message.role))
        turn = self.turns[-1]
        for j, block in enumerate(message.blocks()):
            param = f"messages.{index}.content.{j}"
            if isinstance(block, TextBlock):
                check_text(block.text, self.settings, param=f"{param}.text")
                if not (message.role == "system" and block.text.startswith(BILLING_HEADER)):
                    turn.texts.append(block.text)
            elif isinstance(block, ToolUseBlock):
                self._call(turn, block, param)
            elif isinstance(block, ToolResultBlock):
                self._result(turn, block, param)
            # Thinking blocks: accepted, and not part of the prompt.

    def _call(self, turn: _Turn, block: ToolUseBlock, param: str) -> None:
        if turn.role != "assistant":
            raise InvalidRequestError(
                "tool_use blocks belong to assistant messages.", param=f"{param}.type"
            )
        arguments = json.dumps(block.input, ensure_ascii=False)
        check_text(arguments, self.settings, param=f"{param}.input")
        self.called.add(block.id)
        turn.calls.append(
            {
                "id": block.id,
                "type": "function",
                "function": {"name": block.name, "arguments": arguments},
            }
        )

    def _result(self, turn: _Turn, block: ToolResultBlock, param: str) -> None:
        if turn.role != "user":
            raise InvalidRequestError(
                "tool_result blocks belong to user messages.", param=f"{param}.type"
            )
        if block.tool_use_id not in self.called:
            raise InvalidRequestError(
                f"This tool_result answers tool_use_id '{block.tool_use_id}', which no earlier "
                "assistant message used.",
                param=f"{param}.tool_use_id",
            )
        text = block.text()
        check_text(text, self.settings, param=f"{param}.content")
        if block.is_error:
            text = f"Error: {text}"
        turn.results.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": text})


def _messages_of(turn: _Turn) -> list[dict[str, Any]]:
    text = BLOCK_SEPARATOR.join(turn.texts)
    if turn.role == "assistant":
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if turn.calls:
            message["tool_calls"] = turn.calls
        return [message]
    if turn.results and not turn.texts:
        return list(turn.results)
    return [*turn.results, {"role": turn.role, "content": text}]


def conversation(request: ConversationRequest, settings: Settings) -> Conversation:
    """The request's system text and messages as chat-template messages (see the module)."""
    check_count(len(request.messages), settings.max_messages, what="messages", param="messages")
    system = system_text(request)
    check_text(system, settings, param="system")
    reader = _Reader(settings)
    for i, message in enumerate(request.messages):
        reader.read(i, message)
    turns = reader.turns
    last = turns[-1]
    if last.role == "assistant" and not (last.texts or last.calls):
        turns = turns[:-1]  # nothing of it is in the prompt: the answer is a new turn
    prefill = turns[-1].role == "assistant" and not turns[-1].calls if turns else False
    if system and turns and turns[0].role == "system":
        turns[0].texts.insert(0, system)  # one system turn, as templates expect
    elif system:
        turns.insert(0, _Turn("system", [system]))
    messages: list[dict[str, Any]] = []
    for turn in turns:
        messages.extend(_messages_of(turn))
    return Conversation(messages, prefill)
