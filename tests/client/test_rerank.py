"""`client.tasks.rerank` (typed like the other task methods) and the openai SDK's
`client.embeddings.create`, against a real gateway on the fake engines."""

from __future__ import annotations

from llm_gateway import AsyncClient, Client
from llm_gateway.types import RerankResponse
from service.schemas import rerank as schemas
from tests.conftest import FAKE_MODEL

DOCUMENTS = ["cats purr softly", "the stock market fell", "my cats purr at night"]


def test_rerank(client: Client) -> None:
    result = client.tasks.rerank(
        model=FAKE_MODEL,
        query="stock market",
        documents=DOCUMENTS,
        top_n=2,
        extra_headers={"x-request-id": "rerank-1"},
    )
    assert isinstance(result, RerankResponse)
    assert isinstance(result, schemas.RerankResponse)
    assert result.request_id == "rerank-1"
    assert result.results[0].index == 1
    assert len(result.results) == 2


async def test_rerank_async(async_client: AsyncClient) -> None:
    result = await async_client.tasks.rerank(
        model=FAKE_MODEL, query="cats", documents=DOCUMENTS, return_documents=False
    )
    assert result.results[-1].index == 1
    assert all(r.document is None for r in result.results)


def test_embeddings_are_the_openai_sdks(client: Client) -> None:
    result = client.embeddings.create(model=FAKE_MODEL, input=["a b", "c"])
    assert [len(d.embedding) for d in result.data] == [64, 64]
