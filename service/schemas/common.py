"""Pieces shared by the OpenAI request and response models."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

# Accepted and ignored: none of them can change what the model generates.
IGNORED_FIELDS: frozenset[str] = frozenset(
    {
        "user",
        "metadata",
        "store",
        "service_tier",
        "prompt_cache_key",
        "safety_identifier",
        "parallel_tool_calls",
        "request_id",
        "priority",
    }
)

Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


class StructuredOutputsSpec(BaseModel):
    """vLLM's `structured_outputs` extension: exactly one constraint."""

    model_config = ConfigDict(extra="forbid")
    json_: dict[str, Any] | str | None = Field(None, alias="json")
    regex: str | None = None
    choice: list[str] | None = Field(None, min_length=1)
    grammar: str | None = None
    json_object: bool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> StructuredOutputsSpec:
        given = [
            k
            for k in ("json_", "regex", "choice", "grammar", "json_object")
            if getattr(self, k) not in (None, False)
        ]
        if len(given) != 1:
            raise ValueError("set exactly one of json, regex, choice, grammar, json_object")
        return self


class OpenAIRequest(BaseModel):
    """Base for request bodies: unknown fields are errors, except the explicitly ignored ones.

    `_unsupported` names OpenAI fields we do not implement and whose presence would change the
    result; sending one (with a non-null value) is a 400 that names it.
    """

    model_config = ConfigDict(extra="forbid")
    _unsupported: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _screen_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for key in data.keys() & cls._unsupported:
            if data[key] is not None:
                raise PydanticCustomError(
                    "unsupported_parameter",
                    "'{param}' is not supported by this server.",
                    {"param": key},
                )
        return {k: v for k, v in data.items() if k not in IGNORED_FIELDS}

    # --- sampling, shared by completions and chat (OpenAI fields, then vLLM's extensions)
    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=128)
    stop: str | list[Annotated[str, Field(min_length=1)]] | None = Field(None, max_length=16)
    seed: Int64 | None = None
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, Annotated[float, Field(ge=-100.0, le=100.0)]] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    top_k: int | None = Field(None, ge=-1)
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    repetition_penalty: float | None = Field(None, gt=0.0, le=10.0)
    min_tokens: int = Field(0, ge=0)
    ignore_eos: bool = False
    stop_token_ids: list[int] | None = None
    include_stop_str_in_output: bool = False
    skip_special_tokens: bool = True
    structured_outputs: StructuredOutputsSpec | None = None

    @model_validator(mode="after")
    def _stream_options_need_stream(self) -> OpenAIRequest:
        if self.stream_options is not None and not self.stream:
            raise PydanticCustomError(
                "value_error",
                "stream_options is only allowed when stream is true.",
                {"param": "stream_options"},
            )
        return self


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "llm-gateway"
    max_model_len: int | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
