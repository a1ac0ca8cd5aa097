"""/v1/embeddings on the fake engines: the OpenAI shape, base64, limits, model names, and the
embedding engine's part in readiness and admission (the real engine: tests/integration)."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from service.engine.fake_embeddings import FakeEmbeddingEngine
from tests.api.helpers import assert_openai_error, serve
from tests.conftest import FAKE_MODEL

EMBEDDER = "fake-embedder"
EMBEDDINGS = "/v1/embeddings"


@pytest.fixture
def embedding_engine() -> FakeEmbeddingEngine:
    return FakeEmbeddingEngine()


@pytest.fixture
def embedding_app(embedding_engine: FakeEmbeddingEngine) -> FastAPI:
    settings = Settings(model=FAKE_MODEL, embedding_model=EMBEDDER, max_batch_size=8)
    return create_app(
        settings, engine_factory=FakeEngine, embedding_factory=lambda: embedding_engine
    )


@pytest.fixture
async def http(embedding_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(embedding_app) as client:
        yield client


async def test_one_text_gets_one_normalized_vector_with_usage(http: httpx.AsyncClient) -> None:
    response = await http.post(EMBEDDINGS, json={"model": EMBEDDER, "input": "red apples"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list"
    assert body["model"] == EMBEDDER
    (item,) = body["data"]
    assert item["object"] == "embedding"
    assert item["index"] == 0
    assert len(item["embedding"]) == 64
    assert sum(x * x for x in item["embedding"]) == pytest.approx(1.0)
    assert body["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


async def test_base64_is_the_float32_bytes_of_the_float_vector(http: httpx.AsyncClient) -> None:
    body = {"model": EMBEDDER, "input": ["a b c", "d"]}
    floats = (await http.post(EMBEDDINGS, json=body)).json()["data"]
    packed = (await http.post(EMBEDDINGS, json={**body, "encoding_format": "base64"})).json()
    for as_float, as_b64 in zip(floats, packed["data"], strict=True):
        raw = base64.b64decode(as_b64["embedding"])
        decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
        assert decoded == pytest.approx(as_float["embedding"], abs=1e-7)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param([5, 6, 7], id="token-ids"),
        pytest.param([[5, 6], [7]], id="token-id-lists"),
        pytest.param(["x", "y z"], id="texts"),
    ],
)
async def test_every_input_form_gets_a_vector_per_input(
    http: httpx.AsyncClient, embedding_engine: FakeEmbeddingEngine, value: object
) -> None:
    response = await http.post(EMBEDDINGS, json={"model": EMBEDDER, "input": value})
    assert response.status_code == 200, response.text
    expected = 1 if isinstance(value, list) and isinstance(value[0], int) else 2
    assert [d["index"] for d in response.json()["data"]] == list(range(expected))
    inputs, _ = embedding_engine.requests[-1]
    assert len(inputs) == expected


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        pytest.param({"input": ""}, 400, "input", id="empty-string"),
        pytest.param({"input": []}, 400, "input", id="empty-list"),
        pytest.param({"input": ["ok", ""]}, 400, "input.1", id="empty-item"),
        pytest.param({"input": [[]]}, 400, "input.0", id="empty-token-list"),
        pytest.param({"input": ["w"] * 9}, 413, "input", id="too-many-inputs"),
        pytest.param({"input": "w " * 300}, 400, "input", id="over-long-input"),
        pytest.param({"input": "x", "dimensions": 8}, 400, "dimensions", id="dimensions"),
        pytest.param({"input": "x", "encoding_format": "hex"}, 400, "encoding_format", id="fmt"),
        pytest.param({"input": 3}, 400, "input", id="not-text"),
    ],
)
async def test_bad_input_is_a_4xx_naming_the_field_before_the_engine(
    http: httpx.AsyncClient,
    embedding_engine: FakeEmbeddingEngine,
    body: dict[str, object],
    status: int,
    param: str,
) -> None:
    before = len(embedding_engine.requests)
    response = await http.post(EMBEDDINGS, json={"model": EMBEDDER, **body})
    assert_openai_error(response, status, param=param)
    assert len(embedding_engine.requests) == before


async def test_the_over_long_input_is_a_context_length_error(http: httpx.AsyncClient) -> None:
    response = await http.post(EMBEDDINGS, json={"model": EMBEDDER, "input": "w " * 300})
    assert_openai_error(response, 400, param="input", code="context_length_exceeded")


@pytest.mark.parametrize("model", [pytest.param(FAKE_MODEL, id="the-llm"), "nope"])
async def test_another_model_name_is_a_404_naming_model(
    http: httpx.AsyncClient, model: str
) -> None:
    response = await http.post(EMBEDDINGS, json={"model": model, "input": "x"})
    assert_openai_error(response, 404, param="model", code="model_not_found")


async def test_with_embeddings_off_every_model_is_a_404() -> None:
    app = create_app(Settings(engine="fake", model=FAKE_MODEL, embedding_model="none"))
    async with serve(app) as client:
        response = await client.post(EMBEDDINGS, json={"model": FAKE_MODEL, "input": "x"})
        models = (await client.get("/v1/models")).json()["data"]
    assert_openai_error(response, 404, param="model", code="model_not_found")
    assert [m["id"] for m in models] == [FAKE_MODEL]


async def test_models_lists_the_embedding_model(http: httpx.AsyncClient) -> None:
    models = (await http.get("/v1/models")).json()["data"]
    assert [m["id"] for m in models] == [FAKE_MODEL, EMBEDDER]


async def test_a_dead_embedding_engine_fails_ready(
    http: httpx.AsyncClient, embedding_engine: FakeEmbeddingEngine
) -> None:
    assert (await http.get("/ready")).status_code == 200
    embedding_engine.healthy = False
    assert_openai_error(await http.get("/ready"), 503, code="engine_dead")


async def test_an_embedding_engine_that_fails_to_start_fails_the_start() -> None:
    def broken() -> FakeEmbeddingEngine:
        raise RuntimeError("no pooling model")

    app = create_app(
        Settings(model=FAKE_MODEL), engine_factory=FakeEngine, embedding_factory=broken
    )
    async with serve(app) as client:
        assert_openai_error(await client.get("/ready"), 503, code="engine_dead")


async def test_embedding_inputs_are_admitted_on_their_own_admission(
    embedding_app: FastAPI, http: httpx.AsyncClient
) -> None:
    state = embedding_app.state.gateway.engine_state
    assert state.embedding_admission is not state.admission
    assert state.embedding_admission.max_inflight == 16  # 2 x the fake's 8 sequences a step
    assert state.embedding_admission.max_queued == 64
    response = await http.post(EMBEDDINGS, json={"model": EMBEDDER, "input": ["a", "b"]})
    assert response.status_code == 200
    assert state.embedding_admission.in_flight == 0
    assert state.admission.in_flight == 0
