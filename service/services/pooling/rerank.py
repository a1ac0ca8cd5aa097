"""`/v1/rerank`: a query and documents, scored on the embedding engine by cosine similarity.

The query and every document go to the engine as one batch (its vectors come back
normalized, so a dot product is the cosine); the cost is that batch's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from service.caller import Caller
from service.config import Settings
from service.engine.base import EmbeddingEngine
from service.schemas.rerank import (
    RerankDocument,
    RerankRequest,
    RerankResponse,
    RerankResult,
    RerankUsage,
)
from service.services.core.generation import engine_request_ids
from service.services.pooling.embeddings import tokenize, vectors
from service.services.registry import select_embedding_model


@dataclass(frozen=True, slots=True)
class PreparedRerank:
    model: str
    query: list[int]
    documents: list[list[int]]
    texts: list[str]
    top_n: int
    return_documents: bool
    priority: int

    @property
    def cost(self) -> int:
        """Sequences of the pooling engine: the query and each document."""
        return 1 + len(self.documents)


def prepare(
    request: RerankRequest, engine: EmbeddingEngine, settings: Settings, caller: Caller
) -> PreparedRerank:
    model = select_embedding_model(request.model, settings)
    (query,) = tokenize([request.query], engine, settings, param="query")
    documents = tokenize(list(request.documents), engine, settings, param="documents")
    return PreparedRerank(
        model=model,
        query=query,
        documents=documents,
        texts=request.documents,
        top_n=min(request.top_n or len(documents), len(documents)),
        return_documents=request.return_documents,
        priority=caller.priority,
    )


def cosine(a: list[float], b: list[float]) -> float:
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norms if norms else 0.0


async def rerank(prepared: PreparedRerank, engine: EmbeddingEngine) -> RerankResponse:
    query, *documents = await vectors(engine, [prepared.query, *prepared.documents], kind="rerank")
    scored = sorted(
        ((cosine(query, vector), i) for i, vector in enumerate(documents)),
        key=lambda pair: (-pair[0], pair[1]),
    )
    results = [
        RerankResult(
            index=i,
            relevance_score=score,
            document=RerankDocument(text=prepared.texts[i]) if prepared.return_documents else None,
        )
        for score, i in scored[: prepared.top_n]
    ]
    tokens = len(prepared.query) + sum(len(ids) for ids in prepared.documents)
    return RerankResponse(
        id=engine_request_ids("rerank", 1)[0],
        model=prepared.model,
        results=results,
        usage=RerankUsage(total_tokens=tokens),
    )
