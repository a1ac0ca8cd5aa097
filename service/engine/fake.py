"""A deterministic engine for fast tests: no model, no torch, same contract as the vLLM adapter.

It "generates" by cycling through a fixed reply, one word-token at a time, honouring max_tokens,
stop strings, n, logprobs and min_tokens, so the API layer can be tested without a model.
Tests can make it fail (`fail_with`), hold a generation open (`gate`), or slow it (`delay`).

A test that needs other output hands it a handler, the way httpx's `MockTransport` takes one:
a function from the call (`FakeCall`: the engine request, whether it streams, and the reply the
fake would give by itself) to the chunks to yield. Recording, gating and abort accounting stay
the fake's, whatever the handler does:

    async def twice_as_slow(call: FakeCall) -> AsyncIterator[GenerationChunk]:
        async for chunk in call.reply():
            yield chunk

    engine = FakeEngine(handler=twice_as_slow)
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.engine.base import (
    EngineProgress,
    EngineRequest,
    GenerationChunk,
    ReasoningParser,
    SamplingOptions,
    SequenceDelta,
    TokenLogprob,
    ToolCallParser,
    no_repeat_ngram_off,
)
from service.engine.fake_tokenizer import FakeTokenizer, example_of
from service.telemetry.timings import EngineTimings

DEFAULT_REPLY = "The capital of France is Paris."

__all__ = [
    "DEFAULT_REPLY",
    "FakeCall",
    "FakeEngine",
    "FakeTokenizer",
    "default_handler",
    "example_of",
]


@dataclass(frozen=True, slots=True)
class FakeCall:
    """One `generate` call, as a handler sees it."""

    request: EngineRequest
    stream: bool
    engine: FakeEngine
    queued: float  # time.monotonic() when the call arrived (its timings' queue start)

    def reply(self) -> AsyncIterator[GenerationChunk]:
        """What the fake engine answers by itself: the default handler's chunks."""
        return self.engine.reply(self.request, stream=self.stream, queued=self.queued)


Handler = Callable[[FakeCall], AsyncIterator[GenerationChunk]]


def default_handler(call: FakeCall) -> AsyncIterator[GenerationChunk]:
    return call.reply()


class FakeEngine:
    def __init__(
        self,
        *,
        reply: str = DEFAULT_REPLY,
        max_model_len: int = 256,
        max_num_seqs: int = 8,
        no_repeat_ngram: bool = True,
        handler: Handler = default_handler,
        reasoning: Callable[[], ReasoningParser] | None = None,
        tool_parser: Callable[[list[dict[str, Any]]], ToolCallParser] | None = None,
    ) -> None:
        self.handler = handler
        # A reasoning format to parse the reply with (a fresh parser per output), like the
        # `reasoning_parser` setting on the real engine; None: no reasoning format.
        self._reasoning = reasoning
        # Likewise a tool-call format that `auto` output is read with (None: `auto` answers
        # in text; required and named choices call without one).
        self._tool_parser = tool_parser
        self._tokenizer = FakeTokenizer()
        # Accepts no_repeat_ngram_size (its reply ignores it) unless built as without it.
        self._no_repeat_ngram = no_repeat_ngram
        self._max_num_seqs = max_num_seqs
        self.active = 0  # open generate() calls
        self._chunks = 0  # chunks yielded, ever
        self._reply = reply
        self._max_model_len = max_model_len
        self.fail_with: BaseException | None = None
        self.gate: asyncio.Event | None = None
        self.delay = 0.0  # seconds each client generation takes before its output (warm-up: 0)
        self.requests: list[EngineRequest] = []  # every generate() call's, in order
        self.aborted: list[str] = []
        self.healthy = True
        self.shut_down = False
        self.lora = True  # whether adapters may be loaded
        self.scores_token_ids = True  # what token_scoring() answers
        self._adapters: dict[str, str] = {}  # name -> path
        self._loop: asyncio.AbstractEventLoop | None = None

    def open_gate(self) -> None:
        """Release generations held by `gate`; safe to call from any thread."""
        gate = self.gate
        if gate is None:
            return
        if self._loop is None:
            gate.set()
        else:
            self._loop.call_soon_threadsafe(gate.set)

    @property
    def max_model_len(self) -> int:
        return self._max_model_len

    @property
    def tokenizer(self) -> FakeTokenizer:
        return self._tokenizer

    @property
    def max_num_seqs(self) -> int:
        return self._max_num_seqs

    @property
    def supports_no_repeat_ngram(self) -> bool:
        return self._no_repeat_ngram

    def tool_parser(self, tools: list[dict[str, Any]]) -> ToolCallParser | None:
        return self._tool_parser(tools) if self._tool_parser is not None else None

    def reasoning_parser(self) -> ReasoningParser | None:
        return self._reasoning() if self._reasoning is not None else None

    def progress(self) -> EngineProgress:
        return EngineProgress(self.active > 0, (self._chunks,))

    @property
    def kv_block_size(self) -> int | None:
        return 16

    @asynccontextmanager
    async def token_scoring(self) -> AsyncIterator[bool]:
        yield self.scores_token_ids

    def _reply_words(self, options: SamplingOptions, adapter: str | None) -> list[str]:
        structured = options.structured
        if structured and structured.json_schema is not None:
            return self._tokenizer.split(json.dumps(example_of(structured.json_schema)))
        if structured and structured.json_object:
            return self._tokenizer.split(json.dumps({"answer": "Paris"}))
        if structured and structured.choice:
            return self._tokenizer.split(structured.choice[0])
        if adapter is not None:  # an adapter changes the output: it speaks first
            return self._tokenizer.split(f"{adapter}: {self._reply}")
        return self._tokenizer.split(self._reply)

    def adapters(self) -> list[str]:
        return list(self._adapters)

    async def load_adapter(self, name: str, path: str) -> None:
        from service.errors import InvalidRequestError, UnsupportedParameterError

        if not self.lora:
            raise UnsupportedParameterError("LoRA is off.", param="lora_name")
        if not await asyncio.to_thread(Path(path).is_dir):
            raise InvalidRequestError(f"No adapter at '{path}'.", param="lora_path")
        self._adapters[name] = path

    async def unload_adapter(self, name: str) -> None:
        from service.errors import ModelNotFoundError

        if self._adapters.pop(name, None) is None:
            raise ModelNotFoundError(f"No adapter '{name}' is loaded.", param="lora_name")

    def _sequence(
        self, index: int, options: SamplingOptions, adapter: str | None = None
    ) -> SequenceDelta:
        if options.logprob_token_ids:
            return self._scoring_sequence(index, options)
        words = self._reply_words(options, adapter)
        text, finish, stop_reason = "", "length", None
        ids: list[int] = []
        while len(ids) < options.max_tokens:
            word = words[len(ids) % len(words)]
            hit = next((s for s in options.stop if s in text + word), None)
            if hit is not None and len(ids) >= options.min_tokens:
                cut = (text + word).index(hit)
                text = (text + word)[
                    : cut + (len(hit) if options.include_stop_str_in_output else 0)
                ]
                finish, stop_reason = "stop", hit
                break
            ids.append(self._tokenizer.encode(word)[0])
            text += word
            if len(ids) == len(words) and not options.ignore_eos and len(ids) >= options.min_tokens:
                finish = "stop"
                break
        logprobs = None
        if options.logprobs is not None:
            logprobs = [
                TokenLogprob(
                    token_id=t,
                    token=self._tokenizer.token_text(t),
                    logprob=-0.5,
                    top=tuple(
                        (t, self._tokenizer.token_text(t), -0.5 - k)
                        for k in range(options.logprobs)
                    ),
                )
                for t in ids
            ]
        return SequenceDelta(index, text, ids, logprobs, finish, stop_reason)  # type: ignore[arg-type]

    @staticmethod
    def _scoring_sequence(index: int, options: SamplingOptions) -> SequenceDelta:
        """A token-scoring request: the token its logit_bias forces (else the first asked id),
        and each asked id at -log 2 in every position, as prompt logprobs are here."""
        bias = options.logit_bias or {}
        token = max(bias, key=bias.__getitem__) if bias else options.logprob_token_ids[0]
        asked = tuple((t, "", -math.log(2)) for t in options.logprob_token_ids)
        ids = [token] * options.max_tokens
        logprobs = [TokenLogprob(token, "", -math.log(2), asked) for _ in ids]
        return SequenceDelta(index, "", ids, logprobs, "length")

    async def generate(
        self, request: EngineRequest, *, stream: bool
    ) -> AsyncIterator[GenerationChunk]:
        if request.options.no_repeat_ngram_size and not self._no_repeat_ngram:
            raise no_repeat_ngram_off()
        self.requests.append(request)
        self._loop = asyncio.get_running_loop()
        queued = time.monotonic()
        self.active += 1
        try:
            # Start-up (its warm-up request, classify's preset priors) is never held nor slowed.
            startup = request.request_id.startswith("warmup")
            if self.gate is not None and not startup:
                await self.gate.wait()
            if self.delay and not startup:
                await asyncio.sleep(self.delay)
            if self.fail_with is not None:
                raise self.fail_with
            async for chunk in self.handler(FakeCall(request, stream, self, queued)):
                self._chunks += 1
                yield chunk
        except (asyncio.CancelledError, GeneratorExit):
            self.aborted.append(request.request_id)
            raise
        finally:
            self.active -= 1

    async def reply(
        self, request: EngineRequest, *, stream: bool, queued: float | None = None
    ) -> AsyncIterator[GenerationChunk]:
        """The fake's own output for `request`: whole, or one word-token per delta."""
        options, prompt = request.options, request.prompt_token_ids
        scheduled = time.monotonic()
        queued = scheduled if queued is None else queued
        prompt_logprobs = (
            self._prompt_logprobs(prompt) if options.prompt_logprobs is not None else None
        )
        full = [self._sequence(i, options, request.adapter) for i in range(options.n)]
        if not stream:
            now = time.monotonic()
            yield GenerationChunk(
                full,
                len(prompt),
                True,
                prompt_logprobs,
                EngineTimings(queued, scheduled, now, now),
            )
            return
        first_token: float | None = None
        for seq in full:
            for delta in self._deltas(seq):
                first_token = first_token or time.monotonic()
                yield GenerationChunk([delta], len(prompt), False, prompt_logprobs)
                prompt_logprobs = None  # only on the first chunk
                await asyncio.sleep(0)
        timings = EngineTimings(queued, scheduled, first_token or scheduled, time.monotonic())
        yield GenerationChunk([], len(prompt), True, None, timings)

    def _prompt_logprobs(self, prompt: list[int]) -> list[TokenLogprob | None]:
        return [None] + [
            TokenLogprob(t, self._tokenizer.token_text(t), -math.log(2)) for t in prompt[1:]
        ]

    def _deltas(self, seq: SequenceDelta) -> list[SequenceDelta]:
        """A whole sequence as one delta per token; the last carries what a stop string
        trimmed and the finish reason. A sequence without tokens is one empty delta."""
        if not seq.token_ids:
            return [SequenceDelta(seq.index, seq.text, [], [], seq.finish_reason)]
        deltas = []
        last = len(seq.token_ids) - 1
        for k, token_id in enumerate(seq.token_ids):
            piece = self._tokenizer.token_text(token_id)
            if k == last:
                piece = seq.text[len(self._tokenizer.decode(seq.token_ids[:k])) :]
            deltas.append(
                SequenceDelta(
                    seq.index,
                    piece,
                    [token_id],
                    seq.logprobs[k : k + 1] if seq.logprobs is not None else None,
                    seq.finish_reason if k == last else None,
                    seq.stop_reason if k == last else None,
                )
            )
        return deltas

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)

    async def check_health(self) -> None:
        from service.errors import EngineDeadError

        if not self.healthy:
            raise EngineDeadError("The engine is not healthy.")

    def shutdown(self) -> None:
        """Like the real engine: requests in flight fail with EngineDeadError."""
        from service.errors import EngineDeadError

        self.shut_down = True
        self.healthy = False
        self.fail_with = EngineDeadError("The engine has stopped.")
        self.open_gate()
