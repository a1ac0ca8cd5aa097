"""Engine output as the pieces of OpenAI's chat wire format: logprobs, tool-call ids and
deltas, the delta message of a streamed step, and a chunk's event JSON."""

from __future__ import annotations

import secrets

from service.engine.base import ParsedDelta, TokenLogprob, ToolCallFragment
from service.schemas.chat import (
    ChatCompletionChunk,
    ChoiceLogprobs,
    DeltaMessage,
    TokenLogprobEntry,
    TopLogprob,
)
from service.schemas.tools import DeltaFunctionCall, DeltaToolCall


def choice_logprobs(entries: list[TokenLogprob]) -> ChoiceLogprobs:
    return ChoiceLogprobs(
        content=[
            TokenLogprobEntry(
                token=e.token,
                logprob=e.logprob,
                bytes=list(e.token.encode()),
                top_logprobs=[
                    TopLogprob(token=text, logprob=lp, bytes=list(text.encode()))
                    for _, text, lp in e.top
                ],
            )
            for e in entries
        ]
    )


def call_id() -> str:
    """OpenAI's tool-call id."""
    return f"call_{secrets.token_hex(12)}"


def delta_message(parsed: ParsedDelta) -> DeltaMessage:
    if parsed.reasoning is None and not parsed.tool_calls:
        return DeltaMessage(content=parsed.content)  # most steps: text only
    return DeltaMessage(
        content=parsed.content,
        reasoning=parsed.reasoning,
        tool_calls=tool_deltas(parsed.tool_calls),
    )


def tool_deltas(pieces: tuple[ToolCallFragment, ...]) -> list[DeltaToolCall] | None:
    """OpenAI's pieces: a call's first (the one with its name) carries id, type and name; the
    rest only arguments."""
    if not pieces:
        return None
    return [
        DeltaToolCall(
            index=piece.index,
            id=call_id() if piece.name is not None else None,
            type="function" if piece.name is not None else None,
            function=DeltaFunctionCall(name=piece.name, arguments=piece.arguments),
        )
        for piece in pieces
    ]


def event_json(chunk: ChatCompletionChunk) -> str:
    """A chunk as its SSE event's JSON (`usage` only on the usage chunk)."""
    if chunk.usage is None:
        return chunk.model_dump_json(exclude={"usage"})
    return chunk.model_dump_json()
