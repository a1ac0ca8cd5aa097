"""The engine contract: what the API layer needs from an inference engine, and nothing of vLLM.

The real adapter lives in `engine/vllm/`; `engine/fake.py` is a deterministic stand-in for
fast tests. Outputs are deltas: each `GenerationChunk` carries what is new since the last one,
so streaming costs nothing extra and non-streaming callers simply accumulate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

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
    skip_special_tokens: bool = True
    structured: StructuredOutput | None = None
    # No n-gram of this size may appear twice in the output (0 = off); a logits processor.
    no_repeat_ngram_size: int = 0


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


class Tokenizer(Protocol):
    eos_token_id: int | None

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]: ...

    def decode(self, token_ids: Sequence[int]) -> str: ...

    def token_text(self, token_id: int) -> str:
        """The text one token stands for, as OpenAI's logprobs `token` field shows it."""
        ...

    def apply_chat_template(
        self, messages: list[dict[str, Any]], *, add_generation_prompt: bool = True
    ) -> str: ...


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

    def progress(self) -> EngineProgress: ...

    def generate(
        self,
        prompt_token_ids: list[int],
        options: SamplingOptions,
        request_id: str,
        *,
        stream: bool,
        priority: int = 0,
    ) -> AsyncIterator[GenerationChunk]:
        """Yield deltas (`stream=True`) or one final chunk. Leaving the iterator early aborts.

        `priority` is the caller's class in vLLM's convention (lower runs earlier); engines
        without priority scheduling ignore it."""
        ...

    async def abort(self, request_id: str) -> None: ...

    async def check_health(self) -> None:
        """Raise `EngineUnavailableError` when the engine cannot serve."""
        ...

    def shutdown(self) -> None: ...
