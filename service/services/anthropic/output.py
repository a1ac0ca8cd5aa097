"""One output sequence as Anthropic's answer: its content blocks and its stop reason.

The output is read by the tool plan's reader (`service/services/tools/reader.py`): reasoning
split off when a reasoning parser is set, calls read by the tool mode. Its `Outcome` maps to
Anthropic's `stop_reason`, the first that holds:

- cut at max_tokens: `max_tokens`, or `model_context_window_exceeded` when max_tokens was
  clamped to the context;
- one or more calls: `tool_use` (a named `tool` choice too);
- ended at a stop sequence: `stop_sequence`, with `stop_sequence` set;
- anything else: `end_turn`.

A cut call is returned as far as it got: its input is the JSON read in partial mode, as the
SDK's stream accumulator reads the streamed `input_json_delta`s, so a whole answer and a
streamed one hold the same input.
"""

from __future__ import annotations

import secrets
from typing import Any

from pydantic_core import from_json

from service.engine.base import Engine
from service.schemas.anthropic_response import (
    Content,
    Message,
    StopReason,
    TextContent,
    ThinkingContent,
    ToolUseContent,
    Usage,
)
from service.services.anthropic.prepare import PreparedMessages
from service.services.core.generation import SequenceResult
from service.services.tools import Outcome


def tool_use_id() -> str:
    return f"toolu_{secrets.token_hex(12)}"


def signature() -> str:
    """A thinking block's signature. Anthropic's signs the thinking for its own checks; these
    are opaque tokens that clients pass back and this server ignores (as vLLM's do)."""
    return secrets.token_urlsafe(32)


def tool_input(arguments: str) -> dict[str, Any]:
    """A call's input from its argument text (partial JSON of a cut call as far as it parses)."""
    if not arguments.strip():
        return {}
    try:
        value = from_json(arguments, allow_partial=True)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def stop_reason(
    prepared: PreparedMessages, outcome: Outcome, engine_stop: int | str | None
) -> tuple[StopReason, str | None]:
    """(stop_reason, stop_sequence) of an output (see the module's table)."""
    if outcome.cut:
        return ("model_context_window_exceeded" if prepared.clamped else "max_tokens"), None
    if outcome.calls:
        return "tool_use", None
    if isinstance(engine_stop, str):
        return "stop_sequence", engine_stop
    return "end_turn", None


def _content(prepared: PreparedMessages, outcome: Outcome) -> list[Content]:
    content: list[Content] = []
    if outcome.reasoning and prepared.thinking != "none":
        thought = outcome.reasoning if prepared.thinking == "full" else ""
        content.append(ThinkingContent(thinking=thought, signature=signature()))
    if outcome.text:
        content.append(TextContent(text=outcome.text))
    for call in outcome.calls:
        content.append(
            ToolUseContent(id=tool_use_id(), name=call.name, input=tool_input(call.arguments))
        )
    return content or [TextContent(text="")]


def message(
    prepared: PreparedMessages, engine: Engine, seq: SequenceResult, input_tokens: int
) -> Message:
    """The whole answer of one finished output sequence."""
    usage = Usage(input_tokens=input_tokens, output_tokens=len(seq.token_ids))
    if prepared.prefill_only:
        usage.output_tokens = 0  # its one token ran only to put the prompt through
        return Message(
            id=prepared.id, content=[], model=prepared.model, stop_reason="max_tokens", usage=usage
        )
    reader = prepared.tools.reader(engine, reasoning=prepared.reasoning)
    outcome = reader.read_whole(seq.text, seq.token_ids, seq.finish_reason)
    reason, sequence = stop_reason(prepared, outcome, seq.stop_reason)
    return Message(
        id=prepared.id,
        content=_content(prepared, outcome),
        model=prepared.model,
        stop_reason=reason,
        stop_sequence=sequence,
        usage=usage,
    )
