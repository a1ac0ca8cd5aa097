"""Settings -> vLLM engine arguments. Pure: the platform and the accepted fields are passed in."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from service.config import Settings
from service.engine.base import STEP_LOGPROBS_LIMIT


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
    tokens without AVX512-BF16 and graph capture costs minutes at start-up.
    """
    dtype = settings.dtype
    if dtype == "auto" and on_cpu:
        dtype = "float32"
    enforce_eager = settings.enforce_eager
    if enforce_eager is None:
        enforce_eager = on_cpu
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
        "block_size": settings.block_size,
        "download_dir": str(settings.download_dir),
        "disable_log_stats": settings.disable_log_stats,
        # Beam search asks for more per step than users may (`max_logprobs` limits those).
        "max_logprobs": max(settings.max_logprobs, STEP_LOGPROBS_LIMIT),
        "logits_processors": logits_processors or None,
        "scheduling_policy": "priority" if settings.scheduling_policy == "priority" else None,
    }
    # None means "vLLM's own default": leave it out rather than override it.
    return {k: v for k, v in wanted.items() if v is not None and k in accepted}


def cpu_environment(settings: Settings) -> dict[str, str]:
    """Environment the CPU engine core reads at spawn time."""
    return {"VLLM_CPU_KVCACHE_SPACE": str(settings.cpu_kvcache_space)}
