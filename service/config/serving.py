"""Settings of what the gateway does around the engine: the APIs, admission, security,
observability (a base of `Settings`: only its fields live here)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode


class ServingSettings(BaseSettings):
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
        description="Responses kept in the store (shared by the replicas on one database) for "
        "`previous_response_id`, GET /v1/responses/{id} and background runs; beyond it the "
        "oldest finished ones go first. 0 = none is kept (`store` is ignored, `background` "
        "refused).",
    )
    response_store_ttl_seconds: float = Field(
        3600.0,
        gt=0.0,
        description="How long a stored response (and a background stream's events) is kept "
        "after it was created.",
    )
    conversation_store_entries: int = Field(
        10_000,
        ge=1,
        description="Conversations (/v1/conversations) kept in the store; beyond it those "
        "unused longest go first.",
    )
    conversation_ttl_seconds: float = Field(
        30 * 86_400.0,
        gt=0.0,
        description="How long a conversation is kept after it was last used (created, updated, "
        "or given items).",
    )
    background_heartbeat_seconds: float = Field(
        1.0,
        gt=0.0,
        description="How often a replica records that its background responses still run, and "
        "looks for cancels and failures recorded by other replicas (a cancel that reaches "
        "another replica stops the run within about this long).",
    )
    background_stale_seconds: float = Field(
        30.0,
        gt=0.0,
        description="A background response whose replica has not recorded it running for this "
        "long (the replica crashed or was killed) is marked `failed` by any replica.",
    )
    response_stream_poll_seconds: float = Field(
        0.25,
        gt=0.0,
        description="How often a stream of a background response that runs on another replica "
        "(GET /v1/responses/{id}?stream=true) reads the store for new events.",
    )

    # --- Task API
    max_batch_size: int = Field(64, ge=1, description="Most inputs in one task request.")
    max_text_chars: int = Field(
        200_000, ge=1, description="Most characters in one task input (longer: 413)."
    )
    classify_scoring: Literal["auto", "prefill", "stepwise"] = Field(
        "auto",
        description="How /v1/classify scores labels: auto = one request per label-trie node "
        "asking for its next tokens' logprobs (one 1-token request per text for single-token "
        "labels), where the engine supports it and no top-k logprobs request runs, else "
        "prefill; prefill = one prompt-logprobs request per label (no prefix-cache reads); "
        "stepwise = one forced-token request per trie edge. Same scores; costs in "
        "evals/README.md.",
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
