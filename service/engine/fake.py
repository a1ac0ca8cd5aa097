"""A deterministic engine for fast tests: no model, no torch, same contract as the vLLM adapter.

It "generates" by cycling through a fixed reply, one word-token at a time, honouring max_tokens,
stop strings, n, logprobs and min_tokens, so the API layer can be tested without a model.
Tests can make it fail (`fail_with`), hold a generation open (`gate`), or slow it (`delay`).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from service.engine.base import (
    EngineProgress,
    GenerationChunk,
    SamplingOptions,
    SequenceDelta,
    TokenLogprob,
    no_repeat_ngram_off,
)
from service.telemetry.timings import EngineTimings

DEFAULT_REPLY = "The capital of France is Paris."


def example_of(schema: Any) -> Any:
    """A small value that satisfies a simple JSON schema: what a constrained engine might write.

    Covers what tool and response schemas use (objects, arrays, enums, anyOf, scalars); for
    anything else, `{"answer": "Paris"}`."""
    if not isinstance(schema, dict):
        return {"answer": "Paris"}
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return example_of(schema[key][0])
    kind = schema.get("type")
    if kind == "array":
        return [example_of(schema.get("items", {})) for _ in range(schema.get("minItems", 1))]
    if kind == "string":
        return "Paris"
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: example_of(sub) for name, sub in props.items()}
    return {"answer": "Paris"}


class FakeTokenizer:
    """Whitespace 'tokenizer': each word (with its leading space) is one token id."""

    eos_token_id: int | None = 0

    def __init__(self) -> None:
        self._ids: dict[str, int] = {"<eos>": 0}
        self._words: list[str] = ["<eos>"]

    def _id(self, word: str) -> int:
        if word not in self._ids:
            self._ids[word] = len(self._words)
            self._words.append(word)
        return self._ids[word]

    def split(self, text: str) -> list[str]:
        words: list[str] = []
        for i, word in enumerate(text.split(" ")):
            if word:
                words.append(word if i == 0 and not words else " " + word)
        return words

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        return [self._id(w) for w in self.split(text)]

    def decode(self, token_ids: Sequence[int]) -> str:
        return "".join(self.token_text(t) for t in token_ids)

    def token_text(self, token_id: int) -> str:
        return self._words[token_id] if 0 < token_id < len(self._words) else ""

    chat_template: str | None = None

    def apply_chat_template(
        self,
        messages: list[dict[str, Any]],
        *,
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: list[dict[str, Any]] | None = None,
        chat_template: str | None = None,
    ) -> str:
        # No turn terminators: continuing the final message is ending the text after it.
        turns = [f"{m['role']}: {m.get('content') or ''}" for m in messages]
        if tools:
            turns.insert(0, "tools: " + " ".join(t["function"]["name"] for t in tools))
        return " ".join([*turns, "assistant:"] if add_generation_prompt else turns)


class FakeEngine:
    def __init__(
        self,
        *,
        reply: str = DEFAULT_REPLY,
        constrained_reply: str | None = None,
        max_model_len: int = 256,
        max_num_seqs: int = 8,
        no_repeat_ngram: bool = True,
    ) -> None:
        self._tokenizer = FakeTokenizer()
        # Accepts no_repeat_ngram_size (its reply ignores it) unless built as without it.
        self._no_repeat_ngram = no_repeat_ngram
        self._max_num_seqs = max_num_seqs
        self.active = 0  # open generate() calls
        self._chunks = 0  # chunks yielded, ever
        self._reply = reply
        # What it writes under a grammar or regex constraint (None: its reply, as if the
        # constraint allowed it).
        self._constrained_reply = constrained_reply
        self._max_model_len = max_model_len
        self.fail_with: BaseException | None = None
        self.gate: asyncio.Event | None = None
        self.delay = 0.0  # seconds each client generation takes before its output (warm-up: 0)
        self.requests: list[tuple[list[int], SamplingOptions, str]] = []
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

    def tool_parser(self, tools: list[dict[str, Any]]) -> None:
        return None  # no tool-call format: `auto` answers in text; required/named still call

    def reasoning_parser(self) -> None:
        return None

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
        if structured and self._constrained_reply is not None:
            return self._tokenizer.split(self._constrained_reply)
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
        self,
        prompt_token_ids: list[int],
        options: SamplingOptions,
        request_id: str,
        *,
        stream: bool,
        priority: int = 0,
        adapter: str | None = None,
    ) -> AsyncIterator[GenerationChunk]:
        if options.no_repeat_ngram_size and not self._no_repeat_ngram:
            raise no_repeat_ngram_off()
        self.requests.append((prompt_token_ids, options, request_id))
        self._loop = asyncio.get_running_loop()
        queued = time.monotonic()
        self.active += 1
        try:
            startup = request_id.startswith("warmup")  # start-up is never held nor slowed
            if self.gate is not None and not startup:
                await self.gate.wait()
            if self.delay and not startup:
                await asyncio.sleep(self.delay)
            if self.fail_with is not None:
                raise self.fail_with
            scheduled = time.monotonic()
            prompt_logprobs: list[TokenLogprob | None] | None = None
            if options.prompt_logprobs is not None:
                prompt_logprobs = [None] + [
                    TokenLogprob(t, self._tokenizer.token_text(t), -math.log(2))
                    for t in prompt_token_ids[1:]
                ]
            full = [self._sequence(i, options, adapter) for i in range(options.n)]
            n_prompt = len(prompt_token_ids)
            if not stream:
                now = time.monotonic()
                timings = EngineTimings(queued, scheduled, now, now)
                self._chunks += 1
                yield GenerationChunk(full, n_prompt, True, prompt_logprobs, timings)
                return
            first = True
            first_token = scheduled
            for seq in full:
                for k, token_id in enumerate(seq.token_ids):
                    last = k == len(seq.token_ids) - 1
                    piece = self._tokenizer.token_text(token_id)
                    if last:  # the last delta carries whatever the stop string trimmed
                        piece = seq.text[len(self._tokenizer.decode(seq.token_ids[:k])) :]
                    delta = SequenceDelta(
                        seq.index,
                        piece,
                        [token_id],
                        seq.logprobs[k : k + 1] if seq.logprobs is not None else None,
                        seq.finish_reason if last else None,
                        seq.stop_reason if last else None,
                    )
                    if first:
                        first_token = time.monotonic()
                    self._chunks += 1
                    yield GenerationChunk(
                        [delta], n_prompt, False, prompt_logprobs if first else None
                    )
                    first = False
                    await asyncio.sleep(0)
                if not seq.token_ids:
                    yield GenerationChunk(
                        [SequenceDelta(seq.index, seq.text, [], [], seq.finish_reason)],
                        n_prompt,
                        False,
                        None,
                    )
            timings = EngineTimings(queued, scheduled, first_token, time.monotonic())
            yield GenerationChunk([], n_prompt, True, None, timings)
        except (asyncio.CancelledError, GeneratorExit):
            self.aborted.append(request_id)
            raise
        finally:
            self.active -= 1

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
