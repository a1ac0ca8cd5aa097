"""A batch line as its endpoint would serve it: the same request model, the same service
`prepare` and the same service function as the HTTP route, so a line's answer (or its 4xx) is
the endpoint's. `/v1/responses` lines run with `store: false` (a line's answer is in the output
file; nothing else needs it kept).

`prepare_line` validates and prepares (no engine work; a bad body raises the 4xx the route
would answer); the prepared line says what it costs in engine sequences, on which engine it
runs, and how to run it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from service.caller import Caller
from service.config import Settings
from service.http.deps import GatewayState, get_embedding_engine, get_engine
from service.http.encode import validation_error
from service.schemas.chat import ChatCompletionRequest
from service.schemas.completions import CompletionRequest
from service.schemas.embeddings import EmbeddingRequest
from service.schemas.responses import ResponsesRequest
from service.schemas.tasks import ClassifyRequest, GenerateRequest, SummarizeRequest
from service.services.openai import chat, completions, responses
from service.services.pooling import embeddings
from service.services.tasks import classify, generate, summarize
from service.services.tasks.common import new_id

Work = Callable[[], Awaitable[BaseModel]]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class PreparedLine:
    cost: int  # engine sequences (admission's unit)
    model: str  # the served model it runs on
    pooling: bool  # on the embedding engine (else the generation engine)
    timeout: float | None  # the body's own `timeout`, if any
    work: Work


def _validated(schema: type[M], body: dict[str, Any]) -> M:
    """`body` as the route's request model; a bad body is the route's 400."""
    try:
        return schema.model_validate(body)
    except ValidationError as err:
        raise validation_error(RequestValidationError(err.errors(), body=body)) from None


async def _chat(body: dict[str, Any], gateway: GatewayState, caller: Caller) -> PreparedLine:
    request = _validated(ChatCompletionRequest, body)
    engine = await get_engine(gateway.engine_state)
    prepared = chat.prepare(request, engine, gateway.settings, caller)
    work = partial(chat.complete, prepared, engine)
    return PreparedLine(prepared.cost, prepared.model, False, request.timeout, work)


async def _completions(body: dict[str, Any], gateway: GatewayState, caller: Caller) -> PreparedLine:
    request = _validated(CompletionRequest, body)
    engine = await get_engine(gateway.engine_state)
    prepared = completions.prepare(request, engine, gateway.settings, caller)
    work = partial(completions.complete, prepared, engine)
    return PreparedLine(prepared.cost, prepared.model, False, request.timeout, work)


async def _responses(body: dict[str, Any], gateway: GatewayState, caller: Caller) -> PreparedLine:
    # Validated with `store: false`, so that `background: true` is the route's own 400 (a
    # background response must be stored) rather than a queued shell in the output file.
    request = _validated(ResponsesRequest, {**body, "store": False})
    engine = await get_engine(gateway.engine_state)
    store = gateway.store
    prepared = await responses.prepare(request, engine, gateway.settings, store, caller)
    work = partial(responses.complete, prepared, engine, store)
    return PreparedLine(prepared.cost, prepared.chat.model, False, request.timeout, work)


async def _embeddings(body: dict[str, Any], gateway: GatewayState, caller: Caller) -> PreparedLine:
    request = _validated(EmbeddingRequest, body)
    engine = await get_embedding_engine(gateway.engine_state, gateway.settings)
    prepared = embeddings.prepare(request, engine, gateway.settings, caller)
    work = partial(embeddings.embed, prepared, engine)
    return PreparedLine(prepared.cost, prepared.model, True, request.timeout, work)


async def _generate(body: dict[str, Any], gateway: GatewayState, caller: Caller) -> PreparedLine:
    request = _validated(GenerateRequest, body)
    engine = await get_engine(gateway.engine_state)
    prepared = generate.prepare(request, engine, gateway.settings, caller)
    work = partial(generate.generate, prepared, engine)
    return PreparedLine(prepared.cost, prepared.model, False, request.timeout, work)


async def _summarize(body: dict[str, Any], gateway: GatewayState, caller: Caller) -> PreparedLine:
    request = _validated(SummarizeRequest, body)
    engine = await get_engine(gateway.engine_state)
    prepared = summarize.prepare(request, engine, gateway.settings, caller)
    work = partial(summarize.summarize, prepared, engine)
    return PreparedLine(prepared.cost, prepared.model, False, request.timeout, work)


async def _classify(body: dict[str, Any], gateway: GatewayState, caller: Caller) -> PreparedLine:
    request = _validated(ClassifyRequest, body)
    engine = await get_engine(gateway.engine_state)
    settings: Settings = gateway.settings
    prepared = classify.prepare(request, engine, settings, caller, request_id=new_id("classify"))
    work = partial(classify.classify, prepared, engine)
    return PreparedLine(prepared.cost, prepared.model, False, request.timeout, work)


Preparer = Callable[[dict[str, Any], GatewayState, Caller], Awaitable[PreparedLine]]

PREPARERS: dict[str, Preparer] = {
    "/v1/chat/completions": _chat,
    "/v1/completions": _completions,
    "/v1/responses": _responses,
    "/v1/embeddings": _embeddings,
    "/v1/generate": _generate,
    "/v1/summarize": _summarize,
    "/v1/classify": _classify,
}


async def prepare_line(
    endpoint: str, body: dict[str, Any], gateway: GatewayState, caller: Caller
) -> PreparedLine:
    """Validate and prepare a line of a batch for `endpoint` (every endpoint a batch may name
    is here: `service.schemas.batches.BATCH_ENDPOINTS`). Raises the endpoint's `GatewayError`:
    a 4xx for a bad body, a 503 while the engine cannot serve."""
    return await PREPARERS[endpoint](body, gateway, caller)
