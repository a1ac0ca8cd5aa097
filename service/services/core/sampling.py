"""OpenAI request fields -> engine SamplingOptions, with the checks that need the model."""

from __future__ import annotations

import json
from typing import Any

from service.config import Settings
from service.engine.base import SamplingOptions, StructuredOutput
from service.errors import ContextLengthError, InvalidRequestError
from service.schemas.chat import ChatCompletionRequest
from service.schemas.common import MAX_INT32, OpenAIRequest, json_problem, stop_sequences


def token_budget(
    requested: int | None,
    *,
    prompt_tokens: int,
    max_model_len: int,
    default_cap: int,
    prompt_param: str,
    requested_param: str = "max_tokens",
) -> int:
    """max_tokens for one prompt: the request's, or the default cap bounded by the context."""
    room = max_model_len - prompt_tokens
    if requested is None:
        if room < 1:
            raise ContextLengthError(
                f"This model's maximum context length is {max_model_len} tokens; the prompt has "
                f"{prompt_tokens} tokens, which leaves no room for a completion.",
                param=prompt_param,
            )
        return min(default_cap, room)
    if prompt_tokens + requested > max_model_len:
        raise ContextLengthError(
            f"This model's maximum context length is {max_model_len} tokens. However, you "
            f"requested {prompt_tokens + requested} tokens ({prompt_tokens} in the prompt, "
            f"{requested} for the completion). Reduce the prompt or {requested_param}.",
            param=requested_param,
        )
    return requested


def _structured(request: OpenAIRequest) -> StructuredOutput | None:
    if isinstance(request, ChatCompletionRequest) and request.response_format is not None:
        fmt = request.response_format
        if fmt.type == "json_object":
            return StructuredOutput(json_object=True)
        if fmt.type == "json_schema" and fmt.json_schema is not None:
            return StructuredOutput(json_schema=fmt.json_schema.schema_)
    spec = request.structured_outputs
    if spec is None:
        return None
    if spec.json_ is not None:
        schema = spec.json_
        if isinstance(schema, str):
            schema = _json_schema(schema)
        return StructuredOutput(json_schema=schema)
    return StructuredOutput(
        json_object=bool(spec.json_object),
        regex=spec.regex,
        choice=tuple(spec.choice) if spec.choice else None,
        grammar=spec.grammar,
    )


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_schema(text: str) -> dict[str, Any]:
    """`structured_outputs.json` given as a string: a JSON object (finite, not absurdly deep)."""
    try:
        schema = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as err:  # RecursionError: nested too deeply
        raise InvalidRequestError(
            "structured_outputs.json is not valid JSON.", param="structured_outputs.json"
        ) from err
    if not isinstance(schema, dict):
        raise InvalidRequestError(
            "structured_outputs.json must be a JSON schema (an object).",
            param="structured_outputs.json",
        )
    found = json_problem(schema, ("structured_outputs", "json"))
    if found is not None:
        param, problem = found
        raise InvalidRequestError(f"The value is {problem}.", param=param)
    return schema


def _logit_bias(request: OpenAIRequest) -> dict[int, float] | None:
    if not request.logit_bias:
        return None
    bias: dict[int, float] = {}
    for key, value in request.logit_bias.items():
        try:
            token_id = int(key)
        except ValueError as err:
            raise InvalidRequestError(
                f"logit_bias keys must be token ids, got {key!r}.", param="logit_bias"
            ) from err
        if not 0 <= token_id <= MAX_INT32:
            raise InvalidRequestError(f"Token id {token_id} is out of range.", param="logit_bias")
        bias[token_id] = value
    return bias


def sampling_options(
    request: OpenAIRequest,
    *,
    max_tokens: int,
    logprobs: int | None,
    settings: Settings,
    prompt_logprobs: int | None = None,
    logprobs_param: str = "logprobs",
) -> SamplingOptions:
    if logprobs is not None and logprobs > settings.max_logprobs:
        raise InvalidRequestError(
            f"At most {settings.max_logprobs} logprobs may be requested.", param=logprobs_param
        )
    if request.min_tokens > max_tokens:
        raise InvalidRequestError(
            f"min_tokens ({request.min_tokens}) must not exceed max_tokens ({max_tokens}).",
            param="min_tokens",
        )
    temperature = 1.0 if request.temperature is None else request.temperature
    if request.n > 1 and temperature == 0.0:
        raise InvalidRequestError(
            "n must be 1 with greedy sampling (temperature 0): every choice would be the same.",
            param="n",
        )
    stop = request.stop
    return SamplingOptions(
        max_tokens=max_tokens,
        n=request.n,
        temperature=temperature,
        top_p=1.0 if request.top_p is None else request.top_p,
        top_k=max(request.top_k or 0, 0),
        min_p=request.min_p or 0.0,
        presence_penalty=request.presence_penalty,
        frequency_penalty=request.frequency_penalty,
        repetition_penalty=request.repetition_penalty or 1.0,
        seed=request.seed,
        stop=stop_sequences(stop),
        stop_token_ids=tuple(request.stop_token_ids or ()),
        include_stop_str_in_output=request.include_stop_str_in_output,
        ignore_eos=request.ignore_eos,
        min_tokens=request.min_tokens,
        logprobs=logprobs,
        prompt_logprobs=prompt_logprobs,
        logit_bias=_logit_bias(request),
        skip_special_tokens=request.skip_special_tokens,
        structured=_structured(request),
    )
