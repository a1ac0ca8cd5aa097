"""Running prepared prompts on the engine: to completion, or as one merged stream of deltas.

One HTTP request may become several engine requests (a list of prompts); each gets the id
`{HTTP request id}-{random}-{prompt index}` (client ids repeat, and one request may call the engine
more than once) and they run concurrently, so continuous batching serves them together. Leaving a
stream early (client gone) closes every engine generator, which aborts them.

Every engine request carries its caller's priority and adapter (`Dispatch`, one per prepared
request). This is where the engine is called, so this is where the request context
(`service.telemetry.context`) learns the engine time, the tokens in and out and, for streams,
when each token event arrived.
Per streamed chunk that is two clock reads and a few additions; metrics are made at request end.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from service.caller import Caller
from service.engine.base import (
    Engine,
    EngineRequest,
    FinishReason,
    GenerationChunk,
    SamplingOptions,
    TokenLogprob,
)
from service.telemetry import context
from service.telemetry.context import RequestContext

T = TypeVar("T")

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Dispatch:
    """What every engine request of one prepared request runs under: the caller's priority
    class and the LoRA adapter its `model` named (None: the base model)."""

    priority: int = 0
    adapter: str | None = None

    @classmethod
    def of(cls, caller: Caller, adapter: str | None = None) -> Dispatch:
        return cls(caller.priority, adapter)

    def request(self, prompt_token_ids: list[int], options: SamplingOptions) -> EngineRequest:
        return EngineRequest(
            prompt_token_ids=prompt_token_ids,
            options=options,
            priority=self.priority,
            adapter=self.adapter,
        )


@dataclass(slots=True)
class SequenceResult:
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    stop_reason: int | str | None = None


@dataclass(slots=True)
class PromptResult:
    num_prompt_tokens: int
    sequences: list[SequenceResult]
    prompt_logprobs: list[TokenLogprob | None] | None = None


def _accumulate(result: PromptResult, chunk: GenerationChunk) -> None:
    if chunk.prompt_logprobs is not None:
        result.prompt_logprobs = chunk.prompt_logprobs
    result.num_prompt_tokens = chunk.num_prompt_tokens or result.num_prompt_tokens
    for delta in chunk.sequences:
        seq = result.sequences[delta.index]
        seq.text += delta.text
        seq.token_ids.extend(delta.token_ids)
        if delta.logprobs:
            seq.logprobs.extend(delta.logprobs)
        if delta.finish_reason is not None:
            seq.finish_reason = delta.finish_reason
            seq.stop_reason = delta.stop_reason


def engine_request_ids(fallback: str, count: int) -> list[str]:
    """`{request id}-{random}-{i}`: the HTTP request's id (`fallback` outside a request)."""
    base = context.current_request_id() or fallback
    nonce = secrets.token_hex(4)
    return [f"{base}-{nonce}-{i}" for i in range(count)]


def _with_ids(requests: list[EngineRequest], fallback: str) -> list[EngineRequest]:
    ids = engine_request_ids(fallback, len(requests))
    return [replace(r, request_id=i) for r, i in zip(requests, ids, strict=True)]


def _context() -> RequestContext:
    """The request's context, or a throwaway one, so the token path needs no None checks."""
    return context.current() or RequestContext("", 0.0)


def _log_io(engine: Engine, request: EngineRequest, outputs: list[str]) -> None:
    """Only with `log_prompts`: prompts and outputs may hold personal data."""
    prompt = engine.tokenizer.decode(request.prompt_token_ids)
    fields = {"engine_request_id": request.request_id, "prompt": prompt, "outputs": outputs}
    logger.info("engine request io", extra={"fields": fields})


async def run_to_completion(
    engine: Engine, requests: list[EngineRequest], request_id: str
) -> list[PromptResult]:
    """Run every request to its end, concurrently; results in the same order."""
    requests = _with_ids(requests, request_id)
    ctx = _context()

    async def run(request: EngineRequest) -> PromptResult:
        n = request.options.n
        result = PromptResult(len(request.prompt_token_ids), [SequenceResult() for _ in range(n)])
        async for chunk in engine.generate(request, stream=False):
            _accumulate(result, chunk)
            if chunk.timings is not None:
                ctx.engine_timings.append((request.request_id, chunk.timings))
        return result

    ctx.engine_requests += len(requests)
    ctx.engine_enter()
    try:
        if len(requests) == 1:
            results = [await run(requests[0])]
        else:
            results = await gather_or_cancel([run(r) for r in requests])
    finally:
        ctx.engine_exit()
    for request, result in zip(requests, results, strict=True):
        ctx.prompt_tokens += result.num_prompt_tokens
        ctx.completion_tokens += sum(len(s.token_ids) for s in result.sequences)
        if ctx.log_prompts:
            _log_io(engine, request, [s.text for s in result.sequences])
    return results


@asynccontextmanager
async def first_failure_cancels() -> AsyncIterator[asyncio.TaskGroup]:
    """A task group whose first failure cancels the others and is raised as itself (not as
    an exception group): no orphaned engine work, and callers catch the gateway's errors."""
    try:
        async with asyncio.TaskGroup() as group:
            yield group
    except BaseExceptionGroup as grouped:
        raise grouped.exceptions[0] from None


async def gather_or_cancel(coroutines: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Run concurrently; the first failure cancels the rest."""
    async with first_failure_cancels() as group:
        tasks = [group.create_task(c) for c in coroutines]
    return [task.result() for task in tasks]


async def stream_deltas(
    engine: Engine, requests: list[EngineRequest], request_id: str
) -> AsyncIterator[tuple[int, GenerationChunk]]:
    """(prompt index, delta) pairs from all requests, in the order the engine produces them."""
    requests = _with_ids(requests, request_id)
    ctx = _context()
    ctx.engine_requests += len(requests)
    started = [False] * len(requests)
    texts: dict[tuple[int, int], list[str]] | None = {} if ctx.log_prompts else None
    chunks = _engine_streams(engine, requests)
    try:
        while True:
            ctx.engine_enter()
            try:
                index, chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            finally:
                now = ctx.engine_exit()
            if not started[index]:
                started[index] = True
                ctx.prompt_tokens += chunk.num_prompt_tokens
            _count_chunk(ctx, chunk, now, requests[index].request_id)
            if texts is not None:
                for delta in chunk.sequences:
                    texts.setdefault((index, delta.index), []).append(delta.text)
            yield index, chunk
    finally:
        await chunks.aclose()  # now, not when collected: closing aborts the engine requests
        if texts is not None:
            for i, request in enumerate(requests):
                outputs = ["".join(texts.get((i, k), [])) for k in range(request.options.n)]
                _log_io(engine, request, outputs)


def _count_chunk(ctx: RequestContext, chunk: GenerationChunk, now: float, request_id: str) -> None:
    """A streamed chunk's tokens, the time they arrived, and the engine's own timings."""
    tokens = sum(len(delta.token_ids) for delta in chunk.sequences)
    if tokens:
        ctx.completion_tokens += tokens
        ctx.token_times.append(now)
    if chunk.timings is not None:
        ctx.engine_timings.append((request_id, chunk.timings))


async def _engine_streams(
    engine: Engine, requests: list[EngineRequest]
) -> AsyncGenerator[tuple[int, GenerationChunk], None]:
    if len(requests) == 1:
        async for chunk in engine.generate(requests[0], stream=True):
            yield 0, chunk
        return

    queue: asyncio.Queue[tuple[int, GenerationChunk] | BaseException | None] = asyncio.Queue()

    async def pump(index: int, request: EngineRequest) -> None:
        try:
            async for chunk in engine.generate(request, stream=True):
                queue.put_nowait((index, chunk))
        except Exception as err:
            queue.put_nowait(err)
        finally:
            queue.put_nowait(None)

    tasks = [asyncio.create_task(pump(i, request)) for i, request in enumerate(requests)]
    try:
        remaining = len(tasks)
        while remaining:
            item = await queue.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
