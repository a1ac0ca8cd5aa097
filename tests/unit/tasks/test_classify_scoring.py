"""The three ways of scoring labels give the same log-probabilities.

A stand-in engine whose next-token distribution is a fixed function of the whole context answers
every way, as vLLM does: prompt logprobs for prefill, the raw (pre-bias) log-probability of the
token a +100 `logit_bias` forces for step-wise, and the logprobs of asked-for token ids for
tokens. Labels share first tokens (a trie), as multi-token labels do.
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from service.engine.base import (
    EngineRequest,
    GenerationChunk,
    SequenceDelta,
    TokenLogprob,
)
from service.services.core.generation import Dispatch
from service.services.tasks.classify.scoring import label_logprobs, scoring_method

VOCAB = 40


def raw_logprobs(context: list[int]) -> list[float]:
    rng = random.Random(hash(tuple(context)))
    logits = [rng.uniform(-4.0, 4.0) for _ in range(VOCAB)]
    top = max(logits)
    norm = top + math.log(sum(math.exp(v - top) for v in logits))
    return [v - norm for v in logits]


class ContextEngine:
    """Just enough of the Engine protocol for `run_to_completion`."""

    kv_block_size = 5  # the first prompt below is shorter than a block, the second is not

    def __init__(self) -> None:
        self.requests: list[EngineRequest] = []
        self.token_ids_available = True

    @asynccontextmanager
    async def token_scoring(self) -> AsyncIterator[bool]:
        yield self.token_ids_available

    async def generate(
        self, request: EngineRequest, *, stream: bool
    ) -> AsyncIterator[GenerationChunk]:
        self.requests.append(request)
        ids, options = request.prompt_token_ids, request.options
        prompt_logprobs: list[TokenLogprob | None] | None = None
        if options.prompt_logprobs is not None:
            prompt_logprobs = [None] + [
                TokenLogprob(t, "", raw_logprobs(ids[:i])[t]) for i, t in enumerate(ids) if i
            ]
        context, tokens, logprobs = list(ids), [], []
        for _ in range(options.max_tokens):
            raw = raw_logprobs(context)
            biased = [v + (options.logit_bias or {}).get(t, 0.0) for t, v in enumerate(raw)]
            token = max(range(VOCAB), key=lambda t: biased[t])
            asked = tuple((t, "", raw[t]) for t in options.logprob_token_ids)
            logprobs.append(TokenLogprob(token, "", raw[token], asked))
            tokens.append(token)
            context.append(token)
        wanted = options.logprobs is not None or options.logprob_token_ids
        delta = SequenceDelta(0, "", tokens, logprobs if wanted else None, "length")
        yield GenerationChunk([delta], len(ids), True, prompt_logprobs)


LABELS = [[5], [6, 7], [6, 8, 9], [10, 11]]
# Every scoring request runs under the request's priority and adapter.
DISPATCH = Dispatch(priority=10, adapter="tuned")
PROMPTS = [[1, 2, 3, 4], [1, 2, 30, 31, 32]]


@pytest.mark.parametrize("method", ["stepwise", "tokens"])
async def test_every_method_gives_the_prefill_logprobs(method: str) -> None:
    engine = ContextEngine()
    prefill = await label_logprobs(engine, PROMPTS, LABELS, "p", dispatch=DISPATCH)  # type: ignore[arg-type]
    other = await label_logprobs(engine, PROMPTS, LABELS, "s", dispatch=DISPATCH, method=method)  # type: ignore[arg-type]
    assert len(prefill.logprobs) == len(PROMPTS)
    for row_a, row_b in zip(prefill.logprobs, other.logprobs, strict=True):
        assert row_b == pytest.approx(row_a, abs=1e-9)
    # All four labels differ: the comparison is not vacuous.
    assert len({round(v, 6) for v in prefill.logprobs[0]}) == len(LABELS)


async def test_tokens_covers_the_trie_in_few_requests_when_no_block_is_shared() -> None:
    engine = ContextEngine()
    short, _ = PROMPTS  # shorter than a KV block: each request would prefill it anew
    await label_logprobs(engine, [short], LABELS, "t", dispatch=DISPATCH, method="tokens")  # type: ignore[arg-type]
    # Nodes: the root (next: 5, 6, 10), 6 (next: 7, 8), 6>8 (next: 9), 10 (next: 11). Three
    # requests cover them: the root forcing 6 (its second token's logprobs are node 6's), the
    # root forcing 10, and node 6 forcing 8.
    asked = [
        (r.prompt_token_ids, r.options.logprob_token_ids, r.options.logit_bias)
        for r in engine.requests
    ]
    assert sorted(asked) == [
        ([1, 2, 3, 4], (5, 6, 7, 8, 10), {6: 100.0}),
        ([1, 2, 3, 4], (5, 6, 10, 11), {10: 100.0}),
        ([1, 2, 3, 4, 6], (7, 8, 9), {8: 100.0}),
    ]
    assert {(r.priority, r.adapter) for r in engine.requests} == {(10, "tuned")}
    assert {
        (r.options.max_tokens, r.options.logprobs, r.options.prompt_logprobs)
        for r in engine.requests
    } == {(2, None, None)}


async def test_tokens_asks_each_node_once_when_the_prompt_spans_a_block() -> None:
    engine = ContextEngine()
    _, long = PROMPTS  # a whole KV block: its requests share it through the prefix cache
    await label_logprobs(engine, [long], LABELS, "t", dispatch=DISPATCH, method="tokens")  # type: ignore[arg-type]
    # One 1-token request per trie node, nothing forced: one engine step for them all.
    asked = [
        (r.prompt_token_ids, r.options.logprob_token_ids, r.options.logit_bias)
        for r in engine.requests
    ]
    assert sorted(asked, key=lambda a: a[0]) == [
        ([1, 2, 30, 31, 32], (5, 6, 10), None),
        ([1, 2, 30, 31, 32, 6], (7, 8), None),
        ([1, 2, 30, 31, 32, 6, 8], (9,), None),
        ([1, 2, 30, 31, 32, 10], (11,), None),
    ]
    assert {(r.priority, r.adapter) for r in engine.requests} == {(10, "tuned")}
    assert {r.options.max_tokens for r in engine.requests} == {1}


async def test_auto_scores_by_prefill_when_the_engine_cannot_give_token_ids() -> None:
    engine = ContextEngine()
    async with scoring_method(engine, "auto") as method:  # type: ignore[arg-type]
        assert method == "tokens"
    engine.token_ids_available = False
    async with scoring_method(engine, "auto") as method:  # type: ignore[arg-type]
        assert method == "prefill"
    async with scoring_method(engine, "stepwise") as method:  # type: ignore[arg-type]
        assert method == "stepwise"


async def test_stepwise_requests_one_token_per_trie_edge() -> None:
    engine = ContextEngine()
    await label_logprobs(engine, PROMPTS, LABELS, "s", dispatch=DISPATCH, method="stepwise")  # type: ignore[arg-type]
    # Edges: 5, 6, 6>7, 6>8, 6>8>9, 10, 10>11: seven per prompt, each a 1-token request.
    assert len(engine.requests) == 7 * len(PROMPTS)
    assert {(r.options.max_tokens, r.options.prompt_logprobs) for r in engine.requests} == {
        (1, None)
    }
