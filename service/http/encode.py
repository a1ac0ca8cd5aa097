"""The one place that turns a `GatewayError` into what the client receives.

Three forms, one body per surface and one bookkeeping step (`_record`: the request context
learns the error's code, since the outcome of a 503 depends on it, and for a stream the status
the client never saw):
- `json_response`: a FastAPI/Starlette response, used by the exception handlers;
- `send_error`: a raw ASGI answer, for the pure-ASGI middleware (keys, limits, body size);
- `sse_event` / `anthropic_sse_event`: the data of an in-band error event, once a stream's
  200 has been sent.

The body is OpenAI's (`GatewayError.body()`) except under `/v1/messages`, Anthropic's Messages
API, whose answers are Anthropic's (`GatewayError.anthropic_body()`: its error type and status,
and a `request-id` header). The surface is told by the path, and only once an error is being
answered: the success path pays nothing for it.

`install_error_handlers` maps the gateway's errors, FastAPI's validation errors (rewritten from
422 to 400 naming the field) and anything unexpected (500, no stack trace leaked).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope, Send

from service.errors import (
    GatewayError,
    InvalidRequestError,
    UnsupportedParameterError,
    anthropic_error_body,
    error_body,
)
from service.http.paths import MESSAGES_PATH
from service.telemetry import context
from service.telemetry.context import RequestContext

logger = logging.getLogger(__name__)


def _record(error: GatewayError, ctx: RequestContext | None, *, in_stream: bool = False) -> None:
    if ctx is None:
        return
    ctx.error_code = error.code
    if in_stream:  # the status line said 200; metrics and the access log say what happened
        ctx.stream_error_status = error.status_code


REQUEST_ID_HEADER = "request-id"  # Anthropic's; the SDK reads it into `err.request_id`


_MESSAGES_TREE = MESSAGES_PATH + "/"


def on_messages_surface(scope: Scope) -> bool:
    """Whether the request is Anthropic's Messages API's (`/v1/messages` and below it)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path == MESSAGES_PATH or path.startswith(_MESSAGES_TREE)


def _answer(
    error: GatewayError, ctx: RequestContext | None, *, anthropic: bool
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) of `error` on its surface."""
    headers = error.headers() or {}
    if not anthropic:
        return error.status_code, error.body(), headers
    request_id = ctx.request_id if ctx is not None else None
    if request_id:
        headers = {**headers, REQUEST_ID_HEADER: request_id}
    return error.anthropic_status_code, error.anthropic_body(request_id), headers


def json_response(
    error: GatewayError, ctx: RequestContext | None, *, anthropic: bool = False
) -> JSONResponse:
    _record(error, ctx)
    status, body, headers = _answer(error, ctx, anthropic=anthropic)
    return JSONResponse(body, status_code=status, headers=headers or None)


async def send_error(
    send: Send, error: GatewayError, ctx: RequestContext | None, scope: Scope | None = None
) -> None:
    """Answer `error` from raw ASGI (the observability middleware adds the request id), in the
    shape of the surface `scope`'s path belongs to."""
    _record(error, ctx)
    anthropic = scope is not None and on_messages_surface(scope)
    status, body_json, extra = _answer(error, ctx, anthropic=anthropic)
    body = json.dumps(body_json, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
    ]
    for name, value in extra.items():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def sse_event(error: GatewayError) -> str:
    """The data of an in-band error event, in the shape of a non-streaming error body."""
    _record(error, context.current(), in_stream=True)
    return json.dumps(error.body())


def anthropic_sse_event(error: GatewayError) -> str:
    """The data of Anthropic's in-band `error` event: its error body."""
    ctx = context.current()
    _record(error, ctx, in_stream=True)
    return json.dumps(error.anthropic_body(ctx.request_id if ctx is not None else None))


# FastAPI's detail when reading the body as JSON raised something other than a syntax error.
_FASTAPI_BODY_ERROR = "There was an error parsing the body"

# Error kinds that say more than the "wrong type" error of a sibling union branch does.
_SPECIFIC_KINDS = ("unsupported_parameter", "extra_forbidden")


def _param_of(loc: Sequence[int | str], body: Any = None) -> str | None:
    """The field as the client wrote it (OpenAI's `param`).

    FastAPI prefixes errors with where the field is ("body", "query", "path"), and pydantic
    adds a tag for the union member that failed ("str", "list[TextPart]", or a discriminator
    value such as "user"); the client wrote neither. Walking the body tells the two apart: a
    tag is not a key of the object it follows (only a missing field, always last in `loc`, is
    named without being in the body).
    """
    where = loc[0] if loc else None
    parts = list(loc[1:] if where in ("body", "query", "path") else loc)
    if where in ("query", "path") or not isinstance(body, dict | list):
        return ".".join(str(p) for p in parts) or None
    named: list[str] = []
    node: Any = body
    for i, part in enumerate(parts):
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
        elif not (isinstance(node, dict) and i == len(parts) - 1):
            continue  # a union-member tag
        named.append(str(part))
    return ".".join(named) or None


def validation_error(exc: RequestValidationError) -> InvalidRequestError:
    """Rewrite FastAPI's 422 into a 400 naming the first offending field."""
    errors = exc.errors()
    if not errors:
        return InvalidRequestError("Invalid request body.")
    # A union reports every branch; the specific error beats "not a string" from another one.
    first = next(
        (e for kind in _SPECIFIC_KINDS for e in errors if e.get("type") == kind), errors[0]
    )
    param = (first.get("ctx") or {}).get("param") or _param_of(first.get("loc", ()), exc.body)
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        return InvalidRequestError(
            f"Unrecognized request argument supplied: {param}",
            param=param,
            code="unknown_parameter",
        )
    if kind == "unsupported_parameter":
        return UnsupportedParameterError(str(first.get("msg")), param=param)
    if kind == "json_invalid":
        return InvalidRequestError(
            "The request body is not valid JSON.", param=None, code="invalid_json"
        )
    message = str(first.get("msg", "Invalid value"))
    if param:
        message = f"Invalid value for '{param}': {message}"
    return InvalidRequestError(message, param=param, code="invalid_value")


class _HTTPError(GatewayError):
    """Starlette's own errors (an unknown path, a wrong method) as a gateway error."""

    def __init__(self, exc: StarletteHTTPException) -> None:
        super().__init__(
            str(exc.detail), code={404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        )
        self.status_code = exc.status_code
        self.error_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
        self._headers = exc.headers

    def headers(self) -> dict[str, str] | None:
        return dict(self._headers) if self._headers else None


def install_error_handlers(app: FastAPI) -> None:
    async def on_gateway_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, GatewayError)
        return json_response(exc, context.current(), anthropic=on_messages_surface(request.scope))

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return await on_gateway_error(request, validation_error(exc))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.detail == _FASTAPI_BODY_ERROR:
            # A body json.loads refused beyond syntax: invalid UTF-8, a 5000-digit number,
            # nesting deeper than the parser's recursion limit.
            not_json = InvalidRequestError(
                "The request body is not valid JSON.", code="invalid_json"
            )
            return await on_gateway_error(request, not_json)
        return await on_gateway_error(request, _HTTPError(exc))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette runs this handler outside every middleware, after the request context is
        # gone; the observability middleware left the request id in `request.state`.
        request_id = getattr(request.state, "request_id", None)
        logger.exception("unhandled error", exc_info=exc, extra={"request_id": request_id})
        message = "The server had an error processing the request."
        headers = {"x-request-id": request_id} if request_id else {}
        if on_messages_surface(request.scope):
            body = anthropic_error_body(message, 500, request_id=request_id)
            if request_id:
                headers[REQUEST_ID_HEADER] = request_id
        else:
            body = error_body(message, "server_error", code="internal_error")
        return JSONResponse(body, status_code=500, headers=headers or None)

    app.add_exception_handler(GatewayError, on_gateway_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
