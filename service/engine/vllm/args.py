"""Settings -> vLLM engine arguments and environment. Pure: the platform and the accepted
fields are passed in (the KV-cache sizer reads the machine's memory when vLLM calls it)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

from service.config import Settings
from service.engine.base import STEP_LOGPROBS_LIMIT
from service.engine.vllm import kv_cache
from service.engine.vllm.kv_cache import KVShape

logger = logging.getLogger(__name__)

# vLLM's switch between its model runners (read in the engine core and in the frontend).
MODEL_RUNNER_V2_ENV = "VLLM_USE_V2_MODEL_RUNNER"
# The KV-cache block on CPU: the smallest the CPU attention backend takes (a multiple of 32;
# vLLM's own CPU default is 128). The prefix cache shares whole blocks only, so at 128 a
# classify prompt of ~125 tokens shares none between its label requests (evals/README.md).
CPU_BLOCK_SIZE = 32


def no_repeat_ngram_enabled(settings: Settings, *, on_cpu: bool) -> bool:
    """Whether the n-gram logits processor is registered (`no_repeat_ngram` resolved).

    `auto` keeps vLLM's default model runner wherever it differs from the one the processor
    needs: the processor is written to vLLM's V1 logits-processor interface, which only the V1
    model runner runs. vLLM 0.26+ on GPU defaults to Model Runner V2 and falls back to V1 when
    any custom logits processor is registered (0.32 refuses a V1-interface processor under V2
    instead), while CPU builds without Triton's CPU backend run V1 anyway.
    """
    if settings.no_repeat_ngram == "auto":
        return on_cpu
    return settings.no_repeat_ngram == "on"


def engine_kwargs(
    settings: Settings,
    *,
    model_path: str,
    on_cpu: bool,
    accepted: Collection[str],
    logits_processors: list[str] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `AsyncEngineArgs`, keeping only fields this vLLM version knows.

    `auto` choices resolve here: float32 and eager mode on CPU, where bfloat16 gives wrong
    tokens without AVX512-BF16 and graph capture costs minutes at start-up, and 32-token KV
    blocks there (`CPU_BLOCK_SIZE`). The gateway's
    `logits_processors` are registered only when `no_repeat_ngram` resolves to on.
    """
    dtype = settings.dtype
    if dtype == "auto" and on_cpu:
        dtype = "float32"
    enforce_eager = settings.enforce_eager
    if enforce_eager is None:
        enforce_eager = on_cpu
    if not no_repeat_ngram_enabled(settings, on_cpu=on_cpu):
        logits_processors = None
    block_size = settings.block_size
    if block_size is None and on_cpu:
        block_size = CPU_BLOCK_SIZE
    wanted: dict[str, Any] = {
        "model": model_path,
        "served_model_name": [settings.model_name],
        "dtype": dtype,
        "max_model_len": settings.max_model_len,
        "max_num_seqs": settings.max_num_seqs,
        "gpu_memory_utilization": settings.gpu_memory_utilization,
        "tensor_parallel_size": settings.tensor_parallel_size,
        "pipeline_parallel_size": settings.pipeline_parallel_size,
        "distributed_executor_backend": settings.distributed_executor_backend,
        "enforce_eager": enforce_eager,
        "seed": settings.seed,
        "enable_prefix_caching": settings.enable_prefix_caching,
        "block_size": block_size,
        "download_dir": str(settings.download_dir),
        "disable_log_stats": settings.disable_log_stats,
        # Beam search asks for more per step than users may (`max_logprobs` limits those).
        "max_logprobs": max(settings.max_logprobs, STEP_LOGPROBS_LIMIT),
        "logits_processors": logits_processors or None,
        "scheduling_policy": "priority" if settings.scheduling_policy == "priority" else None,
        "enable_lora": settings.enable_lora or None,
        "max_loras": settings.max_loras if settings.enable_lora else None,
        "max_lora_rank": settings.max_lora_rank if settings.enable_lora else None,
        # JSON under a constraint (response_format, tool calls) without free whitespace: a
        # small model otherwise spends its token budget on blank lines inside the braces.
        "structured_outputs_config": (
            {"backend": "xgrammar", "disable_any_whitespace": True}
            if settings.compact_json_output
            else None
        ),
    }
    # None means "vLLM's own default": leave it out rather than override it.
    return {k: v for k, v in wanted.items() if v is not None and k in accepted}


def engine_environment(settings: Settings, *, on_cpu: bool) -> dict[str, str]:
    """Environment the engine reads at start-up (the engine core inherits it when spawned).

    With the n-gram processor registered, the V1 model runner is asked for by name: 0.26 would
    fall back to it with a warning, 0.32 would refuse the processor under V2. Otherwise vLLM's
    own choice (and an operator's `VLLM_USE_V2_MODEL_RUNNER`) stands.
    """
    env: dict[str, str] = {}
    if no_repeat_ngram_enabled(settings, on_cpu=on_cpu):
        env[MODEL_RUNNER_V2_ENV] = "0"
    return env


def pooling_engine_kwargs(
    settings: Settings, *, model_path: str, on_cpu: bool, accepted: Collection[str]
) -> dict[str, Any]:
    """`AsyncEngineArgs` for the embedding engine: the generation engine's, in pooling mode.

    Its stats logging is off: vLLM's Prometheus logger unregisters every `vllm:` family when
    an engine starts, which would wipe the generation engine's metrics.
    """
    kwargs = engine_kwargs(settings, model_path=model_path, on_cpu=on_cpu, accepted=accepted)
    pooling: dict[str, Any] = {
        "served_model_name": [settings.embedding_model_name],
        "runner": "pooling",
        "convert": "embed",
        "disable_log_stats": True,
        "gpu_memory_utilization": settings.embedding_gpu_memory_utilization,
        "max_num_seqs": settings.embedding_max_num_seqs,
        "scheduling_policy": None,
        "max_logprobs": None,
        "logits_processors": None,
        "enable_lora": None,
        "max_loras": None,
        "max_lora_rank": None,
    }
    for name, value in pooling.items():
        kwargs.pop(name, None)
        if value is not None and name in accepted:
            kwargs[name] = value
    return kwargs


def embedding_worker_in_process(settings: Settings, *, on_cpu: bool) -> bool:
    """Whether the embedding engine runs its model inside its engine-core process.

    vLLM on CPU always starts a worker process beside the engine core, and each of them
    imports vLLM and torch anew (about 0.5 GiB a process). On one GPU vLLM runs the model
    inside the engine core instead (its `UniProcExecutor`); the embedding engine does that on
    CPU too, with the OpenMP threads vLLM would give its worker, so it computes the same
    vectors in one process fewer. Parallel set-ups, or an explicit
    `distributed_executor_backend`, keep vLLM's own choice.
    """
    return (
        on_cpu
        and settings.tensor_parallel_size * settings.pipeline_parallel_size == 1
        and settings.distributed_executor_backend is None
    )


def kv_cache_sizer(settings: Settings, purpose: kv_cache.Purpose) -> Callable[[KVShape], int]:
    """One CPU engine's KV-cache size in bytes, from its resolved shape: `auto` or the GiB set
    (`kv_cache.plan`), logged with the tokens it holds; `KVCacheTooSmallError` stops the start
    when a size set in GiB cannot hold one request at max_model_len."""
    setting = "cpu_kvcache_space" if purpose == "generation" else "embedding_cpu_kvcache_space"
    value = (
        settings.cpu_kvcache_space
        if purpose == "generation"
        else (settings.embedding_cpu_kvcache_space)
    )

    def size(shape: KVShape) -> int:
        result = kv_cache.plan(
            purpose,
            setting=setting,
            value=value,
            shape=shape,
            memory_bytes=kv_cache.machine_memory_bytes(),
            memory_share=settings.cpu_kvcache_memory_share,
        )
        logger.info(result.describe())
        if result.above_share:
            logger.warning(
                "%s=auto takes more than cpu_kvcache_memory_share (%g) of this machine's memory "
                "to hold one request at max_model_len %d; lower max_model_len to take less",
                setting,
                settings.cpu_kvcache_memory_share,
                shape.max_model_len,
            )
        return result.bytes

    return size
