"""The engine contract: what the API layer needs from an inference engine, and nothing of vLLM.

The real adapter lives in `engine/vllm/`; `engine/fake.py` is a deterministic stand-in for
fast tests. Outputs are deltas: each `GenerationChunk` carries what is new since the last one,
so streaming costs nothing extra and non-streaming callers simply accumulate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from service.errors import UnsupportedParameterError
from service.telemetry.timings import EngineTimings

FinishReason = Literal["stop", "length", "abort"]
# The most top log-probabilities the engine returns per token: enough for the gateway's beam
# search (2 x 16 beams, plus the tokens a beam bans); requests from users stay under
# `max_logprobs`.
STEP_LOGPROBS_LIMIT = 64


@dataclass(frozen=True, kw_only=True)
class StructuredOutput:
    """Constrain the output; exactly one field is set."""

    json_schema: dict[str, Any] | None = None
    json_object: bool = False
    regex: str | None = None
    choice: tuple[str, ...] | None = None
    grammar: str | None = None


@dataclass(frozen=True, kw_only=True)
class SamplingOptions:
    max_tokens: int
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 disables top-k
    min_p: float = 0.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    include_stop_str_in_output: bool = False
    ignore_eos: bool = False
    min_tokens: int = 0
    logprobs: int | None = None  # top-k logprobs per generated token (0 = the sampled one only)
    prompt_logprobs: int | None = None
    logit_bias: dict[int, float] | None = None
    # Logprobs of exactly these token ids at each generated position (`logprobs` then unused);
    # only inside `Engine.token_scoring()`.
    logprob_token_ids: tuple[int, ...] = ()
    skip_special_tokens: bool = True
    structured: StructuredOutput | None = None
    # No n-gram of this size may appear twice in the output (0 = off); a logits processor that
    # engines may leave out (`Engine.supports_no_repeat_ngram`).
    no_repeat_ngram_size: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineRequest:
    """One prompt for the engine, with everything it runs under: the one spelling of an engine
    request, from the services that build it to the adapter that hands it to vLLM."""

    prompt_token_ids: list[int]
    options: SamplingOptions
    # Unique per engine request (`services/core/generation.py` makes it from the HTTP
    # request's id); empty until the request is sent.
    request_id: str = ""
    # The caller's class in vLLM's convention (lower runs earlier); engines without priority
    # scheduling ignore it.
    priority: int = 0
    # A loaded LoRA adapter to run on, by name (None: the base model).
    adapter: str | None = None


def no_repeat_ngram_off() -> UnsupportedParameterError:
    """The 400 for `no_repeat_ngram_size` on an engine started without its logits processor."""
    return UnsupportedParameterError(
        "no_repeat_ngram_size is turned off on this server (setting no_repeat_ngram, "
        "GATEWAY_NO_REPEAT_NGRAM; auto turns it off on GPUs, where its logits processor would "
        "hold vLLM to its older V1 model runner). Omit the field, or ask the operator to set "
        "GATEWAY_NO_REPEAT_NGRAM=on.",
        param="no_repeat_ngram_size",
    )


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token_id: int
    token: str
    logprob: float
    top: tuple[tuple[int, str, float], ...] = ()  # (token id, token text, logprob), best first


@dataclass(slots=True)
class SequenceDelta:
    index: int
    text: str
    token_ids: Sequence[int]
    logprobs: list[TokenLogprob] | None = None
    finish_reason: FinishReason | None = None
    stop_reason: int | str | None = None


@dataclass(frozen=True, slots=True)
class EngineProgress:
    """For the watchdog: whether the engine has work, and a marker that changes as it works."""

    busy: bool
    marker: tuple[int, ...]


@dataclass(slots=True)
class GenerationChunk:
    sequences: list[SequenceDelta]
    num_prompt_tokens: int
    finished: bool
    # Only on the first chunk, and only when prompt logprobs were asked for (echo with logprobs).
    prompt_logprobs: list[TokenLogprob | None] | None = field(default=None)
    # Only on the final chunk, when the engine keeps per-request stats (tracing, access log).
    timings: EngineTimings | None = None


@dataclass(frozen=True, slots=True)
class ParsedToolCall:
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass(frozen=True, slots=True)
class ParsedToolCalls:
    """A whole output split into text for the user and the tool calls it holds."""

    content: str | None
    calls: list[ParsedToolCall]


@dataclass(frozen=True, slots=True)
class ToolCallFragment:
    """A piece of one streamed tool call: its name on the first piece, then argument text."""

    index: int
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class ParsedDelta:
    """What one streamed step adds: user text, reasoning text and tool-call pieces."""

    content: str | None = None
    reasoning: str | None = None
    tool_calls: tuple[ToolCallFragment, ...] = ()


class ToolCallParser(Protocol):
    """The model's own tool-call format (e.g. Hermes `<tool_call>` tags) -> tool calls.

    One instance per output sequence: streaming keeps state between steps."""

    def extract(self, text: str) -> ParsedToolCalls: ...

    def finish(self) -> ParsedDelta | None:
        """What the parser held back until the output ended (streaming)."""
        ...

    def extract_streaming(self, delta_text: str, delta_ids: Sequence[int]) -> ParsedDelta | None:
        """The next step's text and token ids (the parser keeps what came before)."""
        ...


class ReasoningParser(Protocol):
    """The model's reasoning markup (e.g. `<think>...</think>`) -> (reasoning, content).

    One instance per output sequence: streaming keeps state between steps."""

    def extract(self, text: str) -> tuple[str | None, str | None]: ...

    def extract_streaming(self, delta_text: str, delta_ids: Sequence[int]) -> ParsedDelta | None:
        """The next step's text and token ids (the parser keeps what came before)."""
        ...


class Tokenizer(Protocol):
    eos_token_id: int | None

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]: ...

    def decode(self, token_ids: Sequence[int]) -> str: ...

    def token_text(self, token_id: int) -> str:
        """The text one token stands for, as OpenAI's logprobs `token` field shows it."""
        ...

    def apply_chat_template(
        self,
        messages: list[dict[str, Any]],
        *,
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: list[dict[str, Any]] | None = None,
        chat_template: str | None = None,
    ) -> str: ...

    @property
    def chat_template(self) -> str | None:
        """The model's own chat template (None when it has none)."""
        ...


@runtime_checkable
class Engine(Protocol):
    """An inference engine with continuous batching. One instance per app, owned by the lifespan."""

    @property
    def max_model_len(self) -> int: ...

    @property
    def tokenizer(self) -> Tokenizer: ...

    @property
    def max_num_seqs(self) -> int:
        """Sequences the engine batches per step (admission control's defaults derive from it)."""
        ...

    @property
    def supports_no_repeat_ngram(self) -> bool:
        """Whether `SamplingOptions.no_repeat_ngram_size` is honoured; an engine without it
        raises `no_repeat_ngram_off()` for a request that sets it."""
        ...

    def progress(self) -> EngineProgress: ...

    @property
    def kv_block_size(self) -> int | None:
        """Tokens per KV-cache block: the prefix cache reuses whole blocks only (None: unknown)."""
        ...

    def token_scoring(self) -> AbstractAsyncContextManager[bool]:
        """Enter before requests with `SamplingOptions.logprob_token_ids`: True when they may
        run now, False when the engine cannot give them (now or at all); score another way."""
        ...

    def tool_parser(self, tools: list[dict[str, Any]]) -> ToolCallParser | None:
        """A fresh parser of the configured tool-call format for one output (None: none set)."""
        ...

    def reasoning_parser(self) -> ReasoningParser | None:
        """A fresh parser of the configured reasoning format for one output (None: off)."""
        ...

    def generate(self, request: EngineRequest, *, stream: bool) -> AsyncIterator[GenerationChunk]:
        """Yield deltas (`stream=True`) or one final chunk. Leaving the iterator early aborts."""
        ...

    def adapters(self) -> list[str]:
        """The LoRA adapters loaded now, by name, in load order."""
        ...

    async def load_adapter(self, name: str, path: str) -> None:
        """Load a LoRA adapter (a PEFT folder) under `name`; `InvalidRequestError` when it
        cannot be loaded (the engine goes on serving), `UnsupportedParameterError` when the
        engine runs without LoRA."""
        ...

    async def unload_adapter(self, name: str) -> None:
        """Unload an adapter; `ModelNotFoundError` (param `lora_name`) when none has `name`."""
        ...

    async def abort(self, request_id: str) -> None: ...

    async def check_health(self) -> None:
        """Raise `EngineUnavailableError` when the engine cannot serve."""
        ...

    def shutdown(self) -> None: ...


@runtime_checkable
class EmbeddingEngine(Protocol):
    """A pooling engine: one vector per input. Optional beside the `Engine`, owned likewise."""

    @property
    def max_model_len(self) -> int: ...

    @property
    def tokenizer(self) -> Tokenizer: ...

    @property
    def dimensions(self) -> int:
        """The length of every vector (the model's hidden size)."""
        ...

    @property
    def truncatable(self) -> bool:
        """Whether a request may ask for fewer dimensions (a Matryoshka model)."""
        ...

    @property
    def max_num_seqs(self) -> int:
        """Inputs the engine batches per step (its admission bounds derive from it)."""
        ...

    def progress(self) -> EngineProgress: ...

    async def embed(
        self, inputs: list[list[int]], request_id: str, *, dimensions: int | None = None
    ) -> list[list[float]]:
        """One normalized vector per tokenized input, in order; all run as one engine batch.
        `dimensions` (only when `truncatable`) shortens every vector."""
        ...

    async def check_health(self) -> None:
        """Raise `EngineUnavailableError` when the engine cannot serve."""
        ...

    def shutdown(self) -> None: ...
