"""Anthropic's Messages API: POST /v1/messages and /v1/messages/count_tokens.

Every answer of these routes carries a `request-id` header (the SDK reads it), errors included
(`service/http/encode.py` answers them in Anthropic's shape).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from sse_starlette import EventSourceResponse

from service.http.deps import CallerDep, EngineDep, SettingsDep
from service.http.encode import REQUEST_ID_HEADER
from service.http.guard import GuardDep
from service.http.sse import ANTHROPIC
from service.schemas.anthropic import CountTokensRequest, MessagesRequest
from service.schemas.anthropic_response import ErrorResponse, Message, TokenCount
from service.services import anthropic
from service.telemetry import context


class _RequestIdRoute(APIRoute):
    """Adds the request's id as `request-id` to every answer the handler gives."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def with_request_id(request: Request) -> Response:
            response = await handle(request)
            request_id = context.current_request_id()
            if request_id is not None:
                response.headers[REQUEST_ID_HEADER] = request_id
            return response

        return with_request_id


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 404, 413, 429, 500, 503, 504, 529)
}
router = APIRouter(prefix="/v1", tags=["anthropic"], route_class=_RequestIdRoute, responses=_ERRORS)


@router.post("/messages", response_model=None)
async def create_message(
    request: MessagesRequest,
    engine: EngineDep,
    settings: SettingsDep,
    guard: GuardDep,
    caller: CallerDep,
) -> Message | EventSourceResponse:
    prepared = anthropic.prepare(request, engine, settings, caller)
    if request.stream:
        return await guard.stream_named(
            prepared, lambda: anthropic.stream(prepared, engine), framing=ANTHROPIC
        )
    return await guard.run(prepared, lambda: anthropic.complete(prepared, engine))


# Tokenizing only: no engine work, so no admission.
@router.post("/messages/count_tokens")
async def count_message_tokens(
    request: CountTokensRequest, engine: EngineDep, settings: SettingsDep
) -> TokenCount:
    return anthropic.count_tokens(request, engine, settings)
