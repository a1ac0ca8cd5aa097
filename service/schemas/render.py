"""`/v1/chat/completions/render` and `/v1/completions/render` responses (vLLM's shape).

vLLM serves these for routers in front of several servers: a request is turned into the prompt
token ids and sampling parameters that the engine would get, and nothing is generated. vLLM's
answer is its `GenerateRequest`; this is the part of it that this server can fill in, under
vLLM's names (`vllm/entrypoints/scale_out/token_in_token_out/protocol.py`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class RenderedSamplingParams(BaseModel):
    """The sampling parameters the engine would run with, named as vLLM's `SamplingParams`."""

    n: int
    max_tokens: int
    min_tokens: int
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    presence_penalty: float
    frequency_penalty: float
    repetition_penalty: float
    seed: int | None
    stop: list[str]
    stop_token_ids: list[int]
    include_stop_str_in_output: bool
    ignore_eos: bool
    logprobs: int | None
    prompt_logprobs: int | None
    logit_bias: dict[int, float] | None
    skip_special_tokens: bool
    structured_outputs: dict[str, Any] | None


class RenderedPrompt(BaseModel):
    """One prompt as the engine would get it (vLLM's `GenerateRequest`, in part)."""

    request_id: str
    token_ids: list[int]
    sampling_params: RenderedSamplingParams
    model: str
    stream: bool
