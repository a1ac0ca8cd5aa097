"""Top-k logprobs requests and classify's token-id scoring sent at once to the real engine each
get what they get alone: vLLM returns one kind of sample logprobs per engine step, and the
adapter keeps the two kinds out of one step (service/engine/vllm/logprob_modes.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest

from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.engine

PROMPTS = ["The capital of France is", "Water boils at", "My favourite colour is", "One, two,"]
TEXTS = ["I love this phone!", "The parcel never arrived.", "The shop opens at nine."]
TOP = 5


async def top_logprobs(client: openai.AsyncOpenAI, model: str, prompt: str) -> list[Any]:
    response = await client.completions.create(
        model=model, prompt=prompt, max_tokens=6, temperature=0, logprobs=TOP
    )
    logprobs = response.choices[0].logprobs
    assert logprobs is not None and logprobs.top_logprobs is not None
    return list(zip(logprobs.tokens or [], logprobs.top_logprobs, strict=True))


async def classify(http: httpx.AsyncClient) -> list[dict[str, float]]:
    response = await http.post("/v1/classify", json={"texts": TEXTS, "labels": "sentiment"})
    assert response.status_code == 200, response.text
    return [r["scores"] for r in response.json()["results"]]


async def test_top_logprobs_and_classify_at_once_get_what_they_get_alone(
    async_client: openai.AsyncOpenAI, live_server: LiveServer
) -> None:
    model = live_server.model
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=300) as http:
        alone = [await top_logprobs(async_client, model, p) for p in PROMPTS]
        scores_alone = await classify(http)
        for _ in range(3):
            together = await asyncio.gather(
                *(top_logprobs(async_client, model, p) for p in PROMPTS),
                *(classify(http) for _ in range(3)),
            )
            for expected, found in zip(alone, together[: len(PROMPTS)], strict=True):
                assert [token for token, _ in found] == [token for token, _ in expected]
                for (_, top_found), (_, top_expected) in zip(found, expected, strict=True):
                    # Padding would show as fewer entries at the -9999 floor.
                    assert len(top_found) == TOP
                    assert all(value > -50 for value in top_found.values()), top_found
                    best = max(top_expected, key=top_expected.__getitem__)
                    assert top_found[best] == pytest.approx(top_expected[best], abs=1e-2)
            for scores in together[len(PROMPTS) :]:
                for row, row_alone in zip(scores, scores_alone, strict=True):
                    assert row == pytest.approx(row_alone, abs=1e-3)
