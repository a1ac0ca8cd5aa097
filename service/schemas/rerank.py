"""`/v1/rerank` in the shape vLLM, Cohere and Jina clients use: a query and documents in,
the documents by relevance out."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.schemas.common import MAX_INT32, NonEmptyStr, OpenAIRequest, Timeout


class RerankRequest(OpenAIRequest):
    model: NonEmptyStr
    query: NonEmptyStr
    documents: list[NonEmptyStr] = Field(min_length=1)
    top_n: int | None = Field(
        None, ge=1, le=MAX_INT32, description="Return the best `top_n` only; default: all."
    )
    return_documents: bool = Field(True, description="Include each document's text.")
    timeout: Timeout = None


class RerankDocument(BaseModel):
    text: str


class RerankResult(BaseModel):
    index: int = Field(description="The document's position in the request.")
    relevance_score: float = Field(description="Cosine similarity of query and document.")
    document: RerankDocument | None = None


class RerankUsage(BaseModel):
    total_tokens: int


class RerankResponse(BaseModel):
    id: str
    object: Literal["rerank"] = "rerank"
    model: str
    results: list[RerankResult]
    usage: RerankUsage
