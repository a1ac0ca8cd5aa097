"""Request and response models of the task API: /v1/generate, /v1/summarize, /v1/classify, /v1/chat.

These shapes are a contract shared with the client SDK and the load tests. Every task answers
with one envelope, `TaskResponse`: `results[]` holds one entry per input text (each with its
`index`), and `usage` counts every token the engine processed for the request. `generate` and
`chat` also stream: SSE events carrying `TaskChunk`s, then `data: [DONE]`.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator
from pydantic_core import PydanticCustomError

from service.schemas.common import (
    MAX_INT32,
    Int64,
    NonEmptyStr,
    NonNegativeCount,
    RequestModel,
    Stop,
    Timeout,
    TokenCount,
    Usage,
    one_or_many,
    screen_json,
)

NonEmptyText = NonEmptyStr
FinishReason = Literal["stop", "length"]
StopField = Stop


def _one_of(data: Any, single: str, batch: str) -> None:
    """Exactly one of a single input (`text`) and a batch (`texts`)."""
    if not isinstance(data, dict):
        return
    has_single, has_batch = data.get(single) is not None, data.get(batch) is not None
    if has_single == has_batch:
        raise PydanticCustomError(
            "value_error",
            "Give exactly one of '{single}' and '{batch}'.",
            {"single": single, "batch": batch, "param": single},
        )


class TaskRequest(RequestModel):
    model: NonEmptyStr | None = Field(None, description="Defaults to the served model.")
    timeout: Timeout = None

    @model_validator(mode="before")
    @classmethod
    def _screen(cls, data: Any) -> Any:
        if isinstance(data, dict):
            screen_json(data)
        return data


# --------------------------------------------------------------------------- generate
class GenerateRequest(TaskRequest):
    """Free text generation with Hugging Face `generate` semantics and names."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"prompt": "Once upon a time", "max_new_tokens": 40, "do_sample": False}]
        },
    )
    prompt: NonEmptyText | None = None
    prompts: list[NonEmptyText] | None = Field(None, min_length=1)
    stream: bool = False
    max_new_tokens: TokenCount | None = None
    max_length: TokenCount | None = Field(None, description="Prompt plus new tokens, as in HF.")
    min_new_tokens: NonNegativeCount | None = None
    min_length: NonNegativeCount | None = Field(
        None, description="Prompt plus new tokens, as in HF."
    )
    do_sample: bool = False
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_k: int = Field(50, ge=0, le=MAX_INT32)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    repetition_penalty: float = Field(1.0, gt=0.0, le=10.0)
    no_repeat_ngram_size: int = Field(
        0,
        ge=0,
        le=32,
        description="No n-gram of this size twice in the output (0 = off). Servers may turn it "
        "off (setting no_repeat_ngram; by default off on GPUs): then 400.",
    )
    num_beams: int = Field(1, ge=1, le=16)
    # Beam scores divide by length**length_penalty: beyond +-10 that overflows a float.
    length_penalty: float = Field(1.0, ge=-10.0, le=10.0)
    early_stopping: bool | Literal["never"] = False
    num_return_sequences: int = Field(1, ge=1, le=16)
    stop: StopField = None
    seed: Int64 | None = None
    language: str | None = Field(
        None,
        max_length=64,
        description="Keep the generated text in this language's writing system (a code such as "
        "zh, or a name): decoded under a structured-output constraint that allows only that "
        "script, digits, punctuation and Latin runs of at most 3 words. Not with num_beams > 1.",
    )

    @model_validator(mode="before")
    @classmethod
    def _single_or_batch(cls, data: Any) -> Any:
        _one_of(data, "prompt", "prompts")
        return data


class Generation(BaseModel):
    text: str
    finish_reason: FinishReason
    num_tokens: int
    score: float | None = Field(
        None,
        description="Beam search only: Hugging Face's `sequences_scores`, the sum of the "
        "generated tokens' log-probabilities over (generated tokens) ** length_penalty.",
    )


class GenerateResult(BaseModel):
    index: int
    generations: list[Generation]
    prompt_tokens: int


# --------------------------------------------------------------------------- summarize
class SummarizeRequest(TaskRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "The city council met on Tuesday ...", "style": "bullets"}]
        },
    )
    text: NonEmptyText | None = None
    texts: list[NonEmptyText] | None = Field(None, min_length=1)
    max_length: TokenCount | None = Field(None, description="Most summary tokens.")
    min_length: NonNegativeCount | None = Field(None, description="Fewest summary tokens.")
    style: Literal["paragraph", "bullets", "headline"] = "paragraph"
    language: str | None = Field(None, max_length=64, description="Language of the summary.")
    focus: str | None = Field(None, max_length=500, description="What the summary should stress.")

    @model_validator(mode="before")
    @classmethod
    def _single_or_batch(cls, data: Any) -> Any:
        _one_of(data, "text", "texts")
        return data


class SummarizeResult(BaseModel):
    index: int
    summary: str
    finish_reason: FinishReason
    summary_tokens: int
    chunks: int = Field(description="Input chunks summarized (1 when the text fit the context).")
    depth: int = Field(description="Map-reduce levels (0 when the text fit the context).")
    truncated: bool = Field(
        False,
        description="The summary reached max_length: it was cut back to its last complete "
        "sentence (bullets: its last complete bullet) unless that fell below min_length.",
    )
    language_mismatch: bool = Field(
        False,
        description="The summary is in another script than the language asked for (or the "
        "text's), even after a retry with a stronger instruction and one under a constraint "
        "that allows only that script.",
    )


# --------------------------------------------------------------------------- classify
LabelPreset = Literal["sentiment", "news_topic", "customer_intent"]


def _labels_kind(value: Any) -> str | None:
    return {"one": "preset", "many": "labels", None: None}[one_or_many(value)]


# A preset's name or a list of labels; the discriminator makes a bad label's error name it
# (`labels.1`) instead of complaining that the list is not a preset.
Labels = Annotated[
    Annotated[LabelPreset, Tag("preset")] | Annotated[list[NonEmptyText], Tag("labels")],
    Discriminator(
        _labels_kind,
        custom_error_type="labels_type",
        custom_error_message="Input should be a preset's name or a list of labels",
    ),
]


class LabelledExample(RequestModel):
    text: NonEmptyText
    label: NonEmptyText


class ClassifyRequest(TaskRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": "I love this phone!", "labels": "sentiment"}]},
    )
    text: NonEmptyText | None = None
    texts: list[NonEmptyText] | None = Field(None, min_length=1)
    labels: Labels
    label_descriptions: dict[str, str] | None = None
    examples: list[LabelledExample] | None = Field(None, max_length=32)
    multi_label: bool = False
    language: str | None = Field(
        None,
        max_length=64,
        description="The texts' language (a code such as en or zh, or a name): picks the "
        "calibration inputs. Default: each text's own, from its writing system.",
    )

    @model_validator(mode="before")
    @classmethod
    def _single_or_batch(cls, data: Any) -> Any:
        _one_of(data, "text", "texts")
        return data


class ClassifyResult(BaseModel):
    index: int
    label: str = Field(description="The best label; always one of the labels.")
    labels: list[str] | None = Field(
        None, description="multi_label: every label whose probability is at least 0.5."
    )
    scores: dict[str, float] = Field(
        description="A probability for every label, in the labels' order (sum to 1 unless "
        "multi_label, where each is independent)."
    )


# --------------------------------------------------------------------------- chat
ChatPreset = Literal["customer_service", "assistant"]


class ChatTurn(RequestModel):
    role: Literal["system", "user", "assistant"]
    content: str


class TaskChatRequest(TaskRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"message": "Where is my order?", "preset": "customer_service"}]
        },
    )
    messages: list[ChatTurn] | None = Field(None, min_length=1)
    message: NonEmptyText | None = None
    history: list[ChatTurn] | None = None
    system: str | None = None
    preset: ChatPreset | None = None
    stream: bool = False
    max_tokens: TokenCount | None = None
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0, le=MAX_INT32)
    repetition_penalty: float = Field(1.0, gt=0.0, le=10.0)
    stop: StopField = None
    seed: Int64 | None = None
    language: str | None = Field(
        None,
        max_length=64,
        description="Answer in this language (a code such as zh, or a name): the system prompt "
        "asks for it and the reply is decoded under a structured-output constraint that allows "
        "only its writing system, digits, punctuation and Latin runs of at most 3 words.",
    )

    @model_validator(mode="before")
    @classmethod
    def _messages_or_message(cls, data: Any) -> Any:
        _one_of(data, "message", "messages")
        if isinstance(data, dict) and data.get("messages") is not None and data.get("history"):
            raise PydanticCustomError(
                "value_error",
                "'history' goes with 'message', not with 'messages'.",
                {"param": "history"},
            )
        return data


class ChatResult(BaseModel):
    index: int = 0
    reply: str
    finish_reason: FinishReason
    truncated_turns: int = Field(
        0, description="Oldest history turns dropped to fit the context (0 = none)."
    )


# --------------------------------------------------------------------------- envelope
R = TypeVar("R", bound=BaseModel)
TaskName = Literal["generate", "summarize", "classify", "chat"]


class TaskResponse(BaseModel, Generic[R]):
    id: str
    object: TaskName
    created: int
    model: str
    results: list[R]
    usage: Usage


class TaskDelta(BaseModel):
    index: int = Field(description="Which input the delta belongs to.")
    sequence: int = Field(0, description="Which returned sequence of that input.")
    delta: str
    finish_reason: FinishReason | None = None


class TaskChunk(BaseModel):
    """One SSE event of a streaming task; the last one before [DONE] carries `usage`."""

    id: str
    object: Literal["generate.chunk", "chat.chunk"]
    created: int
    model: str
    results: list[TaskDelta]
    usage: Usage | None = None


GenerateResponse = TaskResponse[GenerateResult]
SummarizeResponse = TaskResponse[SummarizeResult]
ClassifyResponse = TaskResponse[ClassifyResult]
ChatResponse = TaskResponse[ChatResult]
