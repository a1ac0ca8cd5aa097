"""The render endpoints: a chat or completion request prepared as for the engine, not run.

A router in front of several replicas (`vllm-router`) asks for them to learn the prompt's token
ids (for prefix-aware routing) before it forwards the request itself. The request goes through
the same `prepare` as the real one, so the same 4xx come back and the same ids are rendered.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from service.caller import Caller
from service.config import Settings
from service.engine.base import Engine, EngineRequest, SamplingOptions, StructuredOutput
from service.schemas.chat import ChatCompletionRequest
from service.schemas.completions import CompletionRequest
from service.schemas.render import RenderedPrompt, RenderedSamplingParams
from service.services.openai import chat, completions


def _sampling_params(options: SamplingOptions) -> RenderedSamplingParams:
    structured = options.structured
    return RenderedSamplingParams(
        n=options.n,
        max_tokens=options.max_tokens,
        min_tokens=options.min_tokens,
        temperature=options.temperature,
        top_p=options.top_p,
        top_k=options.top_k,
        min_p=options.min_p,
        presence_penalty=options.presence_penalty,
        frequency_penalty=options.frequency_penalty,
        repetition_penalty=options.repetition_penalty,
        seed=options.seed,
        stop=list(options.stop),
        stop_token_ids=list(options.stop_token_ids),
        include_stop_str_in_output=options.include_stop_str_in_output,
        ignore_eos=options.ignore_eos,
        logprobs=options.logprobs,
        prompt_logprobs=options.prompt_logprobs,
        logit_bias=options.logit_bias,
        skip_special_tokens=options.skip_special_tokens,
        structured_outputs=None if structured is None else _structured_outputs(structured),
    )


def _structured_outputs(structured: StructuredOutput) -> dict[str, Any]:
    """The one constraint set, under vLLM's `structured_outputs` names."""
    fields = {k: v for k, v in dataclasses.asdict(structured).items() if v not in (None, False)}
    if "json_schema" in fields:
        fields["json"] = fields.pop("json_schema")
    return fields


def _rendered(
    engine_request: EngineRequest, *, request_id: str, model: str, stream: bool
) -> RenderedPrompt:
    return RenderedPrompt(
        request_id=request_id,
        token_ids=list(engine_request.prompt_token_ids),
        sampling_params=_sampling_params(engine_request.options),
        model=model,
        stream=stream,
    )


def render_chat(
    request: ChatCompletionRequest, engine: Engine, settings: Settings, caller: Caller
) -> RenderedPrompt:
    prepared = chat.prepare(request, engine, settings, caller)
    return _rendered(
        prepared.engine_request, request_id=prepared.id, model=prepared.model, stream=request.stream
    )


def render_completion(
    request: CompletionRequest, engine: Engine, settings: Settings, caller: Caller
) -> list[RenderedPrompt]:
    """One entry per prompt, as vLLM answers."""
    prepared = completions.prepare(request, engine, settings, caller)
    return [
        _rendered(r, request_id=prepared.id, model=prepared.model, stream=request.stream)
        for r in prepared.requests
    ]
