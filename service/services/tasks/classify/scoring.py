"""Label scores: log P(label | prompt) from the engine, and the probabilities made of them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.engine.base import Engine, SamplingOptions
from service.errors import EngineFailureError
from service.services.generation import EngineJob, PromptResult, run_to_completion

# One prompt pass, no sampling: the one generated token is discarded.
SCORE_OPTIONS = SamplingOptions(max_tokens=1, temperature=0.0, prompt_logprobs=0)


@dataclass(frozen=True, slots=True)
class Scored:
    """Label log-probabilities per prompt, and what the engine processed to get them."""

    logprobs: list[list[float]]
    prompt_tokens: int
    completion_tokens: int


async def label_logprobs(
    engine: Engine,
    prompts: Sequence[list[int]],
    labels: Sequence[list[int]],
    request_id: str,
) -> Scored:
    """log P(label | prompt) for every prompt and label, all in one concurrent batch.

    One prefill per (prompt, label): vLLM computes prompt logprobs over the whole prompt and does
    not read its prefix cache for such requests, so each costs a full prefill (measured in
    evals/README.md, with the step-wise alternative).
    """
    jobs = [EngineJob([*prompt, *label], SCORE_OPTIONS) for prompt in prompts for label in labels]
    results = await run_to_completion(engine, jobs, request_id)
    scores: list[list[float]] = []
    for p, prompt in enumerate(prompts):
        row = results[p * len(labels) : (p + 1) * len(labels)]
        scores.append(
            [
                _continuation(r, len(prompt), len(label))
                for r, label in zip(row, labels, strict=True)
            ]
        )
    return Scored(
        scores,
        prompt_tokens=sum(r.num_prompt_tokens for r in results),
        completion_tokens=sum(len(s.token_ids) for r in results for s in r.sequences),
    )


def _continuation(result: PromptResult, start: int, length: int) -> float:
    entries = (result.prompt_logprobs or [])[start : start + length]
    if len(entries) != length or any(e is None for e in entries):
        raise EngineFailureError("The engine returned no prompt logprobs for a label.")
    return sum(e.logprob for e in entries if e is not None)


def log_softmax(values: Sequence[float]) -> list[float]:
    top = max(values)
    norm = top + math.log(sum(math.exp(v - top) for v in values))
    return [v - norm for v in values]


def softmax(values: Sequence[float]) -> list[float]:
    return [math.exp(v) for v in log_softmax(values)]


def sigmoid(value: float) -> float:
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    e = math.exp(value)
    return e / (1.0 + e)


def probabilities(calibrated: Sequence[float], *, multi_label: bool) -> list[float]:
    return [sigmoid(v) for v in calibrated] if multi_label else softmax(calibrated)
