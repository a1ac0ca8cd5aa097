"""Settings of the model and the engines (a base of `Settings`: only its fields live here)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
# A CPU KV-cache size: GiB above 0 (fractions too), or "auto" (service/engine/vllm/kv_cache.py);
# `_gib_or_auto` checks it.
KVCacheSize = float | Literal["auto"]


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "llm-gateway" / "models"


class EngineSettings(BaseSettings):
    # --- Model
    model: str = Field(
        DEFAULT_MODEL,
        description="Hugging Face id or local folder. The default model is served from the "
        "offline copy made by `python -m service.weights prepare` when it exists.",
    )
    served_model_name: str | None = Field(
        None, description="Name clients use in `model`; defaults to `model`."
    )
    download_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Model cache folder: prepared models and vLLM's downloads.",
    )

    # --- Engine (passed to vLLM's AsyncEngineArgs)
    engine: Literal["vllm", "fake"] = Field(
        "vllm",
        description="vllm = the real engine; fake = a canned-reply engine with no model, for "
        "load-testing the gateway itself and for demos.",
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto",
        description="auto = float32 on CPU (bfloat16 gives wrong tokens on CPUs without "
        "AVX512-BF16), the model's own dtype on GPU.",
    )
    max_model_len: int | None = Field(None, ge=16, description="Context length; None = model's.")
    max_num_seqs: int | None = Field(None, ge=1, description="Sequences batched per step.")
    gpu_memory_utilization: float = Field(
        0.9, gt=0.0, le=1.0, description="GPU memory share for weights and KV cache."
    )
    tensor_parallel_size: int = Field(
        1,
        ge=1,
        description="Multi-GPU parallelism: each layer split over this many GPUs of one node.",
    )
    pipeline_parallel_size: int = Field(
        1,
        ge=1,
        description="Multi-GPU parallelism: the layers split into this many stages, also "
        "across nodes.",
    )
    distributed_executor_backend: Literal["mp", "ray"] | None = Field(
        None, description="mp or ray; None = vLLM's default (mp when parallel)."
    )
    enforce_eager: bool | None = Field(
        None, description="None = True on CPU (starts in ~45 s instead of ~3 min), False on GPU."
    )
    cpu_kvcache_space: KVCacheSize = Field(
        "auto",
        description="The generation engine's CPU KV-cache size in GiB (fractions too), or auto: "
        "max_num_seqs x max_model_len tokens at the model's bytes a token (layers x KV heads x "
        "head size x 2 x dtype bytes), at most cpu_kvcache_memory_share of the machine's "
        "memory but never less than one request at max_model_len. Logged at start-up with the "
        "tokens it holds; a size set too small for one request at max_model_len stops the "
        "start. CPU only (GPUs size by gpu_memory_utilization).",
    )
    cpu_kvcache_memory_share: float = Field(
        0.02,
        gt=0.0,
        le=1.0,
        description="The most an auto CPU KV cache may take of the machine's memory (its cgroup "
        "limit in a container), unless one request at max_model_len needs more.",
    )
    seed: int | None = Field(None, description="Engine seed.")
    enable_prefix_caching: bool | None = Field(None, description="None = vLLM's default.")
    block_size: int | None = Field(
        None,
        ge=1,
        description="KV-cache block size in tokens; None = 32 on CPU (the smallest its "
        "attention backend takes; vLLM's own CPU default is 128), vLLM's default elsewhere "
        "(16 on GPU). The prefix cache reuses whole blocks only, so beam search and classify, "
        "which send one prompt several times, recompute up to one block per request.",
    )
    disable_log_stats: bool = Field(
        False, description="Turn off vLLM's periodic stats log and metrics."
    )
    no_repeat_ngram: Literal["auto", "on", "off"] = Field(
        "auto",
        description="The n-gram logits processor behind /v1/generate's `no_repeat_ngram_size`. "
        "on = registered, and vLLM runs its V1 model runner (the processor needs it); off = "
        "vLLM's default runner (V2 on GPUs), and requests with `no_repeat_ngram_size` get 400; "
        "auto = on on CPU (which runs the V1 runner anyway), off on GPU.",
    )

    # --- LoRA adapters (served by the generation engine; `model` in a request selects one)
    lora_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="LoRA adapters loaded at start, as `name=path` (a PEFT adapter folder); "
        "any of them turns LoRA on. Env: a JSON list or comma-separated.",
    )
    max_loras: int = Field(1, ge=1, description="Adapters the engine batches in one step.")
    max_lora_rank: int = Field(16, ge=1, description="Largest adapter rank the engine accepts.")
    enable_lora_runtime_updates: bool = Field(
        False,
        description="Serve /v1/load_lora_adapter and /v1/unload_lora_adapter (admin keys only "
        "when API keys are on); also turns LoRA on.",
    )

    # --- Embedding engine (a second in-process vLLM engine in pooling mode: /v1/embeddings,
    # /v1/rerank)
    embedding_model: str | None = Field(
        DEFAULT_MODEL,
        description="Hugging Face id or local folder of the model behind /v1/embeddings and "
        "/v1/rerank, served by a second in-process engine in pooling mode; `none` turns "
        "embeddings off. The default model is served from its prepared copy.",
    )
    embedding_served_model_name: str | None = Field(
        None, description="Name clients use in `model` for embeddings; defaults to embedding_model."
    )
    embedding_cpu_kvcache_space: KVCacheSize = Field(
        "auto",
        description="The embedding engine's CPU KV-cache size in GiB, or auto: max_model_len "
        "tokens (one input at full length, or as many tokens of shorter ones: an input holds "
        "its blocks for its prefill only).",
    )
    embedding_gpu_memory_utilization: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="The embedding engine's GPU memory share; the two shares must add up to "
        "at most 1 (gpu_memory_utilization is the generation engine's).",
    )
    embedding_max_num_seqs: int | None = Field(
        None, ge=1, description="Inputs the embedding engine batches per step; None = vLLM's."
    )

    @field_validator("cpu_kvcache_space", "embedding_cpu_kvcache_space", mode="before")
    @classmethod
    def _gib_or_auto(cls, value: object) -> object:
        """One clear error for a size that is neither (not one per member of the union)."""
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            gib = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            gib = 0.0
        if not (gib > 0 and math.isfinite(gib)):
            raise ValueError(f"must be a size in GiB above 0, or auto; got {value!r}")
        return gib
