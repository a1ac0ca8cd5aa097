"""OpenAI's Responses API: POST /v1/responses, GET and DELETE /v1/responses/{id}."""

from __future__ import annotations

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from service.errors import NotFoundError
from service.http.deps import CallerDep, EngineDep, ResponseStoreDep, SettingsDep
from service.http.guard import GuardDep
from service.schemas.responses import DeletedResponse, Response, ResponsesRequest
from service.services.openai import responses

router = APIRouter(prefix="/v1", tags=["responses"])


def _unknown(response_id: str) -> NotFoundError:
    return NotFoundError(
        f"No response with id '{response_id}' is stored here.", param="response_id"
    )


@router.post("/responses", response_model=None)
async def create_response(
    request: ResponsesRequest,
    engine: EngineDep,
    settings: SettingsDep,
    guard: GuardDep,
    store: ResponseStoreDep,
    caller: CallerDep,
) -> Response | EventSourceResponse:
    prepared = responses.prepare(request, engine, settings, store, caller)
    if request.stream:
        return await guard.stream(
            prepared, lambda: responses.stream(prepared, engine, store), request.timeout
        )
    return await guard.run(
        prepared, lambda: responses.complete(prepared, engine, store), request.timeout
    )


@router.get("/responses/{response_id}")
async def get_response(response_id: str, store: ResponseStoreDep, caller: CallerDep) -> Response:
    """A stored response, visible only to the key that made it."""
    stored = store.get(response_id, caller.owner)
    if stored is None:
        raise _unknown(response_id)
    return stored.response


@router.delete("/responses/{response_id}")
async def delete_response(
    response_id: str, store: ResponseStoreDep, caller: CallerDep
) -> DeletedResponse:
    if not store.delete(response_id, caller.owner):
        raise _unknown(response_id)
    return DeletedResponse(id=response_id)
