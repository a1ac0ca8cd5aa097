"""`/v1/chat/completions` request and response models (OpenAI wire format)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from service.schemas.common import (
    IGNORED_FIELDS,
    ROUTER_ONLY_CHAT_FIELDS,
    OpenAIRequest,
    RequestModel,
    TokenCount,
    Usage,
)
from service.schemas.tools import DeltaToolCall, FunctionTool, ToolCall, ToolCallIn, ToolChoice


class TextPart(RequestModel):
    type: str
    text: str | None = None

    @field_validator("type")
    @classmethod
    def _text_only(cls, value: str) -> str:
        if value != "text":
            raise PydanticCustomError(
                "unsupported_parameter",
                "Content parts of type '{kind}' are not supported: this model takes text only.",
                {"kind": value},
            )
        return value


Content = str | list[TextPart]


class _Message(RequestModel):
    name: str | None = None

    def text(self) -> str:
        content: Content | None = getattr(self, "content", None)
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        return "".join(part.text or "" for part in content)


class SystemMessage(_Message):
    role: Literal["system", "developer"]
    content: Content


class UserMessage(_Message):
    role: Literal["user"]
    content: Content


class AssistantMessage(_Message):
    role: Literal["assistant"]
    content: Content | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    # Earlier reasoning, as vLLM (`reasoning`) and others (`reasoning_content`) send it back;
    # accepted and left out of the prompt, as reasoning models' templates do.
    reasoning: str | None = None
    reasoning_content: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_legacy_calls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("function_call", "audio"):
                if data.get(key) is not None:
                    raise PydanticCustomError(
                        "unsupported_parameter",
                        "'{param}' in assistant messages is not supported by this server.",
                        {"param": key},
                    )
            data = {k: v for k, v in data.items() if k not in ("function_call", "audio")}
        return data


class ToolMessage(_Message):
    role: Literal["tool"]
    content: Content
    tool_call_id: str = Field(..., min_length=1)


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]


class JsonSchemaFormat(RequestModel):
    # OpenAI's fields; others are accepted and ignored, as OpenAI does.
    model_config = ConfigDict(extra="ignore")
    name: str = Field(..., min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(RequestModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise PydanticCustomError(
                "value_error",
                "response_format.json_schema is required when type is 'json_schema'.",
                {"param": "response_format.json_schema"},
            )
        return self


class ChatCompletionRequest(OpenAIRequest):
    _ignored: ClassVar[frozenset[str]] = IGNORED_FIELDS - {"parallel_tool_calls"}
    _unsupported: ClassVar[frozenset[str]] = frozenset(
        {
            "functions",
            "function_call",
            "audio",
            "prediction",
            "web_search_options",
            "reasoning_effort",
        }
    )
    _router_only: ClassVar[dict[str, tuple[bool, ...]]] = ROUTER_ONLY_CHAT_FIELDS

    messages: list[Message] = Field(..., min_length=1)
    max_completion_tokens: TokenCount | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    modalities: list[Literal["text"]] | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    # vLLM's chat-template fields: open the assistant's turn (the default), or continue the
    # final (assistant) message instead, e.g. to prefill the start of a reply.
    add_generation_prompt: bool = True
    continue_final_message: bool = False
    # vLLM's: whether a reasoning parser's output (`reasoning_parser`) is returned.
    include_reasoning: bool = True

    @model_validator(mode="after")
    def _check(self) -> ChatCompletionRequest:
        if self.tool_choice is not None and self.tool_choice != "none" and not self.tools:
            raise PydanticCustomError(
                "value_error",
                "tool_choice is only allowed when tools are given.",
                {"param": "tool_choice"},
            )
        if self.top_logprobs is not None and not self.logprobs:
            raise PydanticCustomError(
                "value_error",
                "top_logprobs requires logprobs to be true.",
                {"param": "top_logprobs"},
            )
        if self.continue_final_message:
            if self.add_generation_prompt:
                raise PydanticCustomError(
                    "value_error",
                    "continue_final_message and add_generation_prompt cannot both be true.",
                    {"param": "continue_final_message"},
                )
            if self.messages[-1].role != "assistant":
                raise PydanticCustomError(
                    "value_error",
                    "continue_final_message needs the last message to be the assistant's.",
                    {"param": "continue_final_message"},
                )
        return self

    @property
    def token_limit(self) -> int | None:
        # max_completion_tokens is the newer OpenAI name; either is honoured.
        return self.max_completion_tokens or self.max_tokens


class ChatMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    reasoning: str | None = Field(None, exclude_if=lambda v: v is None)
    tool_calls: list[ToolCall] = Field(default_factory=list, exclude_if=lambda v: not v)


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprobEntry(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprobEntry] | None = None


FinishReason = Literal["stop", "length", "abort", "tool_calls"]


class ChatChoice(BaseModel):
    index: int
    message: ChatMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason | None = None
    stop_reason: int | str | None = None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = Field(None, exclude_if=lambda v: v is None)
    content: str | None = None
    reasoning: str | None = Field(None, exclude_if=lambda v: v is None)
    tool_calls: list[DeltaToolCall] | None = Field(None, exclude_if=lambda v: v is None)


class ChatChunkChoice(BaseModel):
    index: int
    delta: DeltaMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason | None = None
    stop_reason: int | str | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
