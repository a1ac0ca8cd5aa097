"""`/v1/embeddings` in OpenAI's shape: one text, many texts, or token ids in; vectors out."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Discriminator, Field, Tag

from service.schemas.common import (
    MAX_INT32,
    NonEmptyStr,
    OpenAIRequest,
    Timeout,
    TokenId,
)

TokenIds = Annotated[list[TokenId], Field(min_length=1)]


def _input_kind(value: object) -> str | None:
    """The tag of `input`: a string, or a list of strings, of token ids, or of token-id lists."""
    if isinstance(value, str):
        return "text"
    if not isinstance(value, list):
        return None
    first = value[0] if value else ""
    if isinstance(first, list):
        return "token_lists"
    if isinstance(first, int) and not isinstance(first, bool):
        return "tokens"
    return "texts"


EmbeddingInput = Annotated[
    Annotated[NonEmptyStr, Tag("text")]
    | Annotated[list[NonEmptyStr], Tag("texts"), Field(min_length=1)]
    | Annotated[TokenIds, Tag("tokens")]
    | Annotated[list[TokenIds], Tag("token_lists"), Field(min_length=1)],
    Discriminator(
        _input_kind,
        custom_error_type="input_type",
        custom_error_message="Input should be a string, a list of strings, a list of token "
        "ids or a list of token-id lists",
    ),
]


class EmbeddingRequest(OpenAIRequest):
    model: NonEmptyStr
    input: EmbeddingInput
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1, le=MAX_INT32)
    timeout: Timeout = None

    def inputs(self) -> list[str | list[int]]:
        """Always a list: the texts, or the token-id lists."""
        value = self.input
        if isinstance(value, str):
            return [value]
        items: list[str | list[int]] = []
        for item in value:
            if isinstance(item, int):  # one list of token ids is one input
                return [[int(x) for x in value if isinstance(x, int)]]
            items.append(item)
        return items


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str  # base64: the little-endian float32 bytes


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
