"""Settings: one class, read from `GATEWAY_*` environment variables and `python -m service` flags.

Field names follow vLLM's own engine arguments where one exists (`max_model_len`,
`max_num_seqs`, ...), so an operator who knows `vllm serve` knows these.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "llm-gateway" / "models"


class Settings(BaseSettings):
    """Everything an operator tunes. Every field is also a `python -m service --kebab-case` flag."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_prog_name="python -m service",
        extra="forbid",
    )

    # --- HTTP server
    host: str = Field("127.0.0.1", description="Interface to listen on (0.0.0.0 in containers).")
    port: int = Field(8000, ge=1, le=65535, description="TCP port.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="Log level of the gateway, uvicorn and vLLM."
    )

    # --- Model
    model: str = Field(
        DEFAULT_MODEL,
        description="Hugging Face id or local folder. The default model is served from the "
        "offline copy made by `python -m service.models prepare` when it exists.",
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
    cpu_kvcache_space: int = Field(
        4,
        ge=1,
        description="CPU KV-cache size in whole GiB (VLLM_CPU_KVCACHE_SPACE); unset, vLLM would "
        "reserve most of the machine's memory.",
    )
    seed: int | None = Field(None, description="Engine seed.")
    enable_prefix_caching: bool | None = Field(None, description="None = vLLM's default.")
    block_size: int | None = Field(
        None,
        ge=1,
        description="KV-cache block size in tokens; None = vLLM's default (128 on CPU). The "
        "prefix cache reuses whole blocks only, so beam search and step-wise classify, which "
        "resend a prompt many times, recompute up to one block per request.",
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
    embedding_cpu_kvcache_space: int = Field(
        1,
        ge=1,
        description="The embedding engine's CPU KV-cache size in whole GiB "
        "(VLLM_CPU_KVCACHE_SPACE when it spawns), beside the generation engine's.",
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

    # --- API behaviour
    default_max_tokens: int = Field(
        512, ge=1, description="Cap for requests without max_tokens (bounded by the context)."
    )
    max_logprobs: int = Field(20, ge=0, le=20, description="Most top logprobs a request may ask.")
    sse_keepalive_seconds: float = Field(
        15.0, gt=0.0, description="Seconds between SSE keep-alive comments on a quiet stream."
    )

    # --- Tools, reasoning and the Responses API (docs/api.md)
    tool_call_parser: str | None = Field(
        "hermes",
        description="vLLM tool-call parser that reads the model's tool calls under "
        "`tool_choice: auto` (`hermes`, `llama3_json`, `mistral`, ...; it must fit the model's "
        "chat template); empty = `auto` returns plain text. `required` and named choices need "
        "none: they generate under a JSON-schema constraint.",
    )
    reasoning_parser: str | None = Field(
        None,
        description="vLLM reasoning parser (e.g. `deepseek_r1`) that moves the model's reasoning "
        "into `message.reasoning`; unset = off.",
    )
    chat_template: str | None = Field(
        None,
        description="A Jinja chat template (a file path or the template itself) used for every "
        "chat request instead of the model's. Unset: the model's own, and for requests with "
        "tools a Hermes-style tool template when the model's ignores tools.",
    )
    compact_json_output: bool = Field(
        True,
        description="JSON generated under a constraint (response_format, tool calls under "
        "`required` or a named choice) has no whitespace between tokens (vLLM's "
        "`disable_any_whitespace`, which needs the xgrammar backend, so this also picks it), so a "
        "small model cannot fill its budget with blank lines. Off: vLLM's `auto` backend.",
    )
    max_tools: int = Field(128, ge=1, description="Most tools in one request (more: 413).")
    response_store_entries: int = Field(
        1000,
        ge=0,
        description="Responses kept for `previous_response_id` and GET /v1/responses/{id}, per "
        "replica, in memory; the oldest go first (0 = no store).",
    )
    response_store_ttl_seconds: float = Field(
        3600.0, gt=0.0, description="How long a stored response is kept."
    )

    # --- Task API
    max_batch_size: int = Field(64, ge=1, description="Most inputs in one task request.")
    max_text_chars: int = Field(
        200_000, ge=1, description="Most characters in one task input (longer: 413)."
    )
    classify_scoring: Literal["prefill", "stepwise"] = Field(
        "prefill",
        description="How /v1/classify scores labels: prefill = one prompt-logprobs request per "
        "label (no prefix-cache reads); stepwise = one forced-token request per label-trie edge, "
        "reading the prompt from the prefix cache. Same scores; see evals/README.md for costs.",
    )

    # --- Admission control and deadlines (service/runtime/admission.py). The unit is engine
    # sequences: `n`, beams, a classify batch x its labels and a summary's chunks count for
    # what they cost.
    max_inflight_sequences: int | None = Field(
        None,
        ge=1,
        description="Engine sequences admitted at once; None = 2 x the engine's max_num_seqs "
        "(the engine's own batch plus one batch waiting in its queue, so it never idles).",
    )
    max_queued_sequences: int | None = Field(
        None,
        ge=0,
        description="Engine sequences that may wait for admission; None = 8 x max_num_seqs. "
        "Beyond it requests get 503 `overloaded` at once.",
    )
    max_queue_wait_seconds: float = Field(
        30.0,
        gt=0.0,
        description="Longest estimated wait for admission a request is queued for: beyond it "
        "(or beyond the request's own deadline) it gets 503 `overloaded` at once, with "
        "Retry-After = the estimate (the sequences queued ahead over the measured drain rate; "
        "no estimate until some have drained).",
    )
    scheduling_policy: Literal["fcfs", "priority"] = Field(
        "fcfs",
        description="priority = vLLM's priority scheduling, and the admission queue served by "
        "priority class (API keys carry a class); fcfs = first come, first served.",
    )
    max_request_timeout_seconds: float = Field(
        600.0,
        gt=0.0,
        description="Cap on a request's deadline (`timeout` field or `x-request-timeout` header), "
        "and the deadline of requests that set none.",
    )
    drain_timeout_seconds: float = Field(
        30.0,
        ge=0.0,
        description="On SIGTERM: how long in-flight requests may take to finish before exit.",
    )
    engine_stall_seconds: float = Field(
        120.0,
        gt=0.0,
        description="The engine is declared dead when it has work but produced no output for "
        "this long (it is wedged); the process then exits non-zero.",
    )
    health_check_interval_seconds: float = Field(
        5.0, gt=0.0, description="How often the watchdog asks the engine whether it is alive."
    )

    # --- Security (service/http/security.py)
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Accepted API keys (`Authorization: Bearer <key>`); with neither this nor "
        "api_key_file set, authentication is off. Env: a JSON list or comma-separated.",
    )
    api_key_file: Path | None = Field(
        None, description="A TOML file of keys with per-key limits (docs/security.md)."
    )
    requests_per_minute: int | None = Field(
        None,
        ge=1,
        description="Default per-key request rate limit (per replica; shared by the replicas "
        "with redis_url); None = none.",
    )
    tokens_per_minute: int | None = Field(
        None,
        ge=1,
        description="Default per-key token rate limit (per replica; shared by the replicas "
        "with redis_url); None = none.",
    )
    redis_url: SecretStr | None = Field(
        None,
        description="Keep the rate limits in this Redis (`redis://host:6379/0`, `rediss://` for "
        "TLS), shared by every replica using it, so N replicas enforce one limit; unset = each "
        "replica counts on its own.",
    )
    redis_failure: Literal["open", "closed"] = Field(
        "open",
        description="With redis_url, when Redis does not answer: open = admit the request "
        "unlimited; closed = 503 `rate_limit_unavailable` with Retry-After. Either way it is "
        "counted (gateway_ratelimit_backend_errors_total) and logged.",
    )
    redis_timeout_seconds: float = Field(
        0.25,
        gt=0.0,
        le=10.0,
        description="Connect and reply timeout for Redis; after a failure Redis is not asked "
        "again for a second (redis_failure applies meanwhile).",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or CIDRs of the proxies in front (a router, a load balancer): "
        "per-IP rate limits of a request from one of them use the right-most address of "
        "X-Forwarded-For that is not a trusted proxy. Env: a JSON list or comma-separated.",
    )
    max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest request body accepted (larger: 413)."
    )
    max_messages: int = Field(
        512, ge=1, description="Most messages in one chat request (more: 413)."
    )
    max_labels: int = Field(64, ge=2, description="Most labels in one classify request.")
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed by CORS (`*` for any); empty = CORS off.",
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Also serve /metrics on this port (a scrape-only port behind no auth).",
    )

    # --- Playground (service/routes/playground.py)
    playground: bool | None = Field(
        None,
        description="Serve the browser playground at /playground (the page is open; its API "
        "calls carry the key typed into it). None = on unless API keys are set "
        "(api_keys or api_key_file).",
    )

    # --- Observability (metrics are always on at /metrics; see service/telemetry/metrics.py)
    log_format: Literal["json", "text"] = Field(
        "json", description="json = one JSON object per line; text = for reading in a terminal."
    )
    log_prompts: bool = Field(
        False,
        description="Debugging only: log prompts and outputs (never on by default; they may hold "
        "personal data).",
    )
    otlp_traces_endpoint: str | None = Field(
        None,
        pattern=r"^https?://",
        description="OTLP/HTTP collector (e.g. http://localhost:4318) to send OpenTelemetry "
        "traces to; unset = tracing off.",
    )

    @field_validator(
        "api_keys", "cors_allow_origins", "trusted_proxies", "lora_modules", mode="before"
    )
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as err:
                raise ValueError(f"not an IP address or CIDR: {entry!r}") from err
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("tool_call_parser", "reasoning_parser", "chat_template")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("chat_template")
    @classmethod
    def _read_template(cls, value: str | None) -> str | None:
        if value is None or "{%" in value or "{{" in value:
            return value
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(f"chat_template: {value!r} is neither a file nor a Jinja template")
        return path.read_text(encoding="utf-8")

    @field_validator("served_model_name", "embedding_served_model_name")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("embedding_model", mode="before")
    @classmethod
    def _none_turns_off(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value

    @field_validator("lora_modules")
    @classmethod
    def _name_equals_path(cls, value: list[str]) -> list[str]:
        names = [module.partition("=")[0].strip() for module in value]
        for module, name in zip(value, names, strict=True):
            if not name or not module.partition("=")[2].strip():
                raise ValueError(f"lora_modules: {module!r} is not name=path")
        if len(set(names)) != len(names):
            raise ValueError("lora_modules: a name is given twice")
        return value

    @property
    def lora_adapters(self) -> dict[str, str]:
        """`lora_modules` as {name: path}."""
        return {m.partition("=")[0].strip(): m.partition("=")[2].strip() for m in self.lora_modules}

    @property
    def enable_lora(self) -> bool:
        return bool(self.lora_modules) or self.enable_lora_runtime_updates

    @model_validator(mode="after")
    def _check_parallelism(self) -> Settings:
        if self.tensor_parallel_size * self.pipeline_parallel_size > 1 and (
            self.distributed_executor_backend is None
        ):
            self.distributed_executor_backend = "mp"
        return self

    @property
    def playground_enabled(self) -> bool:
        """Whether /playground is served: as set, or on when authentication is off."""
        if self.playground is not None:
            return self.playground
        return not self.api_keys and self.api_key_file is None

    @property
    def model_name(self) -> str:
        """The name clients send as `model` and see in responses."""
        return self.served_model_name or self.model

    @property
    def embedding_model_name(self) -> str | None:
        """The name clients send as `model` to /v1/embeddings and /v1/rerank; None = off."""
        if self.embedding_model is None:
            return None
        return self.embedding_served_model_name or self.embedding_model


# Small enough for the real-engine test suite and the quick benchmark on 2 cores.
TEST_PROFILE: dict[str, Any] = {
    "max_model_len": 2048,
    "max_num_seqs": 8,
    "cpu_kvcache_space": 1,
    # On one GPU the integration tests hold up to three engines at once (the shared one, the
    # lifecycle tests' server and one they kill); CPU engines size by cpu_kvcache_space instead.
    "gpu_memory_utilization": 0.25,
    "enforce_eager": True,
    "seed": 0,
    # The shared test engine is the generation one; embedding tests start their own.
    "embedding_model": "none",
}
