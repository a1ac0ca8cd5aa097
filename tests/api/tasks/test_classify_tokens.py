"""/v1/classify scoring by token-id logprobs (classify_scoring auto, the default) gives the
prefill scoring's results, on the fake engine of classify_engine.py answering both ways; an
engine that gives no label logprobs still starts (the presets' priors wait for first use)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from service.app import create_app
from service.config import Settings
from service.engine.base import GenerationChunk, SamplingOptions, SequenceDelta
from service.engine.fake import FakeCall, FakeEngine
from tests.api.helpers import serve
from tests.api.tasks.classify_engine import classify, scoring_engine
from tests.conftest import FAKE_MODEL

REQUESTS: list[dict[str, Any]] = [
    {"texts": ["I love this phone!", "I hate waiting.", "It is a phone"], "labels": "sentiment"},
    {"texts": ["Where is my parcel?", "Resend the invoice"], "labels": "customer_intent"},
    {"text": "A late goal won the match", "labels": "news_topic"},
    {"texts": ["the food was bad", "the food was good"], "labels": ["very good", "very bad"]},
    {"text": "great service", "labels": ["good", "good service"]},
    {"text": "My invoice and my parcel", "labels": ["billing", "shipping"], "multi_label": True},
]


async def results(
    engine: FakeEngine, body: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[SamplingOptions]]:
    """The results, and the options of the engine requests the call made."""
    settings = Settings(model=FAKE_MODEL)
    async with serve(create_app(settings, engine_factory=lambda: engine)) as client:
        before = len(engine.requests)
        found: list[dict[str, Any]] = (await classify(client, **body))["results"]
    return found, [r.options for r in engine.requests[before:]]


@pytest.mark.parametrize("body", REQUESTS, ids=lambda b: str(b["labels"]))
async def test_token_scoring_gives_the_prefill_results(body: dict[str, Any]) -> None:
    by_prefill, _ = await results(scoring_engine(bias={"positive": 2.0}), body)
    engine = scoring_engine(bias={"positive": 2.0}, token_ids=True)
    by_tokens, scoring = await results(engine, body)
    for a, b in zip(by_prefill, by_tokens, strict=True):
        assert b["label"] == a["label"]
        assert b["labels"] == a["labels"]
        assert b["scores"] == pytest.approx(a["scores"], abs=1e-9)
    assert scoring and all(o.logprob_token_ids and o.prompt_logprobs is None for o in scoring)


async def test_single_token_labels_cost_one_request_per_text() -> None:
    body = {"texts": ["I love it", "I hate it"], "labels": "sentiment"}
    _, scoring = await results(scoring_engine(token_ids=True), body)
    # Two texts, one 1-token request each: the preset's priors were computed at start-up.
    assert len(scoring) == 2
    assert {(o.max_tokens, len(o.logprob_token_ids)) for o in scoring} == {(1, 3)}


async def test_multi_token_labels_cost_one_request_per_trie_node_at_once() -> None:
    # The fake engine's KV block is 16 tokens: these prompts span one, so their requests share
    # it, and each node of the labels' trie gets a 1-token request of its own, nothing forced.
    body = {"texts": ["Where is my parcel?", "Resend the invoice"], "labels": "customer_intent"}
    _, scoring = await results(scoring_engine(token_ids=True), body)
    # The root (5 first words) and "technical", "general": 3 nodes a text.
    assert len(scoring) == 2 * 3
    assert {(o.max_tokens, o.logit_bias) for o in scoring} == {(1, None)}
    assert sorted(len(o.logprob_token_ids) for o in scoring) == [1, 1, 1, 1, 5, 5]


async def test_an_engine_without_label_logprobs_still_starts_and_serves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def plain(call: FakeCall) -> AsyncIterator[GenerationChunk]:
        """One token, no logprobs, whatever is asked: as a scripted engine answers."""
        whole = SequenceDelta(0, " ok", [1], None, "length")
        yield GenerationChunk([whole], len(call.request.prompt_token_ids), True)

    app = create_app(Settings(model=FAKE_MODEL), engine_factory=lambda: FakeEngine(handler=plain))
    async with serve(app) as client:
        assert (await client.get("/ready")).status_code == 200
        reply = await client.post("/v1/generate", json={"prompt": "hi", "max_new_tokens": 1})
        assert reply.status_code == 200, reply.text
    assert "classify priors not computed at start-up" in caplog.text
