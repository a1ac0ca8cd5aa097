"""OpenAI's Responses API: POST /v1/responses, GET (whole, or its stream again) and DELETE
/v1/responses/{id}, POST /v1/responses/{id}/cancel, GET /v1/responses/{id}/input_items."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sse_starlette import EventSourceResponse

from service.errors import InvalidRequestError
from service.http.deps import BackgroundDep, CallerDep, EngineDep, SettingsDep, StoreDep
from service.http.guard import GuardDep
from service.http.sse import named_event_stream
from service.schemas.common import MAX_INT32
from service.schemas.responses import (
    DeletedResponse,
    Response,
    ResponseItemList,
    ResponsesRequest,
)
from service.services.openai import responses
from service.services.openai.responses.background import unknown_response
from service.services.openai.responses.items import item_page, known_id
from service.store import Order

router = APIRouter(prefix="/v1", tags=["responses"])

_JSON_OR_STREAM: dict[int | str, dict[str, Any]] = {
    200: {"model": Response, "content": {"text/event-stream": {}}}
}


@router.post("/responses", response_model=None, responses=_JSON_OR_STREAM)
async def create_response(
    request: ResponsesRequest,
    engine: EngineDep,
    settings: SettingsDep,
    guard: GuardDep,
    store: StoreDep,
    background: BackgroundDep,
    caller: CallerDep,
) -> Response | EventSourceResponse:
    prepared = await responses.prepare(request, engine, settings, store, caller)
    if request.background:
        queued = await background.submit(
            prepared, engine, lambda work: guard.run(prepared, work, request.timeout)
        )
        if request.stream:  # the run's events, followed; leaving does not stop the run
            return named_event_stream(background.follow_run(queued.id), settings)
        return queued
    if request.stream:
        return await guard.stream_named(
            prepared, lambda: responses.stream(prepared, engine, store), request.timeout
        )
    return await guard.run(
        prepared, lambda: responses.complete(prepared, engine, store), request.timeout
    )


@router.get("/responses/{response_id}", response_model=None, responses=_JSON_OR_STREAM)
async def get_response(
    response_id: str,
    background: BackgroundDep,
    settings: SettingsDep,
    caller: CallerDep,
    stream: bool = False,
    starting_after: Annotated[int | None, Query(ge=-1, le=MAX_INT32)] = None,
) -> Response | EventSourceResponse:
    """A stored response, visible only to the key that made it; with `stream`, a background
    stream's events after `starting_after`, then live until it ends."""
    stored = await background.stored(caller.owner, response_id)
    if not stream:
        return Response.model_validate(stored.body)
    if not (stored.background and stored.stream):
        raise InvalidRequestError(
            f"Response '{response_id}' was not created with background=true and stream=true: "
            "only those can be streamed again.",
            param="stream",
        )
    after = -1 if starting_after is None else starting_after
    return named_event_stream(background.follow(stored, after), settings)


@router.delete("/responses/{response_id}")
async def delete_response(response_id: str, store: StoreDep, caller: CallerDep) -> DeletedResponse:
    if not (known_id(response_id) and await store.responses.delete(caller.owner, response_id)):
        raise unknown_response(response_id)
    return DeletedResponse(id=response_id)


@router.post("/responses/{response_id}/cancel")
async def cancel_response(
    response_id: str, background: BackgroundDep, caller: CallerDep
) -> Response:
    """Cancel a background response; one that is not background, or has ended, is a 400."""
    return await background.cancel(caller.owner, response_id)


@router.get("/responses/{response_id}/input_items")
async def list_input_items(
    response_id: str,
    background: BackgroundDep,
    caller: CallerDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Order = "desc",
) -> ResponseItemList:
    """The input items of a stored response, as its request sent them (each with an id; those
    of `previous_response_id` are that response's), newest first unless `order=asc`."""
    stored = await background.stored(caller.owner, response_id)
    items, has_more = item_page(stored.input_items, after=after, limit=limit, order=order)
    return ResponseItemList.page(items, has_more=has_more)
