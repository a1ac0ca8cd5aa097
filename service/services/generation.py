"""Running prepared prompts on the engine: to completion, or as one merged stream of deltas.

One HTTP request may become several engine requests (a list of prompts); each gets the id
`{HTTP request id}-{random}-{prompt index}` (client ids repeat, and one request may call the engine
more than once) and they run concurrently, so continuous batching serves them together. Leaving a
stream early (client gone) closes every engine generator, which aborts them.

This is where the engine is called, so this is where the request context
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
from dataclasses import dataclass, field
from typing import Any, TypeVar

from service.engine.base import (
    Engine,
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
class EngineJob:
    prompt_token_ids: list[int]
    options: SamplingOptions


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


def _context() -> RequestContext:
    """The request's context, or a throwaway one, so the token path needs no None checks."""
    return context.current() or RequestContext("", 0.0)


def _log_io(engine: Engine, engine_request_id: str, job: EngineJob, outputs: list[str]) -> None:
    """Only with `log_prompts`: prompts and outputs may hold personal data."""
    prompt = engine.tokenizer.decode(job.prompt_token_ids)
    fields = {"engine_request_id": engine_request_id, "prompt": prompt, "outputs": outputs}
    logger.info("engine request io", extra={"fields": fields})


async def run_to_completion(
    engine: Engine, jobs: list[EngineJob], request_id: str
) -> list[PromptResult]:
    ids = engine_request_ids(request_id, len(jobs))
    ctx = _context()
    priority = ctx.priority

    async def run(index: int, job: EngineJob) -> PromptResult:
        result = PromptResult(
            len(job.prompt_token_ids), [SequenceResult() for _ in range(job.options.n)]
        )
        async for chunk in engine.generate(
            job.prompt_token_ids,
            job.options,
            ids[index],
            stream=False,
            priority=priority,
            adapter=ctx.adapter,
        ):
            _accumulate(result, chunk)
            if chunk.timings is not None:
                ctx.engine_timings.append((ids[index], chunk.timings))
        return result

    ctx.engine_requests += len(jobs)
    ctx.engine_enter()
    try:
        if len(jobs) == 1:
            results = [await run(0, jobs[0])]
        else:
            results = await gather_or_cancel([run(i, job) for i, job in enumerate(jobs)])
    finally:
        ctx.engine_exit()
    for i, result in enumerate(results):
        ctx.prompt_tokens += result.num_prompt_tokens
        ctx.completion_tokens += sum(len(s.token_ids) for s in result.sequences)
        if ctx.log_prompts:
            _log_io(engine, ids[i], jobs[i], [s.text for s in result.sequences])
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
    engine: Engine, jobs: list[EngineJob], request_id: str
) -> AsyncIterator[tuple[int, GenerationChunk]]:
    """(prompt index, delta) pairs from all jobs, in the order the engine produces them."""
    ids = engine_request_ids(request_id, len(jobs))
    ctx = _context()
    ctx.engine_requests += len(jobs)
    started = [False] * len(jobs)
    texts: dict[tuple[int, int], list[str]] | None = {} if ctx.log_prompts else None
    chunks = _engine_streams(engine, jobs, ids, ctx.priority, ctx.adapter)
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
            tokens = 0
            for delta in chunk.sequences:
                tokens += len(delta.token_ids)
                if texts is not None:
                    texts.setdefault((index, delta.index), []).append(delta.text)
            if tokens:
                ctx.completion_tokens += tokens
                ctx.token_times.append(now)
            if chunk.timings is not None:
                ctx.engine_timings.append((ids[index], chunk.timings))
            yield index, chunk
    finally:
        await chunks.aclose()  # now, not when collected: closing aborts the engine requests
        if texts is not None:
            for i, job in enumerate(jobs):
                outputs = ["".join(texts.get((i, k), [])) for k in range(job.options.n)]
                _log_io(engine, ids[i], job, outputs)


async def _engine_streams(
    engine: Engine, jobs: list[EngineJob], ids: list[str], priority: int, adapter: str | None
) -> AsyncGenerator[tuple[int, GenerationChunk], None]:
    if len(jobs) == 1:
        job = jobs[0]
        async for chunk in engine.generate(
            job.prompt_token_ids,
            job.options,
            ids[0],
            stream=True,
            priority=priority,
            adapter=adapter,
        ):
            yield 0, chunk
        return

    queue: asyncio.Queue[tuple[int, GenerationChunk] | BaseException | None] = asyncio.Queue()

    async def pump(index: int, job: EngineJob) -> None:
        try:
            async for chunk in engine.generate(
                job.prompt_token_ids,
                job.options,
                ids[index],
                stream=True,
                priority=priority,
                adapter=adapter,
            ):
                queue.put_nowait((index, chunk))
        except Exception as err:
            queue.put_nowait(err)
        finally:
            queue.put_nowait(None)

    tasks = [asyncio.create_task(pump(i, job)) for i, job in enumerate(jobs)]
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
