"""OpenAI's Responses API: POST /v1/responses, GET and DELETE /v1/responses/{id}."""

from __future__ import annotations

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from service.errors import NotFoundError
from service.http.deps import EngineDep, ResponseStoreDep, SettingsDep
from service.http.guard import GuardDep
from service.schemas.responses import DeletedResponse, Response, ResponsesRequest
from service.services.openai import responses
from service.telemetry import context

router = APIRouter(prefix="/v1", tags=["responses"])


def _owner() -> str | None:
    """The caller's API key id: a stored response is visible only to the key that made it."""
    ctx = context.current()
    return ctx.key_id if ctx is not None else None


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
) -> Response | EventSourceResponse:
    prepared = responses.prepare(request, engine, settings, store, owner=_owner())
    if request.stream:
        return await guard.stream(
            prepared.cost, lambda: responses.stream(prepared, engine, store), request.timeout
        )
    return await guard.run(
        prepared.cost, lambda: responses.complete(prepared, engine, store), request.timeout
    )


@router.get("/responses/{response_id}")
async def get_response(response_id: str, store: ResponseStoreDep) -> Response:
    stored = store.get(response_id, _owner())
    if stored is None:
        raise _unknown(response_id)
    return stored.response


@router.delete("/responses/{response_id}")
async def delete_response(response_id: str, store: ResponseStoreDep) -> DeletedResponse:
    if not store.delete(response_id, _owner()):
        raise _unknown(response_id)
    return DeletedResponse(id=response_id)
