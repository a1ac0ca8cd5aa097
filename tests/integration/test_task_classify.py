"""/v1/classify on the real engine, over HTTP: right labels, distributions, batches."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from service.schemas.tasks import ClassifyRequest
from service.services.core.generation import Dispatch
from service.services.tasks.classify.calibration import cache_for, prior_key
from service.services.tasks.classify.prompts import label_ids, label_spec, prompt_ids
from service.services.tasks.classify.scoring import Scored, label_logprobs
from service.services.tasks.classify.warm_up import preset_specs
from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.engine

# vLLM on CPU is not batch-invariant: the same prompt scored in another batch shape (or read
# from the prefix cache) gives float32 log-probabilities a few 1e-7 apart (2026-12-06, a
# loaded CI machine). Scores closer than this are the same scores; labels differ by far more.
BATCH_NOISE = 1e-4

POSITIVE = [
    "I absolutely love this phone, the battery lasts for days.",
    "The staff were friendly and the food was delicious.",
    "Best purchase I have made all year, highly recommended!",
    "What a wonderful film, I was smiling the whole time.",
    "This coffee tastes amazing, rich and smooth.",
    "Customer support solved my problem in minutes. Fantastic service.",
    "Such a lovely little bakery, everything we tried was excellent.",
    "Superb sound quality, these headphones are a joy to use.",
]
NEGATIVE = [
    "This phone is terrible, the battery dies before lunch.",
    "The waiter was rude and the soup was cold.",
    "Worst purchase ever, it broke after two days.",
    "What a boring film, I nearly fell asleep.",
    "This coffee is bitter and tastes burnt. Disgusting.",
    "Support kept me on hold for an hour and never fixed anything.",
    "The bread was stale and overpriced. Very disappointing.",
    "Awful sound quality, these headphones crackle constantly.",
]


def classify(server: LiveServer, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{server.base_url}/v1/classify", json=body, timeout=900)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def assert_distribution(result: dict[str, Any], labels: list[str]) -> None:
    scores = result["scores"]
    assert list(scores) == labels
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert result["label"] == max(scores, key=scores.__getitem__)


def test_clear_sentiment(live_server: LiveServer) -> None:
    texts = [POSITIVE[0], NEGATIVE[0], POSITIVE[1], NEGATIVE[1]]
    body = classify(live_server, texts=texts, labels="sentiment")
    assert body["model"] == live_server.model
    results = body["results"]
    for result in results:
        assert_distribution(result, ["positive", "negative", "neutral"])
    assert [r["label"] for r in results] == ["positive", "negative"] * 2
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_a_batch_of_32_texts_in_one_request(live_server: LiveServer) -> None:
    texts = (POSITIVE + NEGATIVE) * 2
    gold = (["positive"] * 8 + ["negative"] * 8) * 2
    body = classify(live_server, texts=texts, labels=["positive", "negative"])
    results = body["results"]
    assert [r["index"] for r in results] == list(range(32))
    for result in results:
        assert_distribution(result, ["positive", "negative"])
    # Same text, same scores, wherever it sits in the batch (to BATCH_NOISE: the copy may read
    # the first one's prompt from the prefix cache).
    for first, again in zip(results[:16], results[16:], strict=True):
        assert again["scores"] == pytest.approx(first["scores"], abs=BATCH_NOISE)
    right = sum(r["label"] == g for r, g in zip(results, gold, strict=True))
    assert right >= 30, [r["label"] for r in results]


def test_labels_sharing_a_first_token(live_server: LiveServer) -> None:
    labels = ["very good", "very bad"]
    body = classify(
        live_server,
        texts=["The food was excellent and the staff were lovely.", NEGATIVE[1]],
        labels=labels,
    )
    good, bad = body["results"]
    for result in (good, bad):
        assert_distribution(result, labels)
        assert result["scores"]["very good"] != result["scores"]["very bad"]
    assert good["label"] == "very good"
    assert bad["label"] == "very bad"


def test_multi_label(live_server: LiveServer) -> None:
    labels = ["billing", "shipping", "sports"]
    body = classify(
        live_server,
        text="I was charged twice and my parcel still has not arrived.",
        labels=labels,
        multi_label=True,
    )
    result = body["results"][0]
    assert list(result["scores"]) == labels
    assert all(0.0 <= p <= 1.0 for p in result["scores"].values())
    assert result["labels"] == [label for label in labels if result["scores"][label] >= 0.5]
    assert result["label"] in result["labels"]
    assert "sports" not in result["labels"]


def test_priors_are_computed_once(live_server: LiveServer) -> None:
    body = {"text": POSITIVE[2], "labels": ["good news", "bad news", "no news"]}
    first, second = classify(live_server, **body), classify(live_server, **body)
    # The second call runs without the prior's requests, so in another batch shape.
    (a,), (b,) = first["results"], second["results"]
    assert b["label"] == a["label"]
    assert b["scores"] == pytest.approx(a["scores"], abs=BATCH_NOISE)
    assert second["usage"]["prompt_tokens"] < first["usage"]["prompt_tokens"]


def test_the_presets_priors_are_ready_when_the_server_is(live_server: LiveServer) -> None:
    engine = live_server.state.engine
    assert engine is not None
    cache = cache_for(engine)
    specs = preset_specs()
    assert {s.language for s in specs} == {"en", "zh"}
    missing = [s for s in specs if cache.peek(prior_key(live_server.model, s)) is None]
    assert missing == []
    # So a preset's first call in a language pays for its texts only.
    body = classify(
        live_server, text="这部手机太棒了我很喜欢。", labels="sentiment", multi_label=True
    )
    assert body["usage"]["completion_tokens"] == 1  # one 1-token request: no prior's


def test_token_scoring_reads_shared_blocks_and_gives_the_prefill_scores(
    live_server: LiveServer,
) -> None:
    engine = live_server.state.engine
    assert engine is not None and engine.kv_block_size is not None
    tok = engine.tokenizer
    spec = label_spec(ClassifyRequest(text="-", labels="customer_intent"))
    texts = ["I was charged twice this month.", "The app crashes when I log in.", "Hi!"]
    prompts = [prompt_ids(tok, spec, text) for text in texts]
    assert min(map(len, prompts)) >= engine.kv_block_size  # the requests share whole blocks
    labels = label_ids(tok, spec.labels)  # two of them two tokens long, first tokens apart

    async def both() -> tuple[Scored, Scored]:
        async with engine.token_scoring() as available:
            assert available
            tokens = await label_logprobs(
                engine, prompts, labels, "t", dispatch=Dispatch(), method="tokens"
            )
        prefill = await label_logprobs(
            engine, prompts, labels, "p", dispatch=Dispatch(), method="prefill"
        )
        return tokens, prefill

    tokens, prefill = asyncio.run_coroutine_threadsafe(both(), live_server.loop).result(600)
    # One 1-token request per trie node: the root, "technical" and "general".
    assert tokens.completion_tokens == 3 * len(texts)
    for row_tokens, row_prefill in zip(tokens.logprobs, prefill.logprobs, strict=True):
        assert row_tokens == pytest.approx(row_prefill, abs=1e-4)


def test_invalid_labels_are_a_400(live_server: LiveServer) -> None:
    response = httpx.post(
        f"{live_server.base_url}/v1/classify",
        json={"text": "hi", "labels": ["only one"]},
        timeout=60,
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "labels"
