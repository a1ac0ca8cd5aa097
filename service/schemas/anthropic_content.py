"""Anthropic's Messages API: the messages and their content blocks, as the official `anthropic`
SDK sends them (`service/schemas/anthropic.py` holds the requests around them).

Text, tool_use, tool_result, thinking and redacted_thinking blocks are taken; image and
document blocks are refused with a 400 saying the model reads text only, and the blocks only
server tools make (`server_tool_use`, `web_search_tool_result`, ...) with a 400 naming their
`type` (`screen_messages`, run before the models validate).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Tag, field_validator
from pydantic_core import PydanticCustomError

from service.schemas.common import NonEmptyStr, RequestModel, one_or_many

# What code execution, tool search, toolsets and skills would use: not offered here, so only the
# values that mean none of them are accepted.
NO_CODE_EXECUTION = "Code execution is not offered here: only direct calls."
NO_TOOL_SEARCH = "Tool search is not offered here: every tool is loaded."
NO_TOOLSETS = "Toolsets are not offered here."
NO_SKILLS = "Skills run in code execution, which is not offered here."


def unsupported(message: str) -> PydanticCustomError:
    return PydanticCustomError("unsupported_parameter", message)


class CacheControl(RequestModel):
    """Prompt-caching breakpoints: accepted and ignored (vLLM's prefix cache needs none)."""

    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] | None = None


class TextBlock(RequestModel):
    type: Literal["text"]
    text: str
    cache_control: CacheControl | None = None
    citations: list[dict[str, Any]] | None = None  # earlier answers' citations: ignored


class ThinkingBlock(RequestModel):
    """Earlier thinking: accepted and left out of the prompt, as Anthropic's models do."""

    type: Literal["thinking"]
    thinking: str
    signature: str


class RedactedThinkingBlock(RequestModel):
    type: Literal["redacted_thinking"]
    data: str


class DirectCaller(RequestModel):
    type: Literal["direct"]


class ToolUseBlock(RequestModel):
    """An earlier call of the assistant's."""

    type: Literal["tool_use"]
    id: NonEmptyStr
    name: NonEmptyStr
    input: dict[str, Any]
    cache_control: CacheControl | None = None
    caller: DirectCaller | None = None
    toolset_name: None = None

    @field_validator("caller", mode="before")
    @classmethod
    def _direct(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("type") != "direct":
            raise unsupported(NO_CODE_EXECUTION)
        return value

    @field_validator("toolset_name", mode="before")
    @classmethod
    def _no_toolset(cls, value: Any) -> Any:
        if value is not None:
            raise unsupported(NO_TOOLSETS)
        return value


class ToolResultBlock(RequestModel):
    """The user's answer to a call: text, or text blocks; `is_error` marks a failed call."""

    type: Literal["tool_result"]
    tool_use_id: NonEmptyStr
    content: str | list[TextBlock] | None = None
    is_error: bool | None = None
    cache_control: CacheControl | None = None
    toolset_name: None = None

    @field_validator("toolset_name", mode="before")
    @classmethod
    def _no_toolset(cls, value: Any) -> Any:
        if value is not None:
            raise unsupported(NO_TOOLSETS)
        return value

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "\n\n".join(block.text for block in self.content)


_BLOCK_CLASSES: dict[str, type[RequestModel]] = {
    "text": TextBlock,
    "thinking": ThinkingBlock,
    "redacted_thinking": RedactedThinkingBlock,
    "tool_use": ToolUseBlock,
    "tool_result": ToolResultBlock,
}


def _block_class(value: Any) -> str | None:
    """The tag of a block's class: its name, so that an error's location never reads as one of
    the block's fields (a text block's tag `text` would)."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    cls = _BLOCK_CLASSES.get(kind) if isinstance(kind, str) else None
    return cls.__name__ if cls is not None else None


ContentBlock = Annotated[
    Annotated[TextBlock, Tag("TextBlock")]
    | Annotated[ThinkingBlock, Tag("ThinkingBlock")]
    | Annotated[RedactedThinkingBlock, Tag("RedactedThinkingBlock")]
    | Annotated[ToolUseBlock, Tag("ToolUseBlock")]
    | Annotated[ToolResultBlock, Tag("ToolResultBlock")],
    Discriminator(
        _block_class,
        custom_error_type="block_type",
        custom_error_message="A content block needs a 'type' (text, tool_use, tool_result, ...)",
    ),
]
# A string, or blocks: tagged, so that an error names the block rather than "not a string".
Content = Annotated[
    Annotated[str, Tag("one")] | Annotated[list[ContentBlock], Tag("many")],
    Discriminator(
        one_or_many,
        custom_error_type="content_type",
        custom_error_message="Input should be a string or a list of content blocks",
    ),
]


class InputMessage(RequestModel):
    # A `system` message is what the SDK's MessageParam allows besides user and assistant.
    role: Literal["user", "assistant", "system"]
    content: Content

    def blocks(self) -> list[ContentBlock]:
        if isinstance(self.content, str):
            return [TextBlock(type="text", text=self.content)]
        return self.content


# Block types Anthropic's API takes that this server refuses: the model reads text only, and
# server tools (with their result blocks) are not offered.
_TEXT_ONLY = frozenset({"image", "document"})
_BLOCK_TYPES = frozenset({"text", "tool_use", "tool_result", "thinking", "redacted_thinking"})


def _refused_block(kind: Any, param: str, *, allowed: frozenset[str]) -> None:
    """A 400 for a block whose type is not among `allowed` (a missing type is pydantic's)."""
    if not isinstance(kind, str) or kind in allowed:
        return
    if kind in _TEXT_ONLY:
        raise PydanticCustomError(
            "unsupported_parameter",
            "This model takes text only: '{kind}' blocks are not supported.",
            {"kind": kind, "param": param},
        )
    raise PydanticCustomError(
        "unsupported_parameter",
        "Content blocks of type '{kind}' are not supported here (supported: {allowed}).",
        {"kind": kind, "allowed": ", ".join(sorted(allowed)), "param": f"{param}.type"},
    )


def screen_blocks(blocks: Any, param: str, *, allowed: frozenset[str]) -> None:
    if not isinstance(blocks, list):
        return
    for j, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        where = f"{param}.{j}"
        _refused_block(block.get("type"), where, allowed=allowed)
        if block.get("type") == "tool_result":
            screen_blocks(block.get("content"), f"{where}.content", allowed=frozenset({"text"}))


def screen_messages(messages: Any) -> None:
    """Each message's blocks: a 400 for a refused type, naming where it is."""
    if not isinstance(messages, list):
        return
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        allowed = frozenset({"text"}) if message.get("role") == "system" else _BLOCK_TYPES
        screen_blocks(message.get("content"), f"messages.{i}.content", allowed=allowed)
