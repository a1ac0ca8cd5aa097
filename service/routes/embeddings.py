"""/v1/embeddings and /v1/rerank, served by the embedding engine (thin handlers)."""

from __future__ import annotations

from fastapi import APIRouter

from service.http.deps import CallerDep, EmbeddingEngineDep, SettingsDep
from service.http.guard import EmbeddingGuardDep
from service.schemas.embeddings import EmbeddingRequest, EmbeddingResponse
from service.schemas.rerank import RerankRequest, RerankResponse
from service.services.pooling import embeddings, rerank

router = APIRouter(prefix="/v1", tags=["embeddings"])


@router.post("/embeddings")
async def create_embeddings(
    request: EmbeddingRequest,
    engine: EmbeddingEngineDep,
    settings: SettingsDep,
    guard: EmbeddingGuardDep,
    caller: CallerDep,
) -> EmbeddingResponse:
    """OpenAI's embeddings: one vector per input, as floats or base64."""
    prepared = embeddings.prepare(request, engine, settings, caller)
    return await guard.run(prepared, lambda: embeddings.embed(prepared, engine), request.timeout)


@router.post("/rerank")
async def rerank_documents(
    request: RerankRequest,
    engine: EmbeddingEngineDep,
    settings: SettingsDep,
    guard: EmbeddingGuardDep,
    caller: CallerDep,
) -> RerankResponse:
    """The documents by relevance to the query (cosine of their embeddings), best first."""
    prepared = rerank.prepare(request, engine, settings, caller)
    return await guard.run(prepared, lambda: rerank.rerank(prepared, engine), request.timeout)
