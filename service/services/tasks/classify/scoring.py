"""Label scores: log P(label | prompt) from the engine, and the probabilities made of them."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

from service.engine.base import Engine, EngineRequest, SamplingOptions
from service.errors import EngineFailureError
from service.services.core.generation import Dispatch, PromptResult, run_to_completion

# One prompt pass, no sampling: the one generated token is discarded.
SCORE_OPTIONS = SamplingOptions(max_tokens=1, temperature=0.0, prompt_logprobs=0)
# vLLM's limit on `logprob_token_ids` per request (MAX_LOGPROB_TOKEN_IDS in 0.32).
MAX_TOKEN_IDS = 128

Method = Literal["prefill", "stepwise", "tokens"]


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
    dispatch: Dispatch,
    method: Method = "prefill",
) -> Scored:
    """log P(label | prompt) for every prompt and label, all in one concurrent batch.

    Prefill: one request per (prompt, label) asking for prompt logprobs; vLLM does not read its
    prefix cache for such requests, so each costs a full prefill of prompt + label. Step-wise:
    `stepwise_label_logprobs`; tokens: `token_label_logprobs` (only inside
    `engine.token_scoring()`, see `scoring_method`). All give the same numbers (a unit test,
    and evals/README.md on the real engine).
    """
    if method == "stepwise":
        return await stepwise_label_logprobs(engine, prompts, labels, request_id, dispatch)
    if method == "tokens":
        return await token_label_logprobs(engine, prompts, labels, request_id, dispatch)
    requests = [
        dispatch.request([*prompt, *label], SCORE_OPTIONS) for prompt in prompts for label in labels
    ]
    results = await run_to_completion(engine, requests, request_id)
    scores: list[list[float]] = []
    for p, prompt in enumerate(prompts):
        row = results[p * len(labels) : (p + 1) * len(labels)]
        scores.append(
            [
                _continuation(r, len(prompt), len(label))
                for r, label in zip(row, labels, strict=True)
            ]
        )
    return _scored(scores, results)


async def stepwise_label_logprobs(
    engine: Engine,
    prompts: Sequence[list[int]],
    labels: Sequence[list[int]],
    request_id: str,
    dispatch: Dispatch,
) -> Scored:
    """log P(label | prompt) from next-token log-probabilities along the labels' token trie.

    Per trie edge (a label prefix and its next token) one request of prompt + prefix generates
    one token forced by `logit_bias` +100; vLLM reports the raw log-probability (before the
    bias), which is the one wanted. One edge per prompt runs first and leaves the prompt in the
    prefix cache; the other edges then read it (whole KV blocks of it: 128 tokens on CPU), so
    the shared prompt is computed about once per text instead of once per label.
    """
    edges = sorted({(tuple(label[:j]), label[j]) for label in labels for j in range(len(label))})

    def job(prompt: list[int], edge: tuple[tuple[int, ...], int]) -> EngineRequest:
        prefix, token = edge
        options = SamplingOptions(
            max_tokens=1, temperature=0.0, logprobs=0, logit_bias={token: 100.0}
        )
        return dispatch.request([*prompt, *prefix], options)

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
        scores.append(_label_sums(value, labels))
    return _scored(scores, [*first, *rest])


@asynccontextmanager
async def scoring_method(engine: Engine, setting: str) -> AsyncIterator[Method]:
    """The method a classify call scores with: the `classify_scoring` setting, where `auto` is
    `tokens` when the engine can give token-id logprobs now and `prefill` otherwise."""
    if setting != "auto":
        yield "stepwise" if setting == "stepwise" else "prefill"
        return
    async with engine.token_scoring() as available:
        yield "tokens" if available else "prefill"


Prefix = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Ask:
    """One 1- or 2-token request: the logprobs of `ids` after prompt + `prefix`, and with a
    `forced` next token, after prompt + prefix + forced as well (the second position)."""

    prefix: Prefix
    forced: int | None
    ids: tuple[int, ...]


def _children(labels: Sequence[list[int]]) -> dict[Prefix, set[int]]:
    """The labels' token trie: each label prefix and the tokens that follow it."""
    children: dict[Prefix, set[int]] = {}
    for label in labels:
        for j in range(len(label)):
            children.setdefault(tuple(label[:j]), set()).add(label[j])
    return children


def plan_requests(labels: Sequence[list[int]], *, shared: bool) -> list[tuple[Prefix, int | None]]:
    """Token scoring's requests per text: (prefix after the prompt, forced token or None);
    `shared`: the prompt's KV blocks are shared between its requests (`_plan_per_node`)."""
    children = _children(labels)
    asks = _plan_per_node(children) if shared else _plan(children)
    return [(ask.prefix, ask.forced) for ask in asks]


def _plain(prefix: Prefix, children: dict[Prefix, set[int]]) -> list[_Ask]:
    """One request of prompt + prefix asking for its next tokens (128 ids a request at most)."""
    ids = sorted(children[prefix])
    return [
        _Ask(prefix, None, tuple(ids[k : k + MAX_TOKEN_IDS]))
        for k in range(0, len(ids), MAX_TOKEN_IDS)
    ]


def _plan_per_node(children: dict[Prefix, set[int]]) -> list[_Ask]:
    """A 1-token request per trie node, all sent at once. When the prompt spans whole KV
    blocks, vLLM's prefix cache gives them the prompt's blocks, even within one engine step
    (it registers a block when it allocates it): the prompt is computed about once, and each
    node adds only the prompt's last partial block and its own prefix. One engine step in all,
    where forcing a token (`_plan`) takes a second."""
    return [ask for prefix in sorted(children) for ask in _plain(prefix, children)]


def _plan(children: dict[Prefix, set[int]]) -> list[_Ask]:
    """Requests covering every trie node with as few prompts as can be: a node with inner
    children gets one request per inner child, forcing it (the child's next tokens come at
    the second position); a node none covers gets a plain request. For prompts that share no
    KV block, where each request is a prefill of its own."""
    asks: list[_Ask] = []

    def plan(prefix: Prefix, covered: bool) -> None:
        inner = [(*prefix, t) for t in sorted(children[prefix]) if (*prefix, t) in children]
        for child in inner:
            both = children[prefix] | children[child]
            if len(both) <= MAX_TOKEN_IDS:
                asks.append(_Ask(prefix, child[-1], tuple(sorted(both))))
                covered = True
                plan(child, True)
            else:  # too many ids for one request: the child on its own
                plan(child, False)
        if not covered:
            asks.extend(_plain(prefix, children))

    plan((), False)
    return asks


async def token_label_logprobs(
    engine: Engine,
    prompts: Sequence[list[int]],
    labels: Sequence[list[int]],
    request_id: str,
    dispatch: Dispatch,
) -> Scored:
    """log P(label | prompt) from the logprobs of chosen token ids (`logprob_token_ids`).

    A trie node is a label prefix (the empty one is the root); a request of prompt + node asks
    for the logprobs of the node's next tokens. Single-token labels thus cost one 1-token
    request per text, whatever their number. For multi-token labels, when the prompt spans a
    whole KV block, every node gets its own 1-token request and they share the prompt's
    blocks through the prefix cache (`_plan_per_node`); otherwise a request forces one next
    token by `logit_bias` +100 (vLLM reports raw logprobs, before the bias) and generates a
    second, whose logprobs are those of the child node: "billing / technical support" is one
    2-token request (`_plan`). Every request of every text is sent at once.
    """
    children = _children(labels)
    per_node, paired = _plan_per_node(children), _plan(children)
    block = engine.kv_block_size
    batch = [
        (i, ask)
        for i, prompt in enumerate(prompts)
        for ask in (per_node if block is not None and len(prompt) >= block else paired)
    ]
    requests = [_request(prompts[i], a, dispatch) for i, a in batch]
    results = await run_to_completion(engine, requests, request_id)
    values: list[dict[tuple[Prefix, int], float]] = [{} for _ in prompts]
    for (i, ask), result in zip(batch, results, strict=True):
        for node, found in _positions(result, ask):
            values[i].update(((node, t), found[t]) for t in children[node] if t in found)
    return _scored([_label_sums(value, labels) for value in values], results)


def _label_sums(value: dict[tuple[Prefix, int], float], labels: Sequence[list[int]]) -> list[float]:
    """Each label's score: the sum of its trie edges' log-probabilities (prefix, next token)."""
    return [sum(value[(tuple(lab[:j]), lab[j])] for j in range(len(lab))) for lab in labels]


def _scored(scores: list[list[float]], results: Sequence[PromptResult]) -> Scored:
    return Scored(
        scores,
        prompt_tokens=sum(r.num_prompt_tokens for r in results),
        completion_tokens=sum(len(s.token_ids) for r in results for s in r.sequences),
    )


def _request(prompt: list[int], ask: _Ask, dispatch: Dispatch) -> EngineRequest:
    options = SamplingOptions(
        max_tokens=1 if ask.forced is None else 2,
        temperature=0.0,
        logprob_token_ids=ask.ids,
        logit_bias=None if ask.forced is None else {ask.forced: 100.0},
    )
    return dispatch.request([*prompt, *ask.prefix], options)


def _positions(result: PromptResult, ask: _Ask) -> list[tuple[Prefix, dict[int, float]]]:
    """(node, logprobs of the asked ids there) for each position the request covers."""
    seq = result.sequences[0]
    nodes = [ask.prefix] if ask.forced is None else [ask.prefix, (*ask.prefix, ask.forced)]
    if len(seq.logprobs) < len(nodes) or (
        ask.forced is not None and seq.logprobs[0].token_id != ask.forced
    ):
        raise EngineFailureError("The engine returned no logprobs for the label tokens.")
    out = []
    for node, position in zip(nodes, seq.logprobs, strict=False):
        found = {tid: logprob for tid, _, logprob in position.top}
        if any(t not in found for t in ask.ids):
            raise EngineFailureError("The engine returned no logprobs for the label tokens.")
        out.append((node, found))
    return out


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
