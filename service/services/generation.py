"""Running prepared prompts on the engine: to completion, or as one merged stream of deltas.

One HTTP request may become several engine requests (a list of prompts); each gets the id
`{request id}-{prompt index}` and they run concurrently, so continuous batching serves them
together. Leaving a stream early (client gone) closes every engine generator, which aborts them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from service.engine.base import (
    Engine,
    FinishReason,
    GenerationChunk,
    SamplingOptions,
    TokenLogprob,
)


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


async def run_to_completion(
    engine: Engine, jobs: list[EngineJob], request_id: str
) -> list[PromptResult]:
    async def run(index: int, job: EngineJob) -> PromptResult:
        result = PromptResult(
            len(job.prompt_token_ids), [SequenceResult() for _ in range(job.options.n)]
        )
        async for chunk in engine.generate(
            job.prompt_token_ids, job.options, f"{request_id}-{index}", stream=False
        ):
            _accumulate(result, chunk)
        return result

    if len(jobs) == 1:
        return [await run(0, jobs[0])]
    try:
        async with asyncio.TaskGroup() as group:  # one failure cancels the others
            tasks = [group.create_task(run(i, job)) for i, job in enumerate(jobs)]
    except BaseExceptionGroup as grouped:
        raise grouped.exceptions[0] from None
    return [task.result() for task in tasks]


async def stream_deltas(
    engine: Engine, jobs: list[EngineJob], request_id: str
) -> AsyncIterator[tuple[int, GenerationChunk]]:
    """(prompt index, delta) pairs from all jobs, in the order the engine produces them."""
    if len(jobs) == 1:
        job = jobs[0]
        async for chunk in engine.generate(
            job.prompt_token_ids, job.options, f"{request_id}-0", stream=True
        ):
            yield 0, chunk
        return

    queue: asyncio.Queue[tuple[int, GenerationChunk] | BaseException | None] = asyncio.Queue()

    async def pump(index: int, job: EngineJob) -> None:
        try:
            async for chunk in engine.generate(
                job.prompt_token_ids, job.options, f"{request_id}-{index}", stream=True
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
