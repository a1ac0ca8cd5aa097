"""The task API's types: the server's own pydantic models, plus the request ids the client adds.

Requests and results are the models of `service.schemas.tasks` (the gateway validates and
answers with exactly these), so the client and the server cannot drift apart. The response
classes here subclass them only to carry the request's `x-request-id` (`request_id`), like the
openai SDK's `_request_id`; `isinstance(result, service.schemas.tasks.GenerateResponse)` holds.

The `*Params` TypedDicts type the keyword arguments of `client.tasks.*`: one key per request
field (a test checks them against the request models), plus the per-call request options.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

import openai
from pydantic import BaseModel, PrivateAttr, ValidationError

from service.schemas import rerank as _rerank
from service.schemas import tasks as _schemas
from service.schemas.common import Usage
from service.schemas.tasks import (
    ChatPreset,
    ChatResult,
    ChatTurn,
    ClassifyRequest,
    ClassifyResult,
    FinishReason,
    GenerateRequest,
    GenerateResult,
    Generation,
    LabelledExample,
    LabelPreset,
    SummarizeRequest,
    SummarizeResult,
    TaskChatRequest,
    TaskDelta,
)

__all__ = [
    "CallOptions",
    "ChatParams",
    "ChatPreset",
    "ChatResponse",
    "ChatResult",
    "ChatTurn",
    "ChatTurnParam",
    "ClassifyParams",
    "ClassifyRequest",
    "ClassifyResponse",
    "ClassifyResult",
    "FinishReason",
    "GenerateParams",
    "GenerateRequest",
    "GenerateResponse",
    "GenerateResult",
    "Generation",
    "LabelPreset",
    "LabelledExample",
    "LabelledExampleParam",
    "SummarizeParams",
    "SummarizeRequest",
    "SummarizeResponse",
    "SummarizeResult",
    "TaskChatRequest",
    "TaskChunk",
    "TaskDelta",
    "Usage",
]


class _WithRequestId(BaseModel):
    _request_id: str | None = PrivateAttr(default=None)

    @property
    def request_id(self) -> str | None:
        """The request's `x-request-id` (the id in the gateway's logs and traces)."""
        return self._request_id


class GenerateResponse(_schemas.GenerateResponse, _WithRequestId):
    """`/v1/generate`'s answer: `results[i].generations[j].text`."""


class SummarizeResponse(_schemas.SummarizeResponse, _WithRequestId):
    """`/v1/summarize`'s answer: `results[i].summary`."""


class ClassifyResponse(_schemas.ClassifyResponse, _WithRequestId):
    """`/v1/classify`'s answer: `results[i].label` and `results[i].scores`."""


class ChatResponse(_schemas.ChatResponse, _WithRequestId):
    """`/v1/chat`'s answer: `results[0].reply`."""


class RerankResponse(_rerank.RerankResponse, _WithRequestId):
    """`/v1/rerank`'s answer: `results[k].index` and `.relevance_score`, best first."""


class TaskChunk(_schemas.TaskChunk, _WithRequestId):
    """One event of a streaming `generate` or `chat`: `results[k].delta` for input `index`."""

    @classmethod
    def build(cls, *, response: Any, data: Any) -> TaskChunk:
        """How the openai SDK's stream turns an event's JSON into a chunk (ModelBuilderProtocol)."""
        try:
            chunk = cls.model_validate(data)
        except ValidationError as err:
            raise openai.APIResponseValidationError(response, data, message=str(err)) from err
        chunk._request_id = response.headers.get("x-request-id")
        return chunk


# --------------------------------------------------------------------------- parameters
class CallOptions(TypedDict, total=False):
    """Per-call request options, as on the openai SDK's methods."""

    extra_headers: Mapping[str, str]
    extra_query: Mapping[str, object]
    extra_body: Mapping[str, object]
    timeout: float | openai.Timeout | None


CALL_OPTIONS = CallOptions.__optional_keys__


class ChatTurnParam(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


class LabelledExampleParam(TypedDict):
    text: str
    label: str


class GenerateParams(CallOptions, total=False):
    """`/v1/generate`: Hugging Face `generate` names and meanings (see `GenerateRequest`)."""

    model: str | None
    prompt: str
    prompts: Sequence[str]
    max_new_tokens: int
    max_length: int
    min_new_tokens: int
    min_length: int
    do_sample: bool
    temperature: float
    top_k: int
    top_p: float
    repetition_penalty: float
    no_repeat_ngram_size: int
    num_beams: int
    length_penalty: float
    early_stopping: bool | Literal["never"]
    num_return_sequences: int
    stop: str | Sequence[str] | None
    seed: int | None
    language: str | None


class SummarizeParams(CallOptions, total=False):
    """`/v1/summarize` (see `SummarizeRequest`)."""

    model: str | None
    text: str
    texts: Sequence[str]
    max_length: int
    min_length: int
    style: Literal["paragraph", "bullets", "headline"]
    language: str | None
    focus: str | None


class ClassifyParams(CallOptions, total=False):
    """`/v1/classify` (see `ClassifyRequest`)."""

    model: str | None
    text: str
    texts: Sequence[str]
    labels: LabelPreset | Sequence[str]
    label_descriptions: Mapping[str, str] | None
    examples: Sequence[LabelledExample | LabelledExampleParam] | None
    multi_label: bool
    language: str | None


class ChatParams(CallOptions, total=False):
    """`/v1/chat` (see `TaskChatRequest`)."""

    model: str | None
    messages: Sequence[ChatTurn | ChatTurnParam]
    message: str
    history: Sequence[ChatTurn | ChatTurnParam] | None
    system: str | None
    preset: ChatPreset | None
    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    repetition_penalty: float
    stop: str | Sequence[str] | None
    seed: int | None
    language: str | None


class RerankParams(CallOptions, total=False):
    """`/v1/rerank` (see `RerankRequest`): `model` is the embedding model's name."""

    model: str
    query: str
    documents: Sequence[str]
    top_n: int | None
    return_documents: bool
