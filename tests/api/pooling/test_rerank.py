"""/v1/rerank on the fake embedding engine (bag-of-words vectors): ordering, top_n, shape."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from service.engine.fake_embeddings import FakeEmbeddingEngine
from tests.api.helpers import assert_openai_error, serve
from tests.conftest import FAKE_MODEL

EMBEDDER = "fake-embedder"
RERANK = "/v1/rerank"
DOCUMENTS = ["cats purr softly", "the stock market fell", "my cats purr at night"]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(model=FAKE_MODEL, embedding_model=EMBEDDER)
    app = create_app(settings, engine_factory=FakeEngine, embedding_factory=FakeEmbeddingEngine)
    async with serve(app) as client:
        yield client


async def test_results_are_sorted_by_relevance_with_index_and_document(
    http: httpx.AsyncClient,
) -> None:
    body = {"model": EMBEDDER, "query": "do cats purr", "documents": DOCUMENTS}
    response = await http.post(RERANK, json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert results[-1]["index"] == 1  # the unrelated one last
    assert {r["index"] for r in results} == {0, 1, 2}
    assert all(r["document"]["text"] == DOCUMENTS[r["index"]] for r in results)
    assert response.json()["usage"]["total_tokens"] > 0


async def test_top_n_keeps_the_best(http: httpx.AsyncClient) -> None:
    body = {"model": EMBEDDER, "query": "stock market", "documents": DOCUMENTS, "top_n": 1}
    (best,) = (await http.post(RERANK, json=body)).json()["results"]
    assert best["index"] == 1


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        pytest.param({"query": "q", "documents": []}, 400, "documents", id="no-documents"),
        pytest.param({"query": "", "documents": ["d"]}, 400, "query", id="empty-query"),
        pytest.param({"query": "q", "documents": ["d"] * 65}, 413, "documents", id="too-many"),
        pytest.param({"query": "q", "documents": ["d"], "top_n": 0}, 400, "top_n", id="top-n"),
        pytest.param({"model": "nope", "query": "q", "documents": ["d"]}, 404, "model", id="model"),
    ],
)
async def test_bad_rerank_requests_are_4xx_naming_the_field(
    http: httpx.AsyncClient, body: dict[str, object], status: int, param: str
) -> None:
    response = await http.post(RERANK, json={"model": EMBEDDER, **body})
    assert_openai_error(response, status, param=param)
