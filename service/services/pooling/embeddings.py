"""`/v1/embeddings`: texts or token ids -> the embedding engine -> OpenAI's embedding list.

`prepare` does every check (model, counts, sizes, tokenization) before admission; its cost is
the number of inputs, each one sequence of the pooling engine.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from service.caller import Caller
from service.config import Settings
from service.engine.base import EmbeddingEngine
from service.errors import ContextLengthError, InvalidRequestError, UnsupportedParameterError
from service.schemas.embeddings import (
    Embedding,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingUsage,
)
from service.services.core.generation import engine_request_ids
from service.services.core.limits import check_count, check_text
from service.services.registry import select_embedding_model
from service.telemetry import context


@dataclass(frozen=True, slots=True)
class PreparedEmbeddings:
    model: str
    inputs: list[list[int]]
    encoding_format: str
    dimensions: int | None
    priority: int

    @property
    def cost(self) -> int:
        """Sequences of the pooling engine, for its admission control."""
        return len(self.inputs)


def tokenize(
    texts: Sequence[str | list[int]], engine: EmbeddingEngine, settings: Settings, *, param: str
) -> list[list[int]]:
    """Each input as token ids within the engine's context: a 413 beyond the batch or text
    limits, a 400 naming the input when it is empty or longer than the context."""
    check_count(len(texts), settings.max_batch_size, what="inputs", param=param)
    single = len(texts) == 1
    token_lists = []
    for i, text in enumerate(texts):
        where = param if single else f"{param}.{i}"
        if isinstance(text, str):
            check_text(text, settings, param=where)
            ids = engine.tokenizer.encode(text)
        else:
            ids = list(text)
        if not ids:
            raise InvalidRequestError("The input is empty after tokenization.", param=where)
        if len(ids) > engine.max_model_len:
            raise ContextLengthError(
                f"An input may have at most {engine.max_model_len} tokens; got {len(ids)}.",
                param=where,
            )
        token_lists.append(ids)
    return token_lists


def prepare(
    request: EmbeddingRequest, engine: EmbeddingEngine, settings: Settings, caller: Caller
) -> PreparedEmbeddings:
    model = select_embedding_model(request.model, settings)
    if request.dimensions is not None and not engine.truncatable:
        raise UnsupportedParameterError(
            f"The model '{model}' does not support `dimensions` (it is not a Matryoshka "
            "model); leave it out.",
            param="dimensions",
        )
    if request.dimensions is not None and request.dimensions > engine.dimensions:
        raise InvalidRequestError(
            f"`dimensions` may be at most {engine.dimensions}.", param="dimensions"
        )
    inputs = tokenize(request.inputs(), engine, settings, param="input")
    return PreparedEmbeddings(
        model, inputs, request.encoding_format, request.dimensions, caller.priority
    )


def encode_vector(vector: list[float], encoding_format: str) -> list[float] | str:
    """`float`: the list; `base64`: the little-endian float32 bytes, as OpenAI sends them."""
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


async def vectors(
    engine: EmbeddingEngine, inputs: list[list[int]], *, kind: str, dimensions: int | None = None
) -> list[list[float]]:
    """Run a batch on the engine, counting its tokens and engine time for the request."""
    request_id = engine_request_ids(kind, 1)[0]
    with context.engine_wait():
        result = await engine.embed(inputs, request_id, dimensions=dimensions)
    ctx = context.current()
    if ctx is not None:
        ctx.engine_requests += len(inputs)
        ctx.prompt_tokens += sum(len(ids) for ids in inputs)
    return result


async def embed(prepared: PreparedEmbeddings, engine: EmbeddingEngine) -> EmbeddingResponse:
    result = await vectors(engine, prepared.inputs, kind="embd", dimensions=prepared.dimensions)
    tokens = sum(len(ids) for ids in prepared.inputs)
    data = [
        Embedding(index=i, embedding=encode_vector(vector, prepared.encoding_format))
        for i, vector in enumerate(result)
    ]
    return EmbeddingResponse(
        data=data,
        model=prepared.model,
        usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
    )
