"""The gateway's exception tree, and the one place that turns it into OpenAI's error body.

    GatewayError                      any error a client sees: status, type, code, param
    ├── InvalidRequestError           400 invalid_request_error (bad value, bad combination)
    │   ├── UnsupportedParameterError 400 a field we do not implement that would change the result
    │   └── ContextLengthError        400 context_length_exceeded: prompt + max_tokens > context
    ├── PayloadTooLargeError          413 an input beyond the configured size limits
    ├── ModelNotFoundError            404 model_not_found
    ├── EngineUnavailableError        503 engine starting, dead or shutting down
    └── EngineFailureError            500 the engine failed on a valid request

Routes and services raise these; `install_error_handlers` maps them, FastAPI's validation
errors (rewritten from 422 to 400) and anything unexpected (500, no stack trace leaked).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class GatewayError(Exception):
    status_code = 500
    error_type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, param=self.param, code=self.code)


class InvalidRequestError(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class UnsupportedParameterError(InvalidRequestError):
    code = "unsupported_parameter"


class ContextLengthError(InvalidRequestError):
    code = "context_length_exceeded"


class PayloadTooLargeError(GatewayError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "payload_too_large"


class ModelNotFoundError(GatewayError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "model_not_found"


class EngineUnavailableError(GatewayError):
    status_code = 503
    error_type = "service_unavailable"
    code = "engine_unavailable"


class EngineFailureError(GatewayError):
    status_code = 500
    error_type = "server_error"
    code = "engine_error"


def error_body(
    message: str, error_type: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


# Error kinds that say more than the "wrong type" error of a sibling union branch does.
_SPECIFIC_KINDS = ("unsupported_parameter", "extra_forbidden")


def _param_of(loc: Sequence[int | str], body: Any = None) -> str | None:
    """The field as the client wrote it (OpenAI's `param`).

    FastAPI prefixes body errors with "body", and pydantic adds a tag for the union member
    that failed ("str", "list[TextPart]", or a discriminator value such as "user"); the client
    wrote neither. Walking the body tells the two apart: a tag is not a key of the object it
    follows (only a missing field, always last in `loc`, is named without being in the body).
    """
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    if not isinstance(body, dict | list):
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


def install_error_handlers(app: FastAPI) -> None:
    async def on_gateway_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, GatewayError)
        headers = {"Retry-After": "5"} if exc.status_code == 503 else None
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return await on_gateway_error(request, validation_error(exc))

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        error_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return JSONResponse(
            error_body(str(exc.detail), error_type, code=code),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette runs this handler outside every middleware, after the request context is
        # gone; the observability middleware left the request id in `request.state`.
        request_id = getattr(request.state, "request_id", None)
        logger.exception("unhandled error", exc_info=exc, extra={"request_id": request_id})
        return JSONResponse(
            error_body(
                "The server had an error processing the request.",
                "server_error",
                code="internal_error",
            ),
            status_code=500,
            headers={"x-request-id": request_id} if request_id else None,
        )

    app.add_exception_handler(GatewayError, on_gateway_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
