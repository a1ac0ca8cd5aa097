"""Settings -> vLLM engine arguments. Pure: the platform and the accepted fields are passed in."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from service.config import Settings


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
        "download_dir": str(settings.download_dir),
        "disable_log_stats": settings.disable_log_stats,
        "max_logprobs": settings.max_logprobs,
        "logits_processors": logits_processors or None,
        "scheduling_policy": "priority" if settings.scheduling_policy == "priority" else None,
        "enable_lora": settings.enable_lora or None,
        "max_loras": settings.max_loras if settings.enable_lora else None,
        "max_lora_rank": settings.max_lora_rank if settings.enable_lora else None,
    }
    # None means "vLLM's own default": leave it out rather than override it.
    return {k: v for k, v in wanted.items() if v is not None and k in accepted}


def cpu_environment(settings: Settings) -> dict[str, str]:
    """Environment the CPU engine core reads at spawn time."""
    return {"VLLM_CPU_KVCACHE_SPACE": str(settings.cpu_kvcache_space)}


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
        "enable_lora": None,
        "max_loras": None,
        "max_lora_rank": None,
    }
    for name, value in pooling.items():
        kwargs.pop(name, None)
        if value is not None and name in accepted:
            kwargs[name] = value
    return kwargs


def pooling_cpu_environment(settings: Settings) -> dict[str, str]:
    """The embedding engine's own KV-cache share, read when its engine core spawns."""
    return {"VLLM_CPU_KVCACHE_SPACE": str(settings.embedding_cpu_kvcache_space)}
