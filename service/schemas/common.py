"""Pieces shared by the OpenAI request and response models."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator
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

# Added by a router in front of replicas, `vllm-router` (vllm-project/router, the PyPI package),
# to every chat and completion request it forwards, filled with its defaults. None of them is a
# vLLM parameter (vLLM's server takes unknown fields and drops them); this server drops them too,
# but only with a value that changes nothing here: any other value is a 400 that names the field,
# so that a client never gets a result that silently differs from what it asked for.
# {field: the values accepted and ignored}
ROUTER_ONLY_FIELDS: dict[str, tuple[bool, ...]] = {
    "no_stop_trim": (
        False,
    ),  # SGLang's "keep the stop string"; vLLM's is include_stop_str_in_output
    "return_hidden_states": (False,),
}
# Chat only: how a reasoning parser splits and streams a model's reasoning. This server runs no
# reasoning parser (all generated text is content), so every value of these is a no-op.
ROUTER_ONLY_CHAT_FIELDS: dict[str, tuple[bool, ...]] = {
    **ROUTER_ONLY_FIELDS,
    "separate_reasoning": (True, False),
    "stream_reasoning": (True, False),
}

MAX_INT32 = 2**31 - 1
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
# Counts and ids that reach the engine: bounded, so that a huge integer is a 400, not an
# overflow inside vLLM or torch. No context is anywhere near 2**31 tokens.
TokenId = Annotated[int, Field(ge=0, le=MAX_INT32)]
TokenCount = Annotated[int, Field(ge=1, le=MAX_INT32)]
NonNegativeCount = Annotated[int, Field(ge=0, le=MAX_INT32)]
NonEmptyStr = Annotated[str, Field(min_length=1)]
MAX_STOP = 16


def one_or_many(value: Any) -> str | None:
    """The tag of a "string or list" union: errors then name the item (`stop.1`), not every
    branch the value failed to be."""
    if isinstance(value, str):
        return "one"
    if isinstance(value, list):
        return "many"
    return None


Stop = (
    Annotated[
        Annotated[NonEmptyStr, Tag("one")]
        | Annotated[list[NonEmptyStr], Tag("many"), Field(max_length=MAX_STOP)],
        Discriminator(
            one_or_many,
            custom_error_type="stop_type",
            custom_error_message="Input should be a string or a list of strings",
        ),
    ]
    | None
)

TIMEOUT_DESCRIPTION = (
    "Deadline for this request in seconds, covering queueing and generation (and a summary's "
    "whole map-reduce); capped by the server's max_request_timeout_seconds; the "
    "`x-request-timeout` header does the same."
)
Timeout = Annotated[float | None, Field(gt=0.0, description=TIMEOUT_DESCRIPTION)]

MAX_JSON_DEPTH = 100  # nesting of arrays/objects within a request body
_SURROGATE = re.compile("[\ud800-\udfff]")


class RequestModel(BaseModel):
    """Base of every request-side model: unknown fields are errors, numbers are finite.

    Python's json accepts the `NaN`/`Infinity` literals; `allow_inf_nan=False` refuses them.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _bad_text(text: str) -> bool:
    # JSON's \ud800 escapes decode to lone surrogates, which no tokenizer or encoder takes.
    return not text.isascii() and _SURROGATE.search(text) is not None


def _scalar_problem(node: Any) -> str | None:
    """What is wrong with one string or number, or None."""
    if isinstance(node, str):
        return "not valid Unicode (it has an unpaired surrogate)" if _bad_text(node) else None
    if isinstance(node, float):
        return None if math.isfinite(node) else "not a finite number"
    if isinstance(node, int) and not isinstance(node, bool) and not -(2**63) <= node < 2**63:
        return "an integer beyond 64 bits"
    return None


def _children(path: tuple[str, ...], node: Any) -> tuple[list[tuple[tuple[str, ...], Any]], bool]:
    """A container's (path, value) children, and whether one of its keys is invalid text."""
    if isinstance(node, dict):
        bad_key = any(isinstance(key, str) and _bad_text(key) for key in node)
        return [((*path, str(key)), value) for key, value in node.items()], bad_key
    if isinstance(node, list):
        return [((*path, str(i)), value) for i, value in enumerate(node)], False
    return [], False


def json_problem(data: Any, prefix: tuple[str, ...] = ()) -> tuple[str | None, str] | None:
    """(where, what) of the first thing JSON parses but nothing downstream can handle, or None.

    Walks the whole value (iteratively): lone surrogates in strings or keys (invalid Unicode),
    non-finite numbers and integers beyond 64 bits (also inside free-form fields such as a JSON
    schema, which reach the engine's grammar compiler) and nesting deeper than MAX_JSON_DEPTH.
    """
    stack: list[tuple[tuple[str, ...], Any]] = [(prefix, data)]
    while stack:
        path, node = stack.pop()
        problem = _scalar_problem(node)
        if len(path) - len(prefix) > MAX_JSON_DEPTH:
            problem = f"nested more than {MAX_JSON_DEPTH} levels deep"
        children, bad_key = _children(path, node)
        if problem is None and bad_key:
            problem = "a key that is not valid Unicode (an unpaired surrogate)"
        if problem is not None:
            return ".".join(path) or None, problem
        stack.extend(children)
    return None


def screen_json(data: Any) -> None:
    """A request body's `json_problem` as a validation error naming the field."""
    found = json_problem(data)
    if found is not None:
        param, problem = found
        raise PydanticCustomError(
            "value_error", "The value is {problem}.", {"problem": problem, "param": param}
        )


class StreamOptions(RequestModel):
    include_usage: bool = False


class StructuredOutputsSpec(RequestModel):
    """vLLM's `structured_outputs` extension: exactly one constraint."""

    json_: dict[str, Any] | str | None = Field(None, alias="json")
    regex: str | None = None
    choice: list[NonEmptyStr] | None = Field(None, min_length=1)
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


def _screen_router_field(name: str, value: Any, accepted: tuple[bool, ...]) -> None:
    """A router-only field: a boolean (as the router sends it) whose value changes nothing here."""
    if not isinstance(value, bool):
        raise PydanticCustomError("bool_type", "Input should be a valid boolean.", {"param": name})
    if value not in accepted:
        raise PydanticCustomError(
            "unsupported_parameter",
            "'{param}' set to {value} is not supported by this server.",
            {"param": name, "value": str(value).lower()},
        )


class OpenAIRequest(RequestModel):
    """Base for request bodies: unknown fields are errors, except the explicitly ignored ones.

    `_unsupported` names OpenAI fields we do not implement and whose presence would change the
    result; sending one (with a non-null value) is a 400 that names it.
    """

    _unsupported: ClassVar[frozenset[str]] = frozenset()
    _router_only: ClassVar[dict[str, tuple[bool, ...]]] = ROUTER_ONLY_FIELDS
    _ignored: ClassVar[frozenset[str]] = IGNORED_FIELDS

    @model_validator(mode="before")
    @classmethod
    def _screen_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        screen_json(data)
        for key in data.keys() & cls._unsupported:
            if data[key] is not None:
                raise PydanticCustomError(
                    "unsupported_parameter",
                    "'{param}' is not supported by this server.",
                    {"param": key},
                )
        for key in data.keys() & cls._router_only.keys():
            _screen_router_field(key, data[key], cls._router_only[key])
        return {
            k: v for k, v in data.items() if k not in cls._ignored and k not in cls._router_only
        }

    # --- sampling, shared by completions and chat (OpenAI fields, then vLLM's extensions)
    model: NonEmptyStr
    max_tokens: TokenCount | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=128)
    stop: Stop = None
    seed: Int64 | None = None
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, Annotated[float, Field(ge=-100.0, le=100.0)]] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    top_k: int | None = Field(None, ge=-1, le=MAX_INT32)
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    repetition_penalty: float | None = Field(None, gt=0.0, le=10.0)
    min_tokens: NonNegativeCount = 0
    ignore_eos: bool = False
    stop_token_ids: list[TokenId] | None = None
    include_stop_str_in_output: bool = False
    skip_special_tokens: bool = True
    structured_outputs: StructuredOutputsSpec | None = None
    # The gateway's own: read by the request's deadline, never an engine parameter.
    timeout: Timeout = None

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

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )


def stop_sequences(stop: str | Sequence[str] | None) -> tuple[str, ...]:
    """A `stop` field (one string, a list, or nothing) as the engine takes it."""
    return (stop,) if isinstance(stop, str) else tuple(stop or ())


class LoadReport(BaseModel):
    """`GET /get_load`, in the shape routers from SGLang's family read (`load`)."""

    load: int
    queue_depth: int
    sequences_in_flight: int


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "llm-gateway"
    root: str | None = None
    parent: str | None = None  # an adapter's base model
    max_model_len: int | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
