"""`/v1/responses` request and response models (OpenAI's Responses API wire format)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator
from pydantic_core import PydanticCustomError

from service.schemas.common import NonEmptyStr, RequestModel, Timeout, TokenCount, screen_json
from service.schemas.tools import FunctionName


class InputText(RequestModel):
    type: Literal["input_text", "output_text"]
    text: str
    model_config = ConfigDict(extra="ignore")  # output_text carries annotations, logprobs


class MessageItem(RequestModel):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[InputText]
    id: str | None = None
    status: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class FunctionCallItem(RequestModel):
    type: Literal["function_call"]
    call_id: NonEmptyStr
    name: str
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(RequestModel):
    type: Literal["function_call_output"]
    call_id: NonEmptyStr
    output: str
    id: str | None = None
    status: str | None = None


class ReasoningItem(RequestModel):
    """Earlier reasoning sent back (an earlier response's output): accepted, and left out of the
    prompt, as reasoning models' chat templates leave earlier thoughts out."""

    type: Literal["reasoning"]
    id: str | None = None
    summary: list[Any] = Field(default_factory=list)
    content: list[Any] | None = None
    encrypted_content: str | None = None
    status: str | None = None


def _item_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("type", "message")  # OpenAI's "easy" message has no type
        return kind if isinstance(kind, str) else None
    return None


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[ReasoningItem, Tag("reasoning")],
    Discriminator(
        _item_kind,
        custom_error_type="unsupported_parameter",
        custom_error_message="Input items may be messages, function_call, "
        "function_call_output or reasoning items.",
    ),
]


class ResponsesFunctionTool(RequestModel):
    type: Literal["function"]
    name: FunctionName
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedFunctionChoice(RequestModel):
    type: Literal["function"]
    name: FunctionName


class TextFormat(RequestModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(RequestModel):
    model_config = ConfigDict(extra="ignore")  # verbosity
    format: TextFormat | None = None


class ConversationRef(RequestModel):
    id: NonEmptyStr


class ResponsesRequest(RequestModel):
    """The fields of `POST /v1/responses` this server implements; the rest are 400s."""

    _ignored: ClassVar[frozenset[str]] = frozenset(
        {"user", "service_tier", "safety_identifier", "prompt_cache_key", "include"}
    )

    model: NonEmptyStr
    input: str | list[InputItem]
    instructions: str | None = None
    tools: list[ResponsesFunctionTool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedFunctionChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    max_output_tokens: TokenCount | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stream: bool = False
    store: bool = True
    previous_response_id: str | None = None
    conversation: NonEmptyStr | ConversationRef | None = None
    background: bool = False
    metadata: dict[str, str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    timeout: Timeout = None

    @property
    def conversation_id(self) -> str | None:
        if isinstance(self.conversation, ConversationRef):
            return self.conversation.id
        return self.conversation

    @model_validator(mode="after")
    def _check(self) -> ResponsesRequest:
        if self.background and not self.store:
            raise PydanticCustomError(
                "value_error",
                "background responses must be stored: background requires store to be true.",
                {"param": "background"},
            )
        if self.conversation is not None and self.previous_response_id is not None:
            raise PydanticCustomError(
                "value_error",
                "conversation and previous_response_id cannot be used together.",
                {"param": "conversation"},
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _screen(cls, data: Any) -> Any:
        if isinstance(data, dict):
            screen_json(data)
            data = {k: v for k, v in data.items() if k not in cls._ignored}
            for key in ("reasoning", "prompt", "top_logprobs"):
                if data.get(key) is not None:
                    raise PydanticCustomError(
                        "unsupported_parameter",
                        "'{param}' is not supported by this server.",
                        {"param": key},
                    )
                data.pop(key, None)
        return data


class OutputText(BaseModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[Any] = Field(default_factory=list)


class OutputMessage(BaseModel):
    type: Literal["message"] = "message"
    id: str
    status: Literal["in_progress", "completed", "incomplete"] = "completed"
    role: Literal["assistant"] = "assistant"
    content: list[OutputText]


class OutputFunctionCall(BaseModel):
    type: Literal["function_call"] = "function_call"
    id: str
    call_id: str
    name: str
    arguments: str
    status: Literal["in_progress", "completed", "incomplete"] = "completed"


class ReasoningText(BaseModel):
    type: Literal["reasoning_text"] = "reasoning_text"
    text: str


class OutputReasoning(BaseModel):
    type: Literal["reasoning"] = "reasoning"
    id: str
    summary: list[Any] = Field(default_factory=list)
    content: list[ReasoningText]
    status: Literal["in_progress", "completed", "incomplete"] = "completed"


OutputItem = OutputMessage | OutputFunctionCall | OutputReasoning


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int


class IncompleteDetails(BaseModel):
    reason: Literal["max_output_tokens", "content_filter"]


class ResponseError(BaseModel):
    """Why a response failed (`status: failed`): OpenAI's error code and a message."""

    code: str
    message: str


class ConversationOfResponse(BaseModel):
    id: str


ResponseStatus = Literal["queued", "in_progress", "completed", "incomplete", "failed", "cancelled"]


class Response(BaseModel):
    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: ResponseStatus
    background: bool = False
    conversation: ConversationOfResponse | None = None
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    model: str
    output: list[OutputItem]
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    tool_choice: Any = "auto"
    tools: list[dict[str, Any]] = Field(default_factory=list)
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}})
    truncation: Literal["auto", "disabled"] = "disabled"
    store: bool = True
    metadata: dict[str, str] = Field(default_factory=dict)
    usage: ResponseUsage | None = None


class DeletedResponse(BaseModel):
    id: str
    object: Literal["response.deleted"] = "response.deleted"
    deleted: bool = True


class ResponseItemList(BaseModel):
    """A page of items (OpenAI's `ResponseItemList`): a stored response's input items, and the
    shape of a conversation's items too."""

    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool

    @classmethod
    def page(cls, items: list[dict[str, Any]], *, has_more: bool) -> Self:
        return cls(
            data=items,
            first_id=items[0]["id"] if items else None,
            last_id=items[-1]["id"] if items else None,
            has_more=has_more,
        )
