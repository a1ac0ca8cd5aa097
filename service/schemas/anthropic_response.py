"""Anthropic's Messages API: the answer (`Message`, its content blocks and usage), the token
count and the error body, as the official `anthropic` SDK reads them. Streams send the same
blocks piece by piece (`service/services/anthropic/events.py`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

StopReason = Literal[
    "end_turn", "max_tokens", "stop_sequence", "tool_use", "model_context_window_exceeded"
]


class TextContent(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ThinkingContent(BaseModel):
    type: Literal["thinking"] = "thinking"
    thinking: str
    signature: str


class ToolUseContent(BaseModel):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any]


Content = Annotated[TextContent | ThinkingContent | ToolUseContent, Field(discriminator="type")]


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int


class Message(BaseModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    content: list[Content]
    model: str
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: Usage


class TokenCount(BaseModel):
    """`/v1/messages/count_tokens`: the prompt's tokens, tools and system included."""

    input_tokens: int


class ErrorObject(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    """Every error of these routes (`service/http/encode.py` writes them)."""

    type: Literal["error"] = "error"
    error: ErrorObject
    request_id: str | None = None
