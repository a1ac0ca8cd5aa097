"""Anthropic's Messages API (`/v1/messages`, `/v1/messages/count_tokens`): the request models,
every field the official `anthropic` SDK can send (2.12 to 2.17), either honoured or accepted
at a value that changes nothing here; anything else is a 400 that names it.

Server tools (typed `tools` entries such as web search) are refused with a 400 naming
`tools.N.type`. The messages and their content blocks are in
`service/schemas/anthropic_content.py`, the response models in
`service/schemas/anthropic_response.py`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from service.schemas.anthropic_content import (
    NO_CODE_EXECUTION,
    NO_SKILLS,
    NO_TOOL_SEARCH,
    CacheControl,
    InputMessage,
    TextBlock,
    screen_blocks,
    screen_messages,
    unsupported,
)
from service.schemas.common import MAX_INT32, MAX_STOP, NonEmptyStr, RequestModel, screen_json

# Anthropic's rule for tool names.
ToolName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[a-zA-Z0-9_-]+$")]


class Tool(RequestModel):
    """A client tool: a name and the JSON schema of its input."""

    name: ToolName
    input_schema: dict[str, Any]
    description: str | None = None
    type: Literal["custom"] | None = None
    cache_control: CacheControl | None = None
    # Under `any` and `tool` the input is generated under the schema whatever this says.
    strict: bool | None = None
    # How the input streams: here always as it is generated.
    eager_input_streaming: bool | None = None
    # Shown to the model with the description.
    input_examples: list[dict[str, Any]] | None = None
    defer_loading: Literal[False] | None = None
    allowed_callers: list[Literal["direct"]] | None = None

    @field_validator("defer_loading", mode="before")
    @classmethod
    def _loaded(cls, value: Any) -> Any:
        if value is True:
            raise unsupported(NO_TOOL_SEARCH)
        return value

    @field_validator("allowed_callers", mode="before")
    @classmethod
    def _direct_only(cls, value: Any) -> Any:
        if isinstance(value, list) and any(caller != "direct" for caller in value):
            raise unsupported(NO_CODE_EXECUTION)
        return value


class ToolChoiceAuto(RequestModel):
    type: Literal["auto"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceAny(RequestModel):
    type: Literal["any"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceTool(RequestModel):
    type: Literal["tool"]
    name: NonEmptyStr
    disable_parallel_tool_use: bool | None = None


class ToolChoiceNone(RequestModel):
    type: Literal["none"]


ToolChoice = Annotated[
    ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool | ToolChoiceNone, Field(discriminator="type")
]

ThinkingDisplay = Literal["summarized", "omitted"]


class ThinkingEnabled(RequestModel):
    type: Literal["enabled"]
    budget_tokens: int = Field(..., ge=1024, le=MAX_INT32)
    display: ThinkingDisplay | None = None


class ThinkingDisabled(RequestModel):
    type: Literal["disabled"]


class ThinkingAdaptive(RequestModel):
    type: Literal["adaptive"]
    display: ThinkingDisplay | None = None


class ThinkingBetweenTools(RequestModel):
    type: Literal["between_tools"]


Thinking = Annotated[
    ThinkingEnabled | ThinkingDisabled | ThinkingAdaptive | ThinkingBetweenTools,
    Field(discriminator="type"),
]


class JsonOutputFormat(RequestModel):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(..., alias="schema")


class OutputConfig(RequestModel):
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None  # ignored
    format: JsonOutputFormat | None = None


class Metadata(RequestModel):
    user_id: str | None = None


class Diagnostics(RequestModel):
    previous_message_id: str | None = None


class Skill(RequestModel):
    skill_id: str
    type: Literal["anthropic", "custom"]
    version: str | None = None


class Container(RequestModel):
    """Code execution's container: nothing runs in one here, so only one without skills."""

    id: str | None = None
    skills: list[Skill] | None = None

    @field_validator("skills", mode="before")
    @classmethod
    def _no_skills(cls, value: Any) -> Any:
        if value:
            raise unsupported(NO_SKILLS)
        return value


def _screen_tools(tools: Any) -> None:
    if not isinstance(tools, list):
        return
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind is not None and kind != "custom":
            raise PydanticCustomError(
                "unsupported_parameter",
                "Server tools are not supported: this server offers client tools only (a tool "
                "with an input_schema and no type, or type 'custom'); got type '{kind}'.",
                {"kind": str(kind), "param": f"tools.{i}.type"},
            )


class ConversationRequest(RequestModel):
    """What `/v1/messages` and its `count_tokens` share: the model and everything the prompt is
    made of. Refused block and tool types are screened first, each 400 naming where it is."""

    @model_validator(mode="before")
    @classmethod
    def _screen(cls, data: Any) -> Any:
        if isinstance(data, dict):
            screen_json(data)
            screen_blocks(data.get("system"), "system", allowed=frozenset({"text"}))
            screen_messages(data.get("messages"))
            _screen_tools(data.get("tools"))
        return data

    model: NonEmptyStr
    messages: list[InputMessage] = Field(..., min_length=1)
    system: str | list[TextBlock] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    output_config: OutputConfig | None = None
    # Accepted and ignored: none changes what is generated here.
    cache_control: CacheControl | None = None
    speed: Literal["standard", "fast"] | None = None
    user_profile_id: str | None = None
    workspace_id: str | None = None

    @model_validator(mode="after")
    def _choice_needs_tools(self) -> ConversationRequest:
        choice = self.tool_choice
        if isinstance(choice, ToolChoiceAny | ToolChoiceTool) and not self.tools:
            raise PydanticCustomError(
                "value_error",
                "tool_choice '{kind}' needs tools.",
                {"kind": choice.type, "param": "tool_choice"},
            )
        return self


class MessagesRequest(ConversationRequest):
    # A ceiling: clamped to the room the prompt leaves in the context. 0 runs the prompt
    # (which fills the prefix cache) and generates nothing.
    max_tokens: int = Field(..., ge=0, le=MAX_INT32)
    stop_sequences: list[NonEmptyStr] | None = Field(None, max_length=MAX_STOP)
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=1.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0, le=MAX_INT32)
    metadata: Metadata | None = None
    # Accepted and ignored.
    container: str | Container | None = None
    diagnostics: Diagnostics | None = None
    inference_geo: str | None = None
    service_tier: Literal["auto", "standard_only"] | None = None

    @model_validator(mode="after")
    def _budget_under_max_tokens(self) -> MessagesRequest:
        thinking = self.thinking
        if isinstance(thinking, ThinkingEnabled) and thinking.budget_tokens >= self.max_tokens:
            raise PydanticCustomError(
                "value_error",
                "thinking.budget_tokens must be less than max_tokens.",
                {"param": "thinking.budget_tokens"},
            )
        return self


class CountTokensRequest(ConversationRequest):
    """`/v1/messages/count_tokens`: the prompt `/v1/messages` would run, without generating."""
