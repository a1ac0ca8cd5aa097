"""Step-wise label scoring gives the prefill scoring's log-probabilities.

A stand-in engine whose next-token distribution is a fixed function of the whole context answers
both ways, as vLLM does: prompt logprobs for prefill, and the raw (pre-bias) log-probability of
the token a +100 `logit_bias` forces for step-wise. Labels share first tokens (a trie), as
multi-token labels do.
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator

import pytest

from service.engine.base import GenerationChunk, SamplingOptions, SequenceDelta, TokenLogprob
from service.services.tasks.classify.scoring import label_logprobs

VOCAB = 40


def raw_logprobs(context: list[int]) -> list[float]:
    rng = random.Random(hash(tuple(context)))
    logits = [rng.uniform(-4.0, 4.0) for _ in range(VOCAB)]
    top = max(logits)
    norm = top + math.log(sum(math.exp(v - top) for v in logits))
    return [v - norm for v in logits]


class ContextEngine:
    """Just enough of the Engine protocol for `run_to_completion`."""

    def __init__(self) -> None:
        self.requests: list[tuple[list[int], SamplingOptions]] = []

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
        self.requests.append((prompt_token_ids, options))
        ids = prompt_token_ids
        prompt_logprobs: list[TokenLogprob | None] | None = None
        if options.prompt_logprobs is not None:
            prompt_logprobs = [None] + [
                TokenLogprob(t, "", raw_logprobs(ids[:i])[t]) for i, t in enumerate(ids) if i
            ]
        raw = raw_logprobs(ids)
        biased = [v + (options.logit_bias or {}).get(t, 0.0) for t, v in enumerate(raw)]
        token = max(range(VOCAB), key=lambda t: biased[t])
        logprobs = [TokenLogprob(token, "", raw[token])] if options.logprobs is not None else None
        delta = SequenceDelta(0, "", [token], logprobs, "length")
        yield GenerationChunk([delta], len(ids), True, prompt_logprobs)


LABELS = [[5], [6, 7], [6, 8, 9], [10, 11]]
PROMPTS = [[1, 2, 3, 4], [1, 2, 30, 31, 32]]


async def test_stepwise_and_prefill_give_the_same_logprobs() -> None:
    engine = ContextEngine()
    prefill = await label_logprobs(engine, PROMPTS, LABELS, "p")  # type: ignore[arg-type]
    stepwise = await label_logprobs(engine, PROMPTS, LABELS, "s", stepwise=True)  # type: ignore[arg-type]
    assert len(prefill.logprobs) == len(PROMPTS)
    for row_a, row_b in zip(prefill.logprobs, stepwise.logprobs, strict=True):
        assert row_b == pytest.approx(row_a, abs=1e-9)
    # All four labels differ: the comparison is not vacuous.
    assert len({round(v, 6) for v in prefill.logprobs[0]}) == len(LABELS)


async def test_stepwise_requests_one_token_per_trie_edge() -> None:
    engine = ContextEngine()
    await label_logprobs(engine, PROMPTS, LABELS, "s", stepwise=True)  # type: ignore[arg-type]
    # Edges: 5, 6, 6>7, 6>8, 6>8>9, 10, 10>11: seven per prompt, each a 1-token request.
    assert len(engine.requests) == 7 * len(PROMPTS)
    assert {(o.max_tokens, o.prompt_logprobs) for _, o in engine.requests} == {(1, None)}
