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
    *,
    stepwise: bool = False,
) -> Scored:
    """log P(label | prompt) for every prompt and label, all in one concurrent batch.

    Prefill (the default): one request per (prompt, label) asking for prompt logprobs; vLLM does
    not read its prefix cache for such requests, so each costs a full prefill of prompt + label.
    Step-wise: see `stepwise_label_logprobs`. Both give the same numbers (measured in
    evals/README.md).
    """
    if stepwise:
        return await stepwise_label_logprobs(engine, prompts, labels, request_id)
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


async def stepwise_label_logprobs(
    engine: Engine,
    prompts: Sequence[list[int]],
    labels: Sequence[list[int]],
    request_id: str,
) -> Scored:
    """log P(label | prompt) from next-token log-probabilities along the labels' token trie.

    Per trie edge (a label prefix and its next token) one request of prompt + prefix generates
    one token forced by `logit_bias` +100; vLLM reports the raw log-probability (before the
    bias), which is the one wanted. One edge per prompt runs first and leaves the prompt in the
    prefix cache; the other edges then read it (whole KV blocks of it: 128 tokens on CPU), so
    the shared prompt is computed about once per text instead of once per label.
    """
    edges = sorted({(tuple(label[:j]), label[j]) for label in labels for j in range(len(label))})

    def job(prompt: list[int], edge: tuple[tuple[int, ...], int]) -> EngineJob:
        prefix, token = edge
        options = SamplingOptions(
            max_tokens=1, temperature=0.0, logprobs=0, logit_bias={token: 100.0}
        )
        return EngineJob([*prompt, *prefix], options)

    first = await run_to_completion(engine, [job(p, edges[0]) for p in prompts], request_id)
    rest: list[PromptResult] = []
    if len(edges) > 1:
        rest = await run_to_completion(
            engine, [job(p, e) for p in prompts for e in edges[1:]], f"{request_id}-s"
        )
    per_prompt = len(edges) - 1
    scores = []
    for i in range(len(prompts)):
        results = [first[i], *rest[i * per_prompt : (i + 1) * per_prompt]]
        value = {e: _forced(r, e[1]) for e, r in zip(edges, results, strict=True)}
        scores.append(
            [sum(value[(tuple(lab[:j]), lab[j])] for j in range(len(lab))) for lab in labels]
        )
    every = [*first, *rest]
    return Scored(
        scores,
        prompt_tokens=sum(r.num_prompt_tokens for r in every),
        completion_tokens=sum(len(s.token_ids) for r in every for s in r.sequences),
    )


def _forced(result: PromptResult, token: int) -> float:
    seq = result.sequences[0]
    if not seq.logprobs or seq.logprobs[0].token_id != token:
        raise EngineFailureError("The engine did not return the forced label token.")
    return seq.logprobs[0].logprob


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
