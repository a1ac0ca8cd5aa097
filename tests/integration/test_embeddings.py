"""Embeddings and rerank on a real pooling engine beside the real generation engine, through
the official openai SDK and plain HTTP (one server for the session: `embedding_server`)."""

from __future__ import annotations

import asyncio
import math
import re
from typing import NotRequired, TypedDict

import httpx
import numpy as np
import openai
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families
from transformers import AutoTokenizer

from service.config import TEST_PROFILE, Settings
from service.weights import resolve_model
from tests.integration.conftest import EMBEDDER, ServerInProcess

pytestmark = pytest.mark.engine


class EmbeddingsArgs(TypedDict):
    input: str | list[str]
    model: NotRequired[str]  # the served embedder when absent


# (anchor, paraphrase, unrelated): the paraphrase must be closer to the anchor.
TRIPLES = [
    (
        "The cat is sleeping on the sofa.",
        "A cat naps on the couch.",
        "Stock prices fell sharply today.",
    ),
    (
        "How do I bake bread at home?",
        "What is a recipe for homemade bread?",
        "The train leaves at noon.",
    ),
    (
        "It is raining heavily outside.",
        "There is a heavy rain storm outdoors.",
        "I bought a new laptop.",
    ),
]


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_vectors_have_the_models_hidden_size_and_usage(embedding_client: openai.OpenAI) -> None:
    result = embedding_client.embeddings.create(
        model=EMBEDDER, input="hello world", encoding_format="float"
    )
    (item,) = result.data
    assert len(item.embedding) == 576  # SmolLM2-135M's hidden size
    assert math.isclose(sum(x * x for x in item.embedding), 1.0, rel_tol=1e-3)
    assert result.model == EMBEDDER
    assert result.usage.prompt_tokens == result.usage.total_tokens > 0


def test_base64_decodes_to_the_same_floats(embedding_client: openai.OpenAI) -> None:
    texts = ["first text", "second, longer text"]
    floats = embedding_client.embeddings.create(
        model=EMBEDDER, input=texts, encoding_format="float"
    )
    # The SDK decodes base64 itself (its default format when none is given).
    packed = embedding_client.embeddings.create(model=EMBEDDER, input=texts)
    for a, b in zip(floats.data, packed.data, strict=True):
        assert np.allclose(a.embedding, b.embedding, atol=1e-6)


def test_a_paraphrase_is_closer_than_an_unrelated_text(embedding_client: openai.OpenAI) -> None:
    texts = [text for triple in TRIPLES for text in triple]
    data = embedding_client.embeddings.create(
        model=EMBEDDER, input=texts, encoding_format="float"
    ).data
    vectors = [d.embedding for d in data]
    for i in range(0, len(vectors), 3):
        anchor, paraphrase, unrelated = vectors[i : i + 3]
        assert cosine(anchor, paraphrase) > cosine(anchor, unrelated), TRIPLES[i // 3]


def test_a_batch_of_64_inputs_in_one_request(embedding_client: openai.OpenAI) -> None:
    texts = [f"sentence number {i} about topic {i % 7}" for i in range(64)]
    result = embedding_client.embeddings.create(
        model=EMBEDDER, input=texts, encoding_format="float"
    )
    assert [d.index for d in result.data] == list(range(64))
    single = embedding_client.embeddings.create(
        model=EMBEDDER, input=texts[5], encoding_format="float"
    )
    assert np.allclose(result.data[5].embedding, single.data[0].embedding, atol=1e-4)


def test_token_ids_embed_like_their_text(
    embedding_client: openai.OpenAI,
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(Settings(**TEST_PROFILE)))
    ids = tokenizer.encode("token ids work")  # as the engine encodes a text: special tokens on
    by_ids = embedding_client.embeddings.create(
        model=EMBEDDER, input=[ids], encoding_format="float"
    )
    by_text = embedding_client.embeddings.create(
        model=EMBEDDER, input="token ids work", encoding_format="float"
    )
    assert np.allclose(by_ids.data[0].embedding, by_text.data[0].embedding, atol=1e-4)


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        pytest.param({"input": ""}, 400, id="empty"),
        pytest.param({"input": ["x"] * 65}, 413, id="too-many"),
        pytest.param({"input": "word " * 3000}, 400, id="over-long"),
        pytest.param({"model": "nope", "input": "x"}, 404, id="unknown-model"),
    ],
)
def test_bad_inputs_are_4xx(
    embedding_client: openai.OpenAI, payload: EmbeddingsArgs, status: int
) -> None:
    with pytest.raises(openai.APIStatusError) as raised:
        embedding_client.embeddings.create(
            model=payload.get("model", EMBEDDER), input=payload["input"]
        )
    assert raised.value.status_code == status
    assert isinstance(raised.value.body, dict) and raised.value.body["param"] in ("input", "model")


def test_rerank_puts_the_relevant_document_first(embedding_server: ServerInProcess) -> None:
    documents = [
        "The stock market closed higher on Friday.",
        "Paris is the capital and largest city of France.",
        "Bananas are rich in potassium.",
    ]
    response = httpx.post(
        f"{embedding_server.base_url}/v1/rerank",
        json={"model": EMBEDDER, "query": "What is the capital of France?", "documents": documents},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[0]["index"] == 1
    assert [r["relevance_score"] for r in results] == sorted(
        (r["relevance_score"] for r in results), reverse=True
    )


def test_models_lists_both_and_generation_still_works(
    embedding_client: openai.OpenAI, embedding_server: ServerInProcess
) -> None:
    ids = [m.id for m in embedding_client.models.list().data]
    assert ids == [embedding_server.model, EMBEDDER]
    reply = embedding_client.completions.create(
        model=embedding_server.model, prompt="Hello", max_tokens=2, temperature=0
    )
    assert reply.usage is not None and reply.usage.completion_tokens >= 1


def test_the_generation_engines_vllm_metrics_survive_both_starts(
    embedding_server: ServerInProcess,
) -> None:
    text = httpx.get(f"{embedding_server.base_url}/metrics", timeout=30).text
    waiting = [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "vllm:num_requests_waiting"
    ]
    assert waiting, "the pooling engine's start wiped vLLM's metrics"
    assert {s.labels["model_name"] for s in waiting} == {embedding_server.model}


def test_ready_with_both_engines_serving(embedding_server: ServerInProcess) -> None:
    assert httpx.get(f"{embedding_server.base_url}/ready", timeout=30).status_code == 200
    served = httpx.get(f"{embedding_server.base_url}/v1/models", timeout=30).json()["data"]
    assert {m["id"] for m in served} == {embedding_server.model, EMBEDDER}


def test_both_auto_sized_engines_hold_a_full_length_request_at_once(
    embedding_server: ServerInProcess, embedding_client: openai.OpenAI
) -> None:
    """`auto` gives the embedding engine room for one input at max_model_len (2048 here) and
    the generation engine more; both serve such a request at the same time, and the start-up
    log says what each holds."""
    context = TEST_PROFILE["max_model_len"]
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(Settings(**TEST_PROFILE)))
    long_ids = tokenizer.encode("word " * (context - 8))
    assert context - 16 < len(long_ids) <= context - 4

    async def both() -> tuple[openai.types.CreateEmbeddingResponse, openai.types.Completion]:
        client = openai.AsyncOpenAI(
            base_url=f"{embedding_server.base_url}/v1", api_key="unused", max_retries=0
        )
        async with client:
            return await asyncio.gather(
                client.embeddings.create(model=EMBEDDER, input=[long_ids]),
                client.completions.create(
                    model=embedding_server.model, prompt=long_ids, max_tokens=4, temperature=0
                ),
            )

    embedded, completed = asyncio.run(both())
    assert embedded.usage.prompt_tokens == len(long_ids)
    assert completed.usage is not None and completed.usage.prompt_tokens == len(long_ids)
    assert embedding_server.log is not None
    log = embedding_server.log.read_text(errors="replace")
    assert f"embedding engine KV cache: 0.09 GiB, {context:,} tokens" in log
    generation = re.search(r"generation engine KV cache: [\d.]+ GiB, ([\d,]+) tokens", log)
    assert generation is not None and int(generation[1].replace(",", "")) >= context
    assert "cpu_kvcache_space=auto" in log


def test_the_embedding_engine_runs_its_model_without_a_worker_process(
    embedding_server: ServerInProcess,
) -> None:
    """One vLLM worker process in all (the generation engine's): the embedding engine runs its
    model in its engine core, a process (and its ~0.5 GiB of imports) fewer."""
    assert embedding_server.pid is not None
    names = [p.name() for p in psutil.Process(embedding_server.pid).children(recursive=True)]
    assert sum("EngineCor" in name for name in names) == 2, names
    assert sum("Worker" in name for name in names) == 1, names
